"""figures: Plotly JSON specs, checked field by field against Plotly's own colour scales."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import plotly.colors
import pytest

from reportgen.figures import (
    CANDIDATE_COLORS,
    attention_heatmap_spec,
    candidate_color,
    grid_figure,
    plot_text,
    winner_figure,
)

from .conftest import random_attention


def _array(value: Any) -> np.ndarray:
    """A Plotly data array: a plain list, or plotly.py's typed-array form (dtype + bdata)."""
    if isinstance(value, dict):
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = tuple(int(s) for s in str(value.get("shape", flat.size)).split(","))
        return flat.reshape(shape)
    return np.asarray(value)


def _colors(scale: list[list[Any]]) -> list[str]:
    return [color for _, color in scale]


def _round_trips(spec: dict[str, Any]) -> None:
    assert json.loads(json.dumps(spec, allow_nan=False)) == spec


# --- attention heatmap spec -------------------------------------------------------------


def test_heatmap_spec_carries_no_data_and_viridis_colours() -> None:
    spec = attention_heatmap_spec()
    _round_trips(spec)
    assert len(spec["data"]) == 1
    trace = spec["data"][0]
    assert trace["type"] == "heatmap"
    # The page fills in z, ticks and hover text from the one attention store.
    assert not {"z", "x", "y", "text", "customdata"} & trace.keys()
    assert _colors(trace["colorscale"]) == plotly.colors.sequential.Viridis
    assert [p for p, _ in trace["colorscale"]][0] == 0.0
    assert [p for p, _ in trace["colorscale"]][-1] == 1.0
    assert (trace["zmin"], trace["zmax"]) == (0.0, 1.0)
    assert "zmid" not in trace
    assert trace["colorbar"]["title"]["text"] == "weight"


def test_heatmap_spec_axes_are_numeric_arrays_with_query_rows_top_down() -> None:
    layout = attention_heatmap_spec()["layout"]
    x, y = layout["xaxis"], layout["yaxis"]
    assert x["title"]["text"] == "Key (attended to)"
    assert y["title"]["text"] == "Query (attending from)"
    assert y["autorange"] == "reversed"
    assert x.get("autorange") != "reversed"
    # Token text goes in as tick labels on numeric positions: a categorical axis would
    # merge repeated tokens (the two "the"s) into one row.
    assert x["tickmode"] == "array" and y["tickmode"] == "array"
    assert x.get("type") in (None, "linear") and y.get("type") in (None, "linear")
    assert y["scaleanchor"] == "x"  # square cells


