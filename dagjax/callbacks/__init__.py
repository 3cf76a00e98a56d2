"""Callbacks with Keras 3's names and hooks, passed to ``fit`` / ``evaluate`` / ``predict``."""

from dagjax.callbacks._base import Callback as Callback
from dagjax.callbacks._base import CallbackList as CallbackList
from dagjax.callbacks._base import History as History
from dagjax.callbacks._base import ProgbarLogger as ProgbarLogger
