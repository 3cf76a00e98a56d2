"""``TensorBoard``: Keras 3's callback, writing event files with tensorboardX (no TensorFlow).

What lands where (``log_dir`` holds one run per folder, as Keras lays it out):

- ``train/``: ``epoch_<log>`` scalars at step ``epoch`` (plus ``epoch_learning_rate``
  and, if asked, ``epoch_steps_per_second``); ``batch_<log>`` scalars every
  ``update_freq`` batches; the layer graph; histograms; weight images.
- ``validation/``: the ``val_`` logs as ``epoch_<log>``, and
  ``evaluation_<log>_vs_iterations`` at the optimizer step after each evaluation.
- ``projector_config.pbtxt`` and ``embeddings/``: Embedding matrices for the Projector.

Histograms (every ``histogram_freq`` epochs) cover each weight and, when fit
has validation arrays, each layer's activations and each weight's gradient on
the first validation batch. They and the embedding snapshots are computed by
their own jitted function, only on the epochs that log them. The batch hook is
chunk-safe: with fused steps it runs once per compiled call, and a batch point
is written at the end of each call that reaches a multiple of ``update_freq``
(``compile(steps_per_execution=1)`` puts one exactly every ``update_freq`` batches).
"""

from __future__ import annotations

import os
import struct
import time
import warnings
import zlib
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from dagjax.callbacks._base import Callback
from dagjax.callbacks._tb_graph import graph_def
from dagjax.callbacks._tb_histograms import HistogramProbe, leaf
from dagjax.callbacks._tb_projector import ProjectorWriter

if TYPE_CHECKING:
    from dagjax.model import Model

_MISSING_WRITER = (
    "callbacks.TensorBoard writes event files with the tensorboardX package, which is not installed. "
    "Install it with `pip install 'dagjax[tensorboard]'` (or `pip install tensorboardX`)."
)


def _require_writer() -> Any:
    try:
        import tensorboardX
    except ImportError as err:
        raise ImportError(_MISSING_WRITER) from err
    return tensorboardX


def png_gray(pixels: np.ndarray) -> bytes:
    """A 2-D uint8 array as an 8-bit grayscale PNG file."""
    height, width = pixels.shape
    raw = b"".join(b"\x00" + row.tobytes() for row in np.ascontiguousarray(pixels, np.uint8))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def weight_image(weight: np.ndarray) -> np.ndarray:
    """A weight as a 2-D grayscale image: min-max scaled, wider than tall, leading axes merged."""
    w = np.asarray(weight, np.float32)
    w = w.reshape(1, -1) if w.ndim < 2 else w.reshape(-1, w.shape[-1])
    if w.shape[0] > w.shape[1]:
        w = w.T
    lo, hi = float(np.nanmin(w)), float(np.nanmax(w))
    scaled = (w - lo) / (hi - lo) if hi > lo else np.zeros_like(w)
    return np.round(np.nan_to_num(scaled) * 255).astype(np.uint8)


