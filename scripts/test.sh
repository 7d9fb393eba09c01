#!/usr/bin/env bash
# README command two: install (idempotent), then the whole suite in rings: unit (no root, no
# kernel features), integration (root, real kernel), e2e (a private sampand driven by the real
# docker CLI, docker-py and sampan's CLI). Extra arguments go to pytest (e.g. -x, -k NAME).
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

bash scripts/install.sh || { echo "test.sh: install.sh failed" >&2; exit 1; }

rings=()
for d in tests/unit tests/integration tests/e2e; do
    [ -d "$d" ] && rings+=("$d")
done
[ "${#rings[@]}" -gt 0 ] || { echo "test.sh: no test directories" >&2; exit 1; }

# A hung test must not eat CI's 90 minutes: after SAMPAN_TEST_TIMEOUT seconds pytest gets
# SIGINT, which makes it print what it has (summary line included) and exit non-zero.
limit="${SAMPAN_TEST_TIMEOUT:-1500}"
echo "test.sh: pytest ${rings[*]} (limit ${limit}s)"
timeout -s INT -k 60 "$limit" \
    "$REPO/.venv/bin/python" -m pytest "${rings[@]}" -q -p no:cacheprovider -rfEs --durations=5 "$@"
rc=$?
# Nothing more is printed on the usual outcomes: pytest's summary line stays the last line.

case "$rc" in
    0) ;;
    5) echo "test.sh: no tests were collected: that is a failure" >&2; exit 1 ;;
    124|137) echo "test.sh: the suite ran past ${limit}s" >&2; exit 1 ;;
    *) exit "$rc" ;;
esac