def test_diverging_heatmap_spec_is_centred_on_zero() -> None:
    spec = attention_heatmap_spec(diverging=True, colorbar_title="A - B")
    _round_trips(spec)
    trace = spec["data"][0]
    assert "z" not in trace
    assert trace["zmid"] == 0.0
    assert trace["zmin"] == -trace["zmax"] == -1.0
    assert _colors(trace["colorscale"]) == plotly.colors.diverging.RdBu
    # Zero lands on the scale's neutral middle colour.
    mid = dict((p, c) for p, c in trace["colorscale"])[0.5]
    assert mid == plotly.colors.diverging.RdBu[len(plotly.colors.diverging.RdBu) // 2]
    assert trace["colorbar"]["title"]["text"] == "A - B"


# --- layers x heads grid ----------------------------------------------------------------


def test_grid_labels_are_one_based_and_hover_shows_zero_based_index(
    rng: np.random.Generator,
) -> None:
    values = rng.random((3, 5)).astype(np.float32)
    fig = grid_figure(values, title="t", colorbar_title="c", zmin=0.0, zmax=1.0)
    _round_trips(fig)
    trace = fig["data"][0]
    assert list(_array(trace["x"])) == [1, 2, 3, 4, 5]
    assert list(_array(trace["y"])) == [1, 2, 3]
    custom = _array(trace["customdata"])
    assert custom.shape == (3, 5, 2)
    for li in range(3):
        for hi in range(5):
            assert list(custom[li, hi]) == [li, hi]
    hover = trace["hovertemplate"]
    assert hover.startswith("Layer %{y}, Head %{x} [index (%{customdata[0]}, %{customdata[1]})]")
    assert hover.endswith("<extra></extra>")
    assert fig["layout"]["xaxis"]["title"]["text"] == "Head"
    assert fig["layout"]["yaxis"]["title"]["text"] == "Layer"
    assert fig["layout"]["yaxis"]["autorange"] == "reversed"  # layer 1 on top
    assert (trace["zmin"], trace["zmax"]) == (0.0, 1.0)


def test_grid_z_is_the_input_rounded_to_four_places(rng: np.random.Generator) -> None:
    values = random_attention(rng, (4, 6, 6))[:, :, 0]
    values[0, 0] = 0.123456
    fig = grid_figure(values, title="t", colorbar_title="c")
    z = _array(fig["data"][0]["z"])
    assert z.shape == values.shape
    np.testing.assert_array_equal(z, np.round(values.astype(np.float64), 4))
    assert z[0, 0] == 0.1235
    # Round-tripped through JSON text too, as the page receives it.
    again = _array(json.loads(json.dumps(fig))["data"][0]["z"])
    np.testing.assert_array_equal(again, z)


def test_grid_escapes_title_and_text_for_plotly_pseudo_html() -> None:
    fig = grid_figure(
        np.zeros((1, 2)),
        title="'<b>' → '&'",
        colorbar_title="c",
        text=[["<br>x", "a & b"]],
    )
    _round_trips(fig)
    assert fig["layout"]["title"]["text"] == "'&lt;b&gt;' → '&amp;'"
    trace = fig["data"][0]
    assert trace["text"] == [["&lt;br&gt;x", "a &amp; b"]]
    assert trace["hovertemplate"].endswith("<br>%{text}<extra></extra>")


def test_grid_without_text_has_no_text_in_hover() -> None:
    trace = grid_figure(np.ones((2, 2)), title="t", colorbar_title="c")["data"][0]
    assert "text" not in trace
    assert "%{text}" not in trace["hovertemplate"]


def test_grid_diverging_is_centred_on_zero() -> None:
    values = np.array([[-0.3, 0.1], [0.2, -0.05]])
    trace = grid_figure(values, title="t", colorbar_title="A - B", diverging=True)["data"][0]
    assert trace["zmid"] == 0.0
    assert _colors(trace["colorscale"]) == plotly.colors.diverging.RdBu


def test_plot_text_escapes_entities_first() -> None:
    assert plot_text("<b>&") == "&lt;b&gt;&amp;"
    assert plot_text("&lt;") == "&amp;lt;"  # user text that looks like an entity stays literal
    assert plot_text("plain") == "plain"


# --- winner grid ------------------------------------------------------------------------


def _band_color(scale: list[list[Any]], position: float) -> tuple[str, str]:
    """The colours at the two stops around `position` (equal where the band is flat)."""
    stops = [float(p) for p, _ in scale]
    assert stops == sorted(stops) and stops[0] == 0.0 and stops[-1] == 1.0
    below = max(i for i, p in enumerate(stops) if p <= position)
    above = min(i for i, p in enumerate(stops) if p >= position)
    return scale[below][1], scale[above][1]


@pytest.mark.parametrize("count", [2, 3, 10, 11, 40])
def test_winner_colour_scale_gives_each_candidate_one_flat_band(count: int) -> None:
    candidates = [f"w{c}" for c in range(count)]
    winners = np.arange(2 * 3).reshape(2, 3) % count
    names = [[candidates[w] for w in row] for row in winners]
    fig = winner_figure(winners, candidates, names, title="t")
    _round_trips(fig)
    trace = fig["data"][0]
    zmin, zmax = trace["zmin"], trace["zmax"]
    assert (zmin, zmax) == (-0.5, count - 0.5)
    scale = trace["colorscale"]
    for c in range(count):
        # Plotly maps z = c to (c - zmin) / (zmax - zmin), the middle of band c, and every
        # position in that band has candidate c's colour: no blend with a neighbour.
        centre = (c - zmin) / (zmax - zmin)
        assert c / count < centre < (c + 1) / count
        for pos in np.linspace(c / count, (c + 1) / count, 9)[1:-1]:
            assert _band_color(scale, float(pos)) == (candidate_color(c), candidate_color(c))
    assert len({color for _, color in scale}) == count  # no two candidates share a colour
    assert [candidate_color(c) for c in range(min(count, 10))] == list(CANDIDATE_COLORS)[:count]
    np.testing.assert_array_equal(_array(trace["z"]), winners.astype(float))


def test_winner_colorbar_ticks_are_escaped_candidate_names() -> None:
    candidates = ["<animal>", "street & road"]
    winners = np.array([[0, 1], [1, 1]])
    names = [[candidates[w] for w in row] for row in winners]
    trace = winner_figure(winners, candidates, names, title="'it' → ?")["data"][0]
    bar = trace["colorbar"]
    assert bar["tickmode"] == "array"
    assert bar["tickvals"] == [0, 1]
    assert bar["ticktext"] == ["&lt;animal&gt;", "street &amp; road"]
    assert trace["text"] == [
        ["&lt;animal&gt;", "street &amp; road"],
        ["street &amp; road", "street &amp; road"],
    ]
    assert "attends most to %{text}" in trace["hovertemplate"]
    assert "%{customdata[0]}" in trace["hovertemplate"]


def test_heatmap_size_grows_with_tokens_and_keeps_labels_readable() -> None:
    from reportgen.figures import HEATMAP_SIZE, heatmap_size

    extra_x = HEATMAP_SIZE["margin_x"] + HEATMAP_SIZE["colorbar"]
    w16, h16, f16 = heatmap_size(16)
    w100, h100, f100 = heatmap_size(100)
    assert (w16, h16, f16) == (16 * 24 + extra_x, 16 * 24 + HEATMAP_SIZE["margin_y"], 12)
    assert w100 > w16 and h100 > h16
    # 100 tokens: 9 px cells, 8 px labels, one per token without overlap.
    assert (w100 - extra_x) / 100 == 9 and f100 == 8
    # A narrow room shrinks the cells, down to 9 px (the view then scrolls sideways).
    w, _, f = heatmap_size(16, room=500)
    assert w == 500 and 8 <= f < (500 - extra_x) / 16
    assert heatmap_size(100, room=600) == (w100, h100, 8)
