"""Networking: bridge networks, IPAM, NAT and published ports, embedded DNS.

Public surface: `NetworkService` (service.py), owned by the engine as `engine.networks`, and
`purge(config)` to remove every kernel object a daemon with that configuration made.
"""

from __future__ import annotations

from typing import Any


def purge(data_root: str, exec_root: str) -> None:
    from .cleanup import purge as _purge
    _purge(data_root, exec_root)


__all__ = ["purge"]
