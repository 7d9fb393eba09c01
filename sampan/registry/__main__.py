"""`python -m sampan.registry serve|gc [OPTIONS]`: the registry without the sampan CLI around it
(same options as `sampan registry serve|gc`)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from ..cli.common import Ctx
    from ..cli.main import run_spec
    from ..cli.registry import SPECS
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in ("serve", "gc"):
        sys.stderr.write("usage: python -m sampan.registry serve|gc [OPTIONS]\n")
        return 2
    key = "registry " + argv[0]
    return run_spec(Ctx("unix:///dev/null", f"sampan {key}"), SPECS[key], argv[1:])


if __name__ == "__main__":
    sys.exit(main())
