"""Conventions shared by layers over 1-3 spatial dims (conv, pooling, padding).

Inputs are ``(batch, *spatial, channels)`` for ``data_format="channels_last"``
(the default, as Keras) or ``(batch, channels, *spatial)`` for
``"channels_first"``. Sizes, strides and paddings given as an int apply to
every spatial dim.
"""

from __future__ import annotations

from typing import Any

from dagjax._graph import describe_shapes
from dagjax.layers._base import Layer
from dagjax.layers._specs import TensorSpec

_DIM_NAMES = {1: ("steps",), 2: ("height", "width"), 3: ("depth", "height", "width")}


def as_tuple(value: Any, n: int, name: str, allow_zero: bool = False) -> tuple[int, ...]:
    """``value`` (an int or ``n`` ints) as a tuple of ``n`` non-negative ints, as Keras."""
    values = (value,) * n if isinstance(value, int) else tuple(value)
    if len(values) != n or not all(isinstance(v, int) for v in values):
        raise ValueError(f"`{name}` must be an int or a tuple of {n} ints, got {value!r}.")
    if any(v < 0 or (v == 0 and not allow_zero) for v in values):
        low = "non-negative" if allow_zero else "positive"
        raise ValueError(f"`{name}` must hold {low} ints, got {value!r}.")
    return values


def as_pairs(value: Any, rank: int, name: str) -> tuple[tuple[int, int], ...]:
    """Per-dim ``(before, after)`` amounts from an int, ``rank`` ints, or ``rank`` pairs.

    For ``rank == 1`` a pair of ints means ``(before, after)``, as Keras's 1D layers.
    """
    if rank == 1:
        return (as_tuple(value, 2, name, allow_zero=True),)
    if isinstance(value, int):
        (amount,) = as_tuple(value, 1, name, allow_zero=True)
        return ((amount, amount),) * rank
    if len(value) != rank:
        raise ValueError(f"`{name}` must be an int, {rank} ints or {rank} pairs of ints, got {value!r}.")
    return tuple(as_tuple(v, 2, f"{name}[{i}]", allow_zero=True) for i, v in enumerate(value))


def standardize_data_format(value: str | None) -> str:
    """``"channels_last"`` (for ``None``) or ``"channels_first"``, case-insensitively; else a ValueError."""
    fmt = "channels_last" if value is None else str(value).lower()
    if fmt not in ("channels_last", "channels_first"):
        raise ValueError(f"`data_format` must be 'channels_last' or 'channels_first', got {value!r}.")
    return fmt


def standardize_padding(value: str, allow_causal: bool = False) -> str:
    """``"valid"`` or ``"same"`` (or ``"causal"`` where allowed), lowercased; else a ValueError."""
    padding = str(value).lower()
    allowed = ("valid", "same", "causal") if allow_causal else ("valid", "same")
    if padding not in allowed:
        raise ValueError(f"`padding` must be one of {allowed}, got {value!r}.")
    return padding


class SpatialLayer(Layer):
    """A layer over inputs of rank ``rank + 2`` laid out by ``data_format``.

    Subclasses set the class attribute ``rank`` (1, 2 or 3).
    """

    rank: int

    def __init__(self, data_format: str | None = None, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.data_format = standardize_data_format(data_format)
        self.input_ndim = self.rank + 2

    @property
    def channels_last(self) -> bool:
        """Whether channels come last, ``(batch, *spatial, channels)``."""
        return self.data_format == "channels_last"

    @property
    def channel_axis(self) -> int:
        """The channel axis of the input, batch axis counted."""
        return self.rank + 1 if self.channels_last else 1

    @property
    def spatial_axes(self) -> tuple[int, ...]:
        """The ``rank`` spatial axes of the input, batch axis counted."""
        first = 1 if self.channels_last else 2
        return tuple(range(first, first + self.rank))

    def layout(self) -> str:
        """The expected input layout in words, for error messages."""
        dims = ", ".join(_DIM_NAMES[self.rank])
        return f"(batch, {dims}, channels)" if self.channels_last else f"(batch, channels, {dims})"

    def check_input(self, *specs: Any) -> None:
        """One tensor of rank ``rank + 2``, with an error naming the expected layout; then ``check_sizes``."""
        if len(specs) != 1 or not hasattr(specs[0], "shape"):
            raise self.input_error(
                f"takes one tensor of layout {self.layout()}, got {describe_shapes(specs)}"
            )
        (spec,) = specs
        if len(spec.shape) != self.input_ndim:
            raise self.input_error(
                f"expects input of rank {self.input_ndim} {self.layout()} (batch dim included), "
                f"got shape {spec.shape} of rank {len(spec.shape)}"
            )
        self.check_sizes(spec)

    def check_sizes(self, spec: TensorSpec) -> None:
        """Raise for spatial sizes this layer cannot take (the rank is already checked)."""

    def known_channels(self, spec: TensorSpec) -> int:
        """The channel dim, which must be known to size weights."""
        channels = spec.shape[self.channel_axis]
        if channels is None:
            raise self.input_error(
                f"needs a known channel dimension to size its weights, got shape {spec.shape} "
                f"(layout {self.layout()})"
            )
        return channels

    def check_window_fits(self, spec: TensorSpec, window: tuple[int, ...], what: str) -> None:
        """With padding "valid", each known spatial dim must hold at least one window."""
        for axis, size in zip(self.spatial_axes, window):
            dim = spec.shape[axis]
            if dim is not None and dim < size:
                raise self.input_error(
                    f"with padding='valid' and a {what} spanning {window} needs spatial dims at least "
                    f"that large, got shape {spec.shape} (layout {self.layout()})"
                )

    def get_config(self) -> dict:
        """The base config plus the standardized ``data_format``."""
        return {**super().get_config(), "data_format": self.data_format}
