"""Plotly figure builders. They return plain Plotly JSON (dicts), never HTML.

Attention heatmaps are built here without their data: the page fills in `z`,
`x`/`y` ticks and hover text from the one compact attention store, so no view
carries its own copy. Small grids (layers x heads) carry their numbers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

COLORSCALE = "Viridis"
DIVERGING = "RdBu"
_FONT = {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12}


def _plain(fig: go.Figure) -> dict[str, Any]:
    # Through plotly's own encoder (numpy-aware), then back to plain Python for our encoder.
    data: dict[str, Any] = json.loads(pio.to_json(fig, validate=True, engine="json"))
    return data


def _base_layout(title: str, height: int) -> dict[str, Any]:
    return {
        "title": {"text": title, "x": 0.5, "xanchor": "center"},
        "template": "none",
        "font": _FONT,
        "height": height,
        "margin": {"l": 90, "r": 30, "t": 50, "b": 90},
        "plot_bgcolor": "#d9d9d9",  # shows through masked (impossible) cells
        "paper_bgcolor": "#ffffff",
    }


def attention_heatmap_spec(
    *, diverging: bool = False, colorbar_title: str = "weight"
) -> dict[str, Any]:
    """Spec of one attention heatmap; the page supplies z, ticks and the title.

    Axes are numeric (token positions) with token text as tick labels, because
    categorical axes would merge repeated tokens such as the two "the"s.
    """
    trace = go.Heatmap(
        z=[[0.0]],
        colorscale=DIVERGING if diverging else COLORSCALE,
        zmin=-1.0 if diverging else 0.0,
        zmax=1.0,
        zmid=0.0 if diverging else None,
        colorbar={"title": {"text": colorbar_title}, "thickness": 14},
        hoverongaps=False,
        xgap=0,
        ygap=0,
    )
    fig = go.Figure(trace)
    fig.update_layout(**_base_layout("", 520))
    fig.update_xaxes(
        title_text="Key (attended to)",
        tickmode="array",
        tickangle=-60,
        showgrid=False,
        zeroline=False,
        constrain="domain",
    )
    fig.update_yaxes(
        title_text="Query (attending from)",
        tickmode="array",
        autorange="reversed",
        showgrid=False,
        zeroline=False,
        scaleanchor="x",
        constrain="domain",
    )
    spec = _plain(fig)
    spec["data"][0].pop("z", None)
    return spec


def grid_figure(
    values: np.ndarray,
    *,
    title: str,
    colorbar_title: str,
    zmin: float | None = None,
    zmax: float | None = None,
    diverging: bool = False,
    hover_label: str = "value",
    text: Sequence[Sequence[str]] | None = None,
) -> dict[str, Any]:
    """A layers x heads grid (1-based labels, 0-based index in the hover)."""
    layers, heads = values.shape
    z = np.round(values.astype(float), 4)
    custom = [[[li, hi] for hi in range(heads)] for li in range(layers)]
    hover = (
        "Layer %{y}, Head %{x} [index (%{customdata[0]}, %{customdata[1]})]<br>"
        + hover_label
        + ": %{z:.3f}"
        + ("<br>%{text}" if text is not None else "")
        + "<extra></extra>"
    )
    if text is not None:
        text = [[plot_text(t) for t in row] for row in text]
    trace = go.Heatmap(
        z=z.tolist(),  # nested lists, not plotly's binary form: grid.js reads the numbers
        x=list(range(1, heads + 1)),
        y=list(range(1, layers + 1)),
        customdata=custom,
        text=[list(row) for row in text] if text is not None else None,
        colorscale=DIVERGING if diverging else COLORSCALE,
        zmin=zmin,
        zmax=zmax,
        zmid=0.0 if diverging else None,
        colorbar={"title": {"text": colorbar_title}, "thickness": 14},
        hovertemplate=hover,
        xgap=1,
        ygap=1,
    )
    fig = go.Figure(trace)
    fig.update_layout(**_base_layout(plot_text(title), 120 + 26 * layers))
    fig.update_layout(margin={"l": 60, "r": 30, "t": 50, "b": 50})
    fig.update_xaxes(title_text="Head", dtick=1, showgrid=False, zeroline=False)
    fig.update_yaxes(
        title_text="Layer", dtick=1, autorange="reversed", showgrid=False, zeroline=False
    )
    return _plain(fig)


# Colours for up to ten candidate words (Plotly's default qualitative sequence).
CANDIDATE_COLORS = (
    "#636efa",
    "#ef553b",
    "#00cc96",
    "#ab63fa",
    "#ffa15a",
    "#19d3f3",
    "#ff6692",
    "#b6e880",
    "#ff97ff",
    "#fecb52",
)


def candidate_color(index: int) -> str:
    """Plotly's ten qualitative colours, then hues a golden angle apart (never repeating)."""
    if index < len(CANDIDATE_COLORS):
        return CANDIDATE_COLORS[index]
    hue = (index - len(CANDIDATE_COLORS)) * 137.508 % 360
    return f"hsl({hue:.1f},55%,{45 + 10 * (index % 2)}%)"


