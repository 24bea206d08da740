"""How the page words things that every part of the report names: quoted words, heads
(1-based, as papers name them) and previews of long texts."""

from __future__ import annotations


def quote(word: str) -> str:
    """A word as the page quotes it: 'it'."""
    return f"'{word}'"


def short(text: str, limit: int = 60) -> str:
    """At most `limit` characters of `text`, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def head_name(layer: int, head: int) -> str:
    """A 0-based head in the page's 1-based words: "Layer 1, Head 2"."""
    return f"Layer {layer + 1}, Head {head + 1}"
