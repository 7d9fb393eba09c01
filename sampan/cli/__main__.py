"""`python -m sampan.cli ...` runs the CLI (tests use it when the `sampan` script is not installed)."""

import sys

from .main import main

sys.exit(main())
