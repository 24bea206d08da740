"""``python benchmarks/bench.py``: the same as ``python -m benchmarks`` (see __init__.py)."""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a file, the folder above this one is not on the path; the package needs it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
