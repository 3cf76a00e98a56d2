"""``BackupAndRestore``: resume an interrupted ``fit`` exactly where its last full epoch ended."""

from __future__ import annotations

import os
import re
import warnings

from dagjax.callbacks._base import Callback
from dagjax.io import CheckpointError, writes_files

# A backup after n finished epochs, and the temporary file a save killed midway leaves beside it.
_BACKUP = re.compile(r"backup-(\d{6,})\.dj")
_LEFTOVER = re.compile(r"\.backup-\d{6,}\.dj\.[0-9a-f]+\.tmp")


class BackupAndRestore(Callback):
    """Back up the training state at each epoch end; the next ``fit`` with this callback resumes from it.

    A backup is one weights file (``model.save_weights``: params, state,
    optimizer state and step counter, written atomically) named by the
    number of finished epochs, ``backup_dir/backup-000003.dj``. ``fit``
    draws every random number (shuffling, dropout) from the compile seed
    and the step counter, so restoring the step restores the random stream
    too: after a crash or a kill, ``fit`` with the same model, compile and
    fit arguments, and this callback, starts at the first unfinished epoch
    and ends with the same params as a run that was never interrupted.

    ``double_checkpoint`` keeps the previous backup as well, used if the
    newest cannot be read. ``delete_checkpoint`` removes the backups when
    ``fit`` finishes. ``backup_dir`` is the callback's own: use it for
    nothing else.

    >>> model.fit(x, y, epochs=50, callbacks=[BackupAndRestore("run/backup")])  # doctest: +SKIP
    """

    def __init__(
        self,
        backup_dir: str | os.PathLike,
        save_freq: str = "epoch",
        double_checkpoint: bool = False,
        delete_checkpoint: bool = True,
    ) -> None:
        super().__init__()
        if not backup_dir:
            raise ValueError("Empty `backup_dir` argument passed")
        if save_freq != "epoch":
            raise NotImplementedError(
                f"BackupAndRestore(save_freq={save_freq!r}): dagjax backs up at the end of each epoch only "
                "(save_freq='epoch', Keras's default)."
            )
        self.backup_dir = os.fspath(backup_dir)
        self.double_checkpoint = double_checkpoint
        self.delete_checkpoint = delete_checkpoint

    def _backups(self) -> list[tuple[int, str]]:
        """``(epochs finished, path)`` of each backup in ``backup_dir``, newest first."""
        if not os.path.isdir(self.backup_dir):
            return []
        found = [(_BACKUP.fullmatch(name), name) for name in os.listdir(self.backup_dir)]
        return sorted(
            ((int(match.group(1)), os.path.join(self.backup_dir, name)) for match, name in found if match),
            reverse=True,
        )

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Load the newest readable backup, if any, and make ``fit`` start at the epoch after it."""
        unreadable = []
        for finished, path in self._backups():
            try:
                self.model.load_weights(path)  # by structure: a model rebuilt in one session has new names
            except CheckpointError as err:
                unreadable.append(str(err))
                continue
            self.model.fit_session.resume_at(finished)
            if unreadable:
                warnings.warn(
                    f"BackupAndRestore skipped newer backups it could not read and resumed from '{path}': "
                    + " ".join(unreadable),
                    stacklevel=2,
                )
            return
        if unreadable:
            raise CheckpointError(
                f"BackupAndRestore found backups in '{self.backup_dir}' but could read none of them: "
                + " ".join(unreadable)
            )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Write this epoch's backup, then delete older ones (all but one more with ``double_checkpoint``)."""
        finished = epoch + 1
        self.model.save_weights(os.path.join(self.backup_dir, f"backup-{finished:06d}.dj"))
        keep = 2 if self.double_checkpoint else 1
        if not writes_files():  # process 0 keeps the files of a multi-process run
            return
        for _, path in [b for b in self._backups() if b[0] != finished][keep - 1 :]:
            os.remove(path)

    def on_train_end(self, logs: dict | None = None) -> None:
        """With ``delete_checkpoint``, remove the backups and leftovers (and ``backup_dir`` if emptied)."""
        if not (self.delete_checkpoint and writes_files() and os.path.isdir(self.backup_dir)):
            return
        for name in os.listdir(self.backup_dir):
            if _BACKUP.fullmatch(name) or _LEFTOVER.fullmatch(name):
                os.remove(os.path.join(self.backup_dir, name))
        if not os.listdir(self.backup_dir):
            os.rmdir(self.backup_dir)
