"""Random numbers for Keras-style ``call`` code: Keras's ``keras.random`` names.

>>> from dagjax import random
>>> self.seed_generator = random.SeedGenerator(1337)          # in __init__
>>> eps = random.normal(shape=(batch, dim), seed=self.seed_generator)  # in call

Inside a compiled ``call`` the draws come from the step's rng (``layers._random`` says how).
"""

from dagjax.layers._random import SeedGenerator as SeedGenerator
from dagjax.layers._random import categorical as categorical
from dagjax.layers._random import dropout as dropout
from dagjax.layers._random import normal as normal
from dagjax.layers._random import randint as randint
from dagjax.layers._random import shuffle as shuffle
from dagjax.layers._random import truncated_normal as truncated_normal
from dagjax.layers._random import uniform as uniform
