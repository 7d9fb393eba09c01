"""Suite-wide pytest set-up: markers, the rings' order, and skipping root-only tests.

Rings (DESIGN "Tests"): tests/unit needs nothing; tests/integration needs root and the real
kernel; tests/e2e drives a private sampand (root too). Tests under integration/ and e2e/ are
marked `root` (and e2e/ also `e2e`) automatically, so a non-root run skips them with a reason
instead of failing half-way through a mount.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parent
_RING_ORDER = {"unit": 0, "integration": 1, "e2e": 2}


def pytest_configure(config: pytest.Config) -> None:
    # Also declared in pyproject.toml; repeated here so running with another rootdir/ini
    # (e.g. `pytest -c /dev/null tests/...`) doesn't warn about unknown markers.
    config.addinivalue_line("markers", "root: needs root and the real kernel (namespaces, mounts)")
    config.addinivalue_line("markers", "e2e: drives a real sampand through docker CLI / docker-py / sampan CLI")


def _ring(item: pytest.Item) -> str | None:
    try:
        rel = Path(str(item.path)).resolve().relative_to(_TESTS)
    except ValueError:
        return None
    return rel.parts[0] if len(rel.parts) > 1 else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        ring = _ring(item)
        if ring in ("integration", "e2e"):
            item.add_marker(pytest.mark.root)
        if ring == "e2e":
            item.add_marker(pytest.mark.e2e)
    # Cheap rings first, so a broken unit test shows up before minutes of e2e; the sort is
    # stable, so the order inside a ring is pytest's own.
    items.sort(key=lambda it: _RING_ORDER.get(_ring(it) or "", 1))

    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="needs root (namespaces, mounts, cgroups): run as root")
        for item in items:
            if item.get_closest_marker("root") is not None:
                item.add_marker(skip)