def winner_figure(
    winners: np.ndarray, candidates: Sequence[str], names: Sequence[Sequence[str]], *, title: str
) -> dict[str, Any]:
    """A layers x heads grid coloured by the candidate each head attends to most."""
    count = max(1, len(candidates))
    # A stepped colour scale: candidate c owns the band [c, c+1) / count.
    scale: list[list[float | str]] = []
    for c in range(count):
        color = candidate_color(c)
        scale += [[c / count, color], [(c + 1) / count, color]]
    fig = grid_figure(
        winners.astype(float),
        title=title,
        colorbar_title="candidate",
        zmin=-0.5,
        zmax=count - 0.5,
        hover_label="candidate index",
        text=names,
    )
    trace = fig["data"][0]
    trace["colorscale"] = scale
    trace["hovertemplate"] = (
        "Layer %{y}, Head %{x} [index (%{customdata[0]}, %{customdata[1]})]<br>"
        "attends most to %{text}<extra></extra>"
    )
    trace["colorbar"] = {
        "title": {"text": "candidate"},
        "thickness": 14,
        "tickmode": "array",
        "tickvals": list(range(count)),
        "ticktext": [plot_text(c) for c in candidates],
    }
    return fig


def plot_text(text: str) -> str:
    """Plotly reads a subset of HTML in labels; entities keep user text literal."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Heatmap sizing, shared with the page (PageSettings.heatmap_size; templates/js/handin.js
# follows the same rule): a cell per token that shrinks as the sentence grows, margins for
# the tick labels and title, and room for the colour bar right beside the map.
HEATMAP_SIZE: dict[str, float] = {
    "cell": 24.0,  # px per token up to `full_cells` tokens
    "full_cells": 24,
    "shrink": 0.2,  # px less per token beyond that ...
    "min_cell": 9.0,  # ... down to this
    "margin_x": 120,  # left (query labels) + right
    "margin_y": 140,  # top (title) + bottom (key labels)
    "colorbar": 80,
    "max_font": 12,
}


def heatmap_size(n: int, room: float | None = None) -> tuple[int, int, int]:
    """Width, height and tick-label font size (px) of an n-token attention heatmap.

    `room` is the width available (None: unlimited); a narrower room shrinks the cells,
    but never below `min_cell`: past that the view scrolls sideways instead, so every
    labelled token (each one up to 128, then every k-th: templates/js/handin.js
    MAX_LABELS) keeps a label of at least `min_cell - 1` px that does not overlap its
    neighbours.
    """
    s = HEATMAP_SIZE
    n = max(n, 1)
    cell = s["cell"] - max(0, n - s["full_cells"]) * s["shrink"]
    cell = max(cell, s["min_cell"])
    extra_x = s["margin_x"] + s["colorbar"]
    if room is not None and n * cell + extra_x > room:
        cell = max((room - extra_x) / n, s["min_cell"])
    side = n * cell
    font = int(min(s["max_font"], cell - 1))
    return round(side + extra_x), round(side + s["margin_y"]), font


# Attention sinks on the long-input page: the overview's default colour scale leaves out
# the key columns that take far more than their share of the attention. A column is a
# sink when, averaged over every layer, head and query block, it receives more than
# SINK_FACTOR times its even share (1 / columns; the shares add up to 1, as each pooled
# row does). Attention spread evenly over what a causal model can see gives the first
# column about 5.8 even shares at any length (128 blocks); a real sink (SmolLM2's first
# token) tens to a hundred. With SINK_FACTOR columns or fewer, no column can be one.
SINK_FACTOR = 10.0


def sink_columns(overview: np.ndarray) -> tuple[int, ...]:
    """The sink columns (0-based key blocks) of a pooled overview
    ``[layers, heads, query_blocks, key_blocks]``, by the rule above."""
    share = np.asarray(overview, dtype=np.float64).mean(axis=(0, 1, 2))
    return tuple(int(j) for j in np.flatnonzero(share > SINK_FACTOR / max(share.size, 1)))
