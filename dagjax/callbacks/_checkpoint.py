"""``ModelCheckpoint``: save the model (or its weights) during training, every time or when it improves."""

from __future__ import annotations

import os
import warnings

from dagjax.callbacks._monitor import MonitorCallback


class ModelCheckpoint(MonitorCallback):
    """Save the model at the end of every epoch (or every ``save_freq`` batches), as Keras 3 does.

    ``filepath`` may hold ``str.format`` fields filled from the epoch number
    (1-based, as Keras) and the logs: ``"ckpt/{epoch:02d}-{val_loss:.2f}.dj"``.
    Files are written with ``model.save`` (or ``model.save_weights`` when
    ``save_weights_only``), atomically, in dagjax's one file format, whatever
    the extension. ``save_best_only`` saves only when ``monitor`` improves on
    the best value so far (starting from ``initial_value_threshold`` if given).
    An integer ``save_freq`` saves every that many batches, which makes ``fit``
    run one step per compiled call; the default ``"epoch"`` keeps it fused.

    >>> ModelCheckpoint("ckpt/best.dj", monitor="val_loss", save_best_only=True)  # doctest: +SKIP
    """

    def __init__(
        self,
        filepath: str | os.PathLike,
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        save_freq: str | int = "epoch",
        initial_value_threshold: float | None = None,
    ) -> None:
        super().__init__(monitor, mode, initial_value_threshold)
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int)):
            raise ValueError(
                f"Unrecognized save_freq: {save_freq}. Expected save_freq are 'epoch' or integer values"
            )
        self.verbose = verbose
        self.filepath = os.fspath(filepath)
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.save_freq = save_freq
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen: int | None = None
        self._current_epoch = 0
        if save_freq != "epoch":
            # Batch hooks only when saving by batch: any batch hook makes fit run step by step.
            self.on_epoch_begin = self._track_epoch
            self.on_train_batch_end = self._save_on_batch

    def _track_epoch(self, epoch: int, logs: dict | None = None) -> None:
        self._current_epoch = epoch

    def _save_on_batch(self, batch: int, logs: dict | None = None) -> None:
        if self._should_save_on_batch(batch):
            self._save_model(self._current_epoch, batch, logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """With ``save_freq="epoch"``, save (if ``save_best_only``: only when ``monitor`` improved)."""
        if self.monitor_op is None:
            self._set_monitor_op()
        if self.save_freq == "epoch":
            self._save_model(epoch, None, logs)

    def _should_save_on_batch(self, batch: int) -> bool:
        """Count batches (a new epoch restarts ``batch`` at 0) and say when ``save_freq`` is reached."""
        if self._last_batch_seen is None or batch <= self._last_batch_seen:
            added = batch + 1
        else:
            added = batch - self._last_batch_seen
        self._batches_seen_since_last_saving += added
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            return True
        return False

    def _should_save_model(self, epoch: int, logs: dict, filepath: str) -> bool:
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.", stacklevel=3)
            return True
        best = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                print(
                    f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to {current:.5f}, "
                    f"saving model to {filepath}"
                )
            self.best = current
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best}")
        return False

    def _save_model(self, epoch: int, batch: int | None, logs: dict | None) -> None:
        logs = logs or {}
        filepath = self._get_file_path(epoch, batch, logs)
        if not self._should_save_model(epoch, logs, filepath):
            return
        if self.save_weights_only:
            self.model.save_weights(filepath, overwrite=True)
        else:
            self.model.save(filepath, overwrite=True)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: finished saving model to {filepath}")

    def _get_file_path(self, epoch: int, batch: int | None, logs: dict) -> str:
        """``filepath`` with ``{epoch}``, ``{batch}`` (1-based) and the logs filled in."""
        fields = {**logs, "epoch": epoch + 1}
        if batch is not None and "batch" not in logs:
            fields["batch"] = batch + 1
        try:
            return self.filepath.format(**fields)
        except KeyError as err:
            raise KeyError(
                f'Failed to format this callback filepath: "{self.filepath}". Reason: {err} is not among '
                f"the fields it can use: {sorted(fields)}."
            ) from None
