"""Checks of ``compile``'s and ``fit``'s Keras arguments that need no data, in the user's words."""

from __future__ import annotations

import numbers


def check_execution(run_eagerly: bool, jit_compile: bool | str, auto_scale_loss: bool) -> None:
    """Refuse Keras's uncompiled modes, which dagjax does not have, in words that say what to do instead."""
    if run_eagerly or jit_compile is False:
        given = "run_eagerly=True" if run_eagerly else "jit_compile=False"
        raise NotImplementedError(
            f"compile({given}): dagjax always compiles its steps with jax.jit. To step through the "
            "model's Python code (print, a debugger), run the call under `with jax.disable_jit():`, "
            "or use jax.debug.print inside a layer."
        )
    if jit_compile not in (True, "auto"):
        raise ValueError(f"compile(jit_compile={jit_compile!r}): expected True, False or 'auto'.")
    if not isinstance(auto_scale_loss, bool):
        raise TypeError(f"compile(auto_scale_loss={auto_scale_loss!r}): expected True or False.")


def check_batch_size(batch_size: int | None) -> int:
    """32 for None; any integer type (numpy's too) above 0."""
    if batch_size is None:
        return 32
    if not isinstance(batch_size, bool) and isinstance(batch_size, numbers.Integral) and batch_size > 0:
        return int(batch_size)
    raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")


def check_fit_arguments(validation_split: float, validation_freq: int | list) -> None:
    """``validation_split`` in [0, 1) and ``validation_freq`` a positive int or a list of epochs."""
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split}.")
    if isinstance(validation_freq, bool) or (isinstance(validation_freq, int) and validation_freq < 1):
        raise ValueError(
            f"validation_freq must be a positive int (validate every that many epochs) or a list of "
            f"epochs (1-based), got {validation_freq!r}."
        )