class TensorBoard(Callback):
    """Logs scalars, the layer graph, histograms and embeddings for TensorBoard (Keras 3's arguments).

    >>> model.fit(x, y, validation_split=0.2, epochs=5,
    ...           callbacks=[callbacks.TensorBoard("logs", histogram_freq=1)])
    >>> # then: tensorboard --logdir logs
    """

    chunk_safe = True

    def __init__(
        self,
        log_dir: str | os.PathLike = "logs",
        histogram_freq: int = 0,
        write_graph: bool = True,
        write_images: bool = False,
        write_steps_per_second: bool = False,
        update_freq: str | int = "epoch",
        profile_batch: int = 0,
        embeddings_freq: int = 0,
        embeddings_metadata: str | dict | None = None,
    ) -> None:
        super().__init__()
        if profile_batch:
            raise NotImplementedError(
                f"TensorBoard(profile_batch={profile_batch!r}): dagjax does not profile yet; use "
                "jax.profiler.trace around fit, which TensorBoard's profile plugin reads."
            )
        self._tbx = _require_writer()
        update_freq = 1 if update_freq == "batch" else update_freq
        if update_freq != "epoch" and (
            isinstance(update_freq, bool) or not isinstance(update_freq, int) or update_freq < 1
        ):
            raise ValueError(f'update_freq must be "epoch", "batch" or a positive int, got {update_freq!r}.')
        for name, value in (("histogram_freq", histogram_freq), ("embeddings_freq", embeddings_freq)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative int (0 turns it off), got {value!r}.")
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = histogram_freq
        self.write_graph = write_graph
        self.write_images = write_images
        self.write_steps_per_second = write_steps_per_second
        self.update_freq = update_freq
        self.embeddings_freq = embeddings_freq
        self.embeddings_metadata = embeddings_metadata
        self._writers: dict = {}
        self._graph_written = False
        self._probes: dict = {}
        self._projector: ProjectorWriter | None = None
        self._batches = 0  # batches trained in this fit (Keras's global train batch)
        self._epoch_start_batch = 0
        self._last_written = 0
        self._clock = (0.0, 0)
        self._batch_clock = (0.0, 0)
        self._in_fit = False
        self._step_base = 0
        self._warned = False

    # ------------------------------------------------------------------ writers
    def set_model(self, model: Model) -> None:
        """Bind the model; close the previous writers and reset histogram probes and projector for it."""
        super().set_model(model)
        self._close_writers()
        self._probes = {}
        self._projector = (
            ProjectorWriter(self.log_dir, model, self.embeddings_metadata) if self.embeddings_freq else None
        )

    def _writer(self, run: str) -> Any:
        if run not in self._writers:
            self._writers[run] = self._tbx.FileWriter(os.path.join(self.log_dir, run), flush_secs=10)
        return self._writers[run]

    def _scalars(self, run: str, values: dict, step: int) -> None:
        """One scalar event per log; vector metrics (``Precision(thresholds=[...])``) are left out."""
        writer = self._writer(run)
        for tag, value in values.items():
            if np.ndim(value):
                continue
            writer.add_summary(self._tbx.summary.scalar(tag, float(value)), step)

    def _close_writers(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    # ------------------------------------------------------------------ hooks
    def on_train_begin(self, logs: dict | None = None) -> None:
        """Reset the batch counts, note the optimizer step, and write the layer graph (once per callback)."""
        self._in_fit = True
        self._batches = self._epoch_start_batch = self._last_written = 0
        self._step_base = _optimizer_step(self.model)
        if self.write_graph and not self._graph_written:
            from tensorboardX.proto.event_pb2 import Event

            self._writer("train").add_event(Event(graph_def=graph_def(self.model).SerializeToString()))
            self._graph_written = True

    def on_train_end(self, logs: dict | None = None) -> None:
        """Close the event files, flushing them."""
        self._in_fit = False
        self._close_writers()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Start the clocks behind ``steps_per_second``."""
        self._clock = self._batch_clock = (time.perf_counter(), self._batches)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Write ``batch_<log>`` scalars when the batch count passes a multiple of ``update_freq``."""
        self._batches = self._epoch_start_batch + batch + 1
        if (
            self.update_freq == "epoch"
            or self._batches // self.update_freq <= self._last_written // self.update_freq
        ):
            return
        values = {f"batch_{k}": v for k, v in jax.device_get(logs or {}).items()}
        if self.write_steps_per_second:
            start, done = self._batch_clock
            values["batch_steps_per_second"] = (self._batches - done) / max(time.perf_counter() - start, 1e-9)
        self._batch_clock = (time.perf_counter(), self._batches)
        self._scalars("train", values, self._batches)
        self._last_written = self._batches

    def on_test_end(self, logs: dict | None = None) -> None:
        """Write ``evaluation_<log>_vs_iterations`` under ``validation/`` at the optimizer step."""
        if not logs or not getattr(self.model, "compiled", False):
            return
        step = self._step_base + self._batches if self._in_fit else _optimizer_step(self.model)
        self._scalars("validation", {f"evaluation_{k}_vs_iterations": v for k, v in logs.items()}, step)
        if not self._in_fit:
            self._writer("validation").flush()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Write the epoch scalars (train and validation), then histograms and embeddings when due."""
        self._epoch_start_batch = self._batches
        logs = logs or {}
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        rate = _learning_rate(self.model)
        if rate is not None:
            train["learning_rate"] = rate
        if self.write_steps_per_second:
            start, done = self._clock
            train["steps_per_second"] = (self._batches - done) / max(time.perf_counter() - start, 1e-9)
        self._scalars("train", {f"epoch_{k}": v for k, v in train.items()}, epoch)
        val = {f"epoch_{k[4:]}": v for k, v in logs.items() if k.startswith("val_")}
        if val:
            self._scalars("validation", val, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._log_histograms(epoch)
        if self._projector is not None and epoch % self.embeddings_freq == 0:
            self._projector.write(self.model.weights_view()[0], epoch)
        for writer in self._writers.values():
            writer.flush()

    # ------------------------------------------------------------------ histograms
    def _log_histograms(self, epoch: int) -> None:
        batch = self._validation_batch()
        key = None if batch is None else tuple(None if y is None else y.shape for y in batch[1])
        if key not in self._probes:
            self._probes[key] = HistogramProbe(self.model, None if batch is None else list(key))
        params, state = self.model.weights_view()
        histograms = self._probes[key](params, state, batch)
        writer = self._writer("train")
        for tag, h in histograms.items():
            writer.add_summary(self._tbx.summary.histogram_raw(tag, *h), epoch)
        if self.write_images:
            trees = {"params": params, "state": state}
            for collection, path in self.model.weight_paths():
                weight = jax.device_get(leaf(trees[collection], path))
                self._image(writer, "/".join(path) + "/image", weight_image(weight), epoch)

    def _image(self, writer: Any, tag: str, pixels: np.ndarray, step: int) -> None:
        from tensorboardX.proto.summary_pb2 import Summary

        image = Summary.Image(
            height=pixels.shape[0], width=pixels.shape[1], colorspace=1, encoded_image_string=png_gray(pixels)
        )
        writer.add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)

    def _validation_batch(self) -> tuple | None:
        """The first batch of the running fit's validation arrays, as ``(x, y, sample_weight, mask)``."""
        batch = self.model.fit_session.validation_batch()
        if batch is None:
            if not self._warned:
                self._warned = True
                warnings.warn(
                    "TensorBoard(histogram_freq=...) logs weight histograms only: activation and gradient "
                    "histograms need validation arrays in fit (validation_split or validation_data=(x, y)).",
                    UserWarning,
                    stacklevel=2,
                )
        return batch


def _optimizer_step(model: Model) -> int:
    return int(model.optimizer.iterations) if model.compiled else 0


def _learning_rate(model: Model) -> float | None:
    rate = model.fit_session.get_learning_rate() if model.compiled else None
    return None if rate is None else float(rate)
