"""reportgen: one self-contained HTML report of what a transformer attends to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "build_report", "from_attention", "from_export"]

if TYPE_CHECKING:
    from reportgen.pipeline import Report


def build_report(sentences: Any, model: Any = None, **options: Any) -> Report:
    """Build a report in memory; see :func:`reportgen.pipeline.build_report`.

    `model` is a name or folder, or a loaded transformers model object (then pass its
    ``tokenizer=`` too): that object runs as it is and comes back as it was."""
    # Imported here so that `import reportgen` (and `reportgen --help`) stays instant.
    from reportgen.pipeline import build_report as _build

    return _build(sentences, model=model, **options)


def from_attention(attention: Any = None, tokens: Any = None, **options: Any) -> Report:
    """A report of attention the caller already has (bertviz's ``head_view(attention,
    tokens)`` shape); see :func:`reportgen.given.from_attention`."""
    from reportgen.given import from_attention as _given

    return _given(attention, tokens, **options)


def from_export(path: Any, **options: Any) -> Report:
    """The page an ``--export-json`` file was written from, rebuilt with no model (the
    same page byte for byte; `title`, `layer`, `head` may change it); see
    :func:`reportgen.rerender.from_export`."""
    from reportgen.rerender import from_export as _rerender

    return _rerender(path, **options)
