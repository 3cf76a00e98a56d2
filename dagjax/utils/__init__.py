"""Utilities around models: summaries (and, later, graph plots)."""

from dagjax.utils._summary import summary as summary
