"""Reading a container's log for `GET /containers/{id}/logs`: now engine/logread.py (json-file
and local, rotated files plain or gzip); kept as the old import path."""

from __future__ import annotations

from .logread import FOLLOW_POLL, read_logs  # noqa: F401 - re-exported

__all__ = ["FOLLOW_POLL", "read_logs"]
