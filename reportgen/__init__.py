"""reportgen: one self-contained HTML report of what a transformer attends to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "build_report"]

if TYPE_CHECKING:
    from reportgen.pipeline import Report


def build_report(sentences: Any, model: str | None = None, **options: Any) -> Report:
    """Build a report in memory; see :func:`reportgen.pipeline.build_report`."""
    # Imported here so that `import reportgen` (and `reportgen --help`) stays instant.
    from reportgen.pipeline import build_report as _build

    return _build(sentences, model=model, **options)
