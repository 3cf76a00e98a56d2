"""Small callbacks around the logs: ``TerminateOnNaN``, ``CSVLogger``, ``LambdaCallback``."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from dagjax.callbacks._base import Callback


class TerminateOnNaN(Callback):
    """Stop training when the loss becomes NaN or infinite (``raise_error``: raise instead).

    The running loss of an epoch stays NaN once one step gives NaN, so this
    callback reads it once per compiled chunk of steps: it keeps ``fit`` on
    its fused path.
    """

    chunk_safe = True
    def __init__(self, raise_error: bool = False) -> None:
        super().__init__()
        self.raise_error = raise_error

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """On a NaN or infinite ``loss``: raise if ``raise_error``, else set ``model.stop_training``."""
        loss = (logs or {}).get("loss")
        if loss is None or np.isfinite(loss):
            return
        if self.raise_error:
            raise RuntimeError(
                f"NaN or Inf loss encountered at batch {batch}. Loss value: {float(loss)}. "
                "Terminating training immediately."
            )
        print(f"Batch {batch}: Invalid loss, terminating training")
        self.model.stop_training = True


class CSVLogger(Callback):
    """Write each epoch's logs as a row of a CSV file: ``epoch`` then the logs sorted by name."""


    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False) -> None:
        super().__init__()
        self.sep = separator
        self.filename = os.fspath(filename)
        self.append = append
        self.writer = None
        self.keys: list[str] | None = None
        self.append_header = True
        self.csv_file = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Open the file (with ``append``, added to, and given a header only if it is empty)."""
        if self.append and os.path.exists(self.filename):
            with open(self.filename) as f:
                self.append_header = not f.readline()
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = open(self.filename, "a" if self.append else "w", newline="")
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Write the epoch's row (``NA`` for a missing log) and flush, so the file is readable mid-run."""
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(key.startswith("val_") for key in self.keys):
                self.keys += [f"val_{key}" for key in self.keys]
        if self.writer is None:

            class Dialect(csv.excel):
                delimiter = self.sep

            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch", *self.keys], dialect=Dialect)
            if self.append_header:
                self.writer.writeheader()
        self.writer.writerow({"epoch": epoch, **{key: _cell(logs.get(key, "NA")) for key in self.keys}})
        self.csv_file.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        """Close the file."""
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None


def _cell(value: Any) -> Any:
    """A log as Keras's CSVLogger writes it: a vector metric as ``"[a, b]"``, quotes included."""
    if isinstance(value, np.ndarray) and value.ndim:
        return f'"[{", ".join(map(str, value))}]"'
    return value


_HOOKS = tuple(
    name for name in vars(Callback) if name.startswith("on_") and callable(getattr(Callback, name))
)


def _positional(fn: Callable, with_index: bool) -> Callable:
    """A hook calling ``fn`` with positional arguments, as Keras calls lambda hooks."""
    if with_index:
        return lambda index, logs=None: fn(index, logs)
    return lambda logs=None: fn(logs)


class LambdaCallback(Callback):
    """A callback made of plain functions, one per hook: ``LambdaCallback(on_epoch_end=fn, ...)``.

    Epoch and batch hooks take ``(epoch_or_batch, logs)``, the others
    ``(logs)``. Any hook name of :class:`Callback` may be given as a keyword
    (``on_batch_end``, ``on_test_end``, ...). Only the hooks given are
    defined, so a ``LambdaCallback`` without batch hooks keeps ``fit`` fused.

    >>> LambdaCallback(on_epoch_end=lambda epoch, logs: print(epoch, logs["loss"]))  # doctest: +SKIP
    """

    def __init__(
        self,
        on_epoch_begin: Callable | None = None,
        on_epoch_end: Callable | None = None,
        on_train_begin: Callable | None = None,
        on_train_end: Callable | None = None,
        on_train_batch_begin: Callable | None = None,
        on_train_batch_end: Callable | None = None,
        **kwargs: Callable,
    ) -> None:
        super().__init__()
        unknown = sorted(name for name in kwargs if name not in _HOOKS)
        if unknown:
            raise TypeError(f"LambdaCallback got unknown hooks {unknown}; the hooks are {sorted(_HOOKS)}.")
        given = {
            "on_epoch_begin": on_epoch_begin,
            "on_epoch_end": on_epoch_end,
            "on_train_begin": on_train_begin,
            "on_train_end": on_train_end,
            "on_train_batch_begin": on_train_batch_begin,
            "on_train_batch_end": on_train_batch_end,
            **kwargs,
        }
        for name, fn in given.items():
            if fn is not None:
                with_index = "epoch" in name or "batch" in name
                setattr(self, name, _positional(fn, with_index))
