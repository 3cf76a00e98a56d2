"""``keras.ops`` for dagjax: functions on arrays that, given symbolic tensors, record graph nodes.

``dj.ops.mean(x, axis=1)`` on an array computes it (``jax.numpy`` semantics, as ``keras.ops``
on JAX); on a symbolic tensor it records an ``Operation`` node in the graph, with its output
shape inferred, as a layer call does. Python operators on symbolic tensors (``x + y``,
``x[:, 0]``, ``-x``) record the same ops. Model files name the op and its static arguments;
loading resolves the name in this fixed registry.
"""

from dagjax._graph import set_operators as _set_operators
from dagjax.layers._operation import Operation as Operation
from dagjax.ops._arrays import all as all
from dagjax.ops._arrays import any as any
from dagjax.ops._arrays import argmax as argmax
from dagjax.ops._arrays import argmin as argmin
from dagjax.ops._arrays import broadcast_to as broadcast_to
from dagjax.ops._arrays import concatenate as concatenate
from dagjax.ops._arrays import cumsum as cumsum
from dagjax.ops._arrays import expand_dims as expand_dims
from dagjax.ops._arrays import flip as flip
from dagjax.ops._arrays import full_like as full_like
from dagjax.ops._arrays import get_item as get_item
from dagjax.ops._arrays import logsumexp as logsumexp
from dagjax.ops._arrays import max as max
from dagjax.ops._arrays import mean as mean
from dagjax.ops._arrays import min as min
from dagjax.ops._arrays import moveaxis as moveaxis
from dagjax.ops._arrays import ones_like as ones_like
from dagjax.ops._arrays import prod as prod
from dagjax.ops._arrays import repeat as repeat
from dagjax.ops._arrays import reshape as reshape
from dagjax.ops._arrays import sort as sort
from dagjax.ops._arrays import split as split
from dagjax.ops._arrays import squeeze as squeeze
from dagjax.ops._arrays import stack as stack
from dagjax.ops._arrays import std as std
from dagjax.ops._arrays import sum as sum
from dagjax.ops._arrays import swapaxes as swapaxes
from dagjax.ops._arrays import take as take
from dagjax.ops._arrays import take_along_axis as take_along_axis
from dagjax.ops._arrays import tile as tile
from dagjax.ops._arrays import transpose as transpose
from dagjax.ops._arrays import var as var
from dagjax.ops._arrays import zeros_like as zeros_like
from dagjax.ops._creation import arange as arange
from dagjax.ops._creation import array as array
from dagjax.ops._creation import convert_to_tensor as convert_to_tensor
from dagjax.ops._creation import eye as eye
from dagjax.ops._creation import full as full
from dagjax.ops._creation import ones as ones
from dagjax.ops._creation import shape as shape
from dagjax.ops._creation import unstack as unstack
from dagjax.ops._creation import zeros as zeros
from dagjax.ops._nn import cast as cast
from dagjax.ops._nn import elu as elu
from dagjax.ops._nn import gelu as gelu
from dagjax.ops._nn import hard_sigmoid as hard_sigmoid
from dagjax.ops._nn import leaky_relu as leaky_relu
from dagjax.ops._nn import log_softmax as log_softmax
from dagjax.ops._nn import norm as norm
from dagjax.ops._nn import normalize as normalize
from dagjax.ops._nn import one_hot as one_hot
from dagjax.ops._nn import relu as relu
from dagjax.ops._nn import relu6 as relu6
from dagjax.ops._nn import selu as selu
from dagjax.ops._nn import sigmoid as sigmoid
from dagjax.ops._nn import silu as silu
from dagjax.ops._nn import softmax as softmax
from dagjax.ops._nn import softplus as softplus
from dagjax.ops._nn import softsign as softsign
from dagjax.ops._nn import stop_gradient as stop_gradient
from dagjax.ops._nn import swish as swish
from dagjax.ops._nn import top_k as top_k
from dagjax.ops._numpy import abs as abs
from dagjax.ops._numpy import absolute as absolute
from dagjax.ops._numpy import add as add
from dagjax.ops._numpy import ceil as ceil
from dagjax.ops._numpy import clip as clip
from dagjax.ops._numpy import cos as cos
from dagjax.ops._numpy import divide as divide
from dagjax.ops._numpy import dot as dot
from dagjax.ops._numpy import einsum as einsum
from dagjax.ops._numpy import equal as equal
from dagjax.ops._numpy import erf as erf
from dagjax.ops._numpy import exp as exp
from dagjax.ops._numpy import floor as floor
from dagjax.ops._numpy import floor_divide as floor_divide
from dagjax.ops._numpy import greater as greater
from dagjax.ops._numpy import greater_equal as greater_equal
from dagjax.ops._numpy import isnan as isnan
from dagjax.ops._numpy import less as less
from dagjax.ops._numpy import less_equal as less_equal
from dagjax.ops._numpy import log as log
from dagjax.ops._numpy import log1p as log1p
from dagjax.ops._numpy import logical_and as logical_and
from dagjax.ops._numpy import logical_not as logical_not
from dagjax.ops._numpy import logical_or as logical_or
from dagjax.ops._numpy import logical_xor as logical_xor
from dagjax.ops._numpy import matmul as matmul
from dagjax.ops._numpy import maximum as maximum
from dagjax.ops._numpy import minimum as minimum
from dagjax.ops._numpy import mod as mod
from dagjax.ops._numpy import multiply as multiply
from dagjax.ops._numpy import negative as negative
from dagjax.ops._numpy import not_equal as not_equal
from dagjax.ops._numpy import power as power
from dagjax.ops._numpy import round as round
from dagjax.ops._numpy import rsqrt as rsqrt
from dagjax.ops._numpy import sign as sign
from dagjax.ops._numpy import sin as sin
from dagjax.ops._numpy import sqrt as sqrt
from dagjax.ops._numpy import square as square
from dagjax.ops._numpy import subtract as subtract
from dagjax.ops._numpy import tanh as tanh
from dagjax.ops._numpy import true_divide as true_divide
from dagjax.ops._numpy import where as where

# What Python operators on symbolic tensors record, as Keras's KerasTensor does.
_set_operators({
    op.__name__: op
    for op in (
        add, subtract, multiply, matmul, true_divide, floor_divide, mod, power, logical_and, logical_or,
        logical_xor, less, less_equal, greater, greater_equal, not_equal, get_item, negative, absolute,
        logical_not, round, reshape, squeeze,
    )
})
