"""The context-mixing measures on the page (issue 20): the Measure choice's records, the
lab's question under each measure, the options that ask for them, and every view
following the choice in Chromium."""

from __future__ import annotations

import json
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from reportgen.cli import main
from reportgen.errors import InputError
from reportgen.pipeline import build_report

from .conftest import open_report, render_all
from .test_long_page import _unpack as _unpack_planes

LAB = "The animal didn't cross the street because it was too tired."


class _Data(HTMLParser):
    """The page's JSON data blocks and the question table's rows."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.data: dict[str, Any] = {}
        self.rows: list[list[str]] = []
        self._block: str | None = None
        self._text: list[str] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script" and (a.get("id") or "").startswith(("rg-data-", "rg-config")):
            self._block, self._text = a["id"], []
        if tag == "tr" and "data-measure" in a:
            self._row = [a["data-measure"] or ""]
        if self._row is not None and tag in ("th", "td"):
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._block is not None:
            self._text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._block is not None:
            self.data[self._block] = json.loads("".join(self._text))
            self._block = None
        if tag in ("th", "td") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        if tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None


def _parse(html: str) -> _Data:
    page = _Data()
    page.feed(html)
    return page


def _unpack(record: dict[str, Any]) -> np.ndarray:
    """A packed MapRecord read back independently (test_long_page's reader)."""
    shape = (record["layers"], record["heads"], record["n_query"], record["n_key"])
    return _unpack_planes(record["data"], record["scale"], shape)


@pytest.fixture(scope="module")
def gpt2(tiny_model: Callable[..., Path]) -> Path:
    return tiny_model("gpt2")


def test_the_page_carries_every_measure_as_the_extraction_computed_it(tiny_bert: Path) -> None:
    report = build_report([LAB], str(tiny_bert), measures=("norm", "norm_layer", "alti"))
    measures = report.extraction.results[0].maps[0].measures
    assert measures is not None
    page = _parse(report.html)
    settings = page.data["rg-config"]
    assert [m["id"] for m in settings["measures"]] == [
        "weights",
        "norm",
        "norm_layer",
        "alti",
        "alti_rollout",
    ]
    assert [m["per_layer"] for m in settings["measures"]] == [False, False, True, True, True]
    records = {m["id"]: m["map"] for m in page.data["rg-data-s1"]["measures"]}
    assert set(records) == {"norm", "norm_layer", "alti", "alti_rollout"}
    for name, record in records.items():
        want = getattr(measures, name)
        want = want if want.ndim == 4 else want[:, None]
        assert (record["layers"], record["heads"]) == want.shape[:2]
        # Rows are rounded to multiples of 1/scale, preserving their sums: one step at most.
        assert np.abs(_unpack(record) - want).max() <= 1 / record["scale"] + 1e-6, name


def test_the_question_table_counts_each_measure_independently(tiny_bert: Path) -> None:
    report = build_report(
        [LAB],
        str(tiny_bert),
        focus="it",
        candidates="animal,street",
        measures=("norm", "norm_layer", "alti"),
    )
    result = report.extraction.results[0]
    primary = result.maps[0]
    assert primary.measures is not None
    tokens = primary.query.tokens
    focus = [i for i, t in enumerate(tokens) if t == "it"]
    cands = [[i for i, t in enumerate(tokens) if t == w] for w in ("animal", "street")]
    assert focus and all(cands)

    def wins(maps: np.ndarray) -> list[int]:
        # Mean over the focus rows of the sum over each candidate's columns; the first
        # candidate wins a tie (analysis.winner_grid's rule).
        scores = np.stack([maps[:, :, focus][:, :, :, c].sum(-1).mean(-1) for c in cands], axis=-1)
        winner = scores.argmax(-1)
        return [int((winner == c).sum()) for c in range(len(cands))]

    m = primary.measures
    expected = {
        "weights": (wins(primary.attention), "heads"),
        "norm": (wins(m.norm), "heads"),
        "norm_layer": (wins(m.norm_layer[:, None]), "layers"),
        "alti": (wins(m.alti[:, None]), "layers"),
        "alti_rollout": (wins(m.alti_rollout[:, None]), "layers"),
    }
    rows = {r[0]: r[2:] for r in _parse(report.html).rows}
    assert set(rows) == set(expected)
    layers, heads = primary.attention.shape[:2]
    for name, (counts, unit) in expected.items():
        total = layers * heads if unit == "heads" else layers
        assert rows[name] == [f"{c} of {total} {unit}" for c in counts], name


def test_weights_only_pages_are_unchanged_and_reruns_are_byte_identical(tiny_bert: Path) -> None:
    plain = build_report([LAB], str(tiny_bert), focus="it", candidates="animal,street")
    page = _parse(plain.html)
    assert page.data["rg-config"]["measures"] == []
    assert page.data["rg-data-s1"]["measures"] == []
    assert page.rows == [] and 'id="rg-measure"' not in plain.html
    kw: dict[str, Any] = {"focus": "it", "candidates": "animal,street", "measures": ("alti",)}
    first = build_report([LAB], str(tiny_bert), **kw).html
    assert 'id="rg-measure"' in first
    assert build_report([LAB], str(tiny_bert), **kw).html == first


def test_bad_measure_options_are_refused_in_one_line(tiny_bert: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    for args, says in (
        (["--measures", "value-zeroing"], "value-zeroing is not among all, norm"),
        (["--measures", ","], "nothing is not among"),
    ):
        result = CliRunner().invoke(main, [LAB, "-m", str(tiny_bert), "-o", str(out), *args])
        assert result.exit_code != 0, args
        assert "Traceback" not in result.output and says in result.output, result.output
        assert not out.exists()
    with pytest.raises(InputError, match="measures must be a list among norm"):
        build_report([LAB], str(tiny_bert), measures="norm")
    result = CliRunner().invoke(
        main, [LAB, "-m", str(tiny_bert), "-o", str(out), "-q", "--measures", "all"]
    )
    assert result.exit_code == 0, result.output
    page = _parse(out.read_text(encoding="utf-8"))
    assert [m["id"] for m in page.data["rg-data-s1"]["measures"]] == [
        "norm",
        "norm_layer",
        "alti",
        "alti_rollout",
    ]


@pytest.fixture(scope="module")
def long_measured(tiny_model: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Over the page budget with every measure: the tiny Llama over ~2,400 tokens."""
    from transformers import AutoTokenizer

    from .test_streaming import _long_text

    folder = tiny_model("llama", context=4096)
    text = _long_text(AutoTokenizer.from_pretrained(folder), 2400)
    report = build_report(
        [text], str(folder), focus="street", measures=("norm", "norm_layer", "alti")
    )
    path = tmp_path_factory.mktemp("long-measures") / "long.html"
    report.save(path)
    return report, path


def test_a_long_input_carries_norms_overview_and_every_measures_exact_rows(
    long_measured: Any,
) -> None:
    """The long page's measure records against the extraction (one quantisation step),
    norm's overview pooled like the weights', per-layer measures without an overview."""
    report, _ = long_measured
    amap = report.extraction.results[0].maps[0]
    assert amap.measures is not None
    page = _parse(report.html)
    assert [m["id"] for m in page.data["rg-config"]["measures"]] == [
        "weights",
        "norm",
        "norm_layer",
        "alti",
    ]
    record = page.data["rg-data-s1"]["maps"][0]
    measures = {m["id"]: m for m in record["measures"]}
    assert list(measures) == ["norm", "norm_layer", "alti"]
    layers, heads = amap.first_share.shape
    blocks = (len(amap.query_blocks), len(amap.key_blocks))
    norm = measures["norm"]
    got = _unpack_planes(norm["overview"], norm["scale"], (layers, heads, *blocks))
    assert np.abs(got - amap.measures.norm_overview).max() <= 1 / norm["scale"] + 1e-6
    assert measures["norm_layer"]["overview"] is None and measures["alti"]["overview"] is None
    rows = dict(amap.measures.rows)
    n = len(amap.query.tokens)
    for name, m in measures.items():
        assert [r["position"] for r in m["rows"]] == [r.position for r in amap.rows]
        h = heads if name == "norm" else 1
        assert m["heads"] == h
        for i, r in enumerate(m["rows"]):
            got = _unpack_planes(r["data"], r["scale"], (layers, h, n))
            assert np.abs(got - rows[name][i]).max() <= 1 / r["scale"] + 1e-6, name
    # The export has them at full precision.
    from reportgen.export import long_export_data

    item = json.loads(json.dumps(long_export_data(report.extraction)))["items"][0]
    np.testing.assert_allclose(
        item["measures"]["norm"]["overview"], amap.measures.norm_overview, atol=1e-6
    )
    assert len(item["measures"]["alti"]["rows"]) == len(amap.rows)


@pytest.mark.browser
def test_the_measure_choice_redraws_a_long_page(browser: Any, long_measured: Any) -> None:
    report, path = long_measured
    amap = report.extraction.results[0].maps[0]
    assert amap.measures is not None
    rows = dict(amap.measures.rows)
    page, log = open_report(browser, path)
    try:
        sec = page.locator("section.rg-long").first
        overview = sec.locator('[data-plot="long-overview"]')
        row = sec.locator('[data-plot="long-row"]')
        note = sec.locator("[data-scale-note]")
        layer = int(sec.locator('[data-control="layer"]').input_value())
        head = int(sec.locator('[data-control="head"]').input_value())
        seen = {}
        for measure in ("norm", "alti", "weights"):
            page.select_option("#rg-measure", measure)
            page.wait_for_timeout(400)
            z = np.array(overview.evaluate("el => el.data[0].z"), dtype=float)
            y = np.array(row.evaluate("el => el.data[0].y"), dtype=float)
            seen[measure] = (
                overview.locator(".gtitle").text_content() or "",
                row.locator(".gtitle").text_content() or "",
                note.text_content() or "",
            )
            last = len(amap.rows) - 1  # the row select starts at the first exact row
            if measure == "weights":
                want_row = amap.rows[0].attention[layer, head]
                want = amap.overview[layer, head]
            elif measure == "norm":
                want_row = rows["norm"][0][layer, head]
                want = amap.measures.norm_overview[layer, head]
            else:
                want_row = rows["alti"][0][layer, 0]
                want = amap.overview[layer, head]  # no overview: the weights'
            assert last >= 0
            assert np.abs(y - want_row).max() <= 2e-4, measure
            shown = np.where(np.isnan(z), want, z)
            assert np.abs(shown - want).max() <= 2e-4, measure
        assert seen["norm"][0].endswith("· Norm") and seen["norm"][1].endswith("· Norm")
        assert "ALTI (per layer: no heads)" in seen["alti"][1]
        assert "Head" not in seen["alti"][1].split("·")[0]
        assert "show the weights" in seen["alti"][2] and "·" not in seen["alti"][0][-12:]
        assert "show the weights" not in seen["norm"][2]
        assert not seen["weights"][1].endswith("Norm")
        assert log.errors == []
    finally:
        page.context.close()


@pytest.mark.browser
def test_the_measure_choice_redraws_every_view(browser: Any, gpt2: Path, tmp_path: Path) -> None:
    path = tmp_path / "m.html"
    texts = [LAB, "The animal didn't cross the street because it was too wide."]
    report = build_report(
        texts,
        str(gpt2),
        focus="it",
        candidates="animal,street",
        compare=True,
        measures=("norm", "norm_layer", "alti"),
    )
    report.save(path)
    records = {m["id"]: m["map"] for m in _parse(report.html).data["rg-data-s1"]["measures"]}
    page, log = open_report(browser, path)
    try:
        sec = page.locator("#s1")
        heatmap = sec.locator('[data-plot="head"]')
        seen = {}
        for measure in ("norm", "norm_layer", "alti", "alti_rollout", "weights"):
            page.select_option("#rg-measure", measure)
            render_all(page)  # views off screen redraw when they come into view
            layer = int(sec.locator('[data-view="head"] [data-control="layer"]').input_value())
            head = int(sec.locator('[data-view="head"] [data-control="head"]').input_value())
            z = np.array(heatmap.evaluate("el => el.data[0].z"), dtype=float)
            title = heatmap.locator(".gtitle").text_content() or ""
            grid = sec.locator('[data-view="grid"]').evaluate("el => +el.dataset.gridHeads")
            pair = page.locator('#p1 [data-plot="pair-a"] .gtitle').text_content() or ""
            seen[measure] = (title, grid, pair)
            # The focus grids are the measure's own variant, scored in Python (FocusView).
            variant = sec.locator(f'[data-measure-variant="{measure}"]')
            assert (
                variant.is_visible() and sec.locator("[data-measure-variant]:visible").count() == 1
            )
            prefix = "" if measure == "weights" else f"{measure}:"
            drawn = variant.locator(f'[data-figure="{prefix}focus_0"]').evaluate(
                "el => el.data[0].z"
            )
            scores = next(
                v.scores
                for v in report.document.sentences[0].focus.views
                if v.measure.id == measure
            )
            np.testing.assert_allclose(
                np.array(drawn, dtype=float), scores[..., 0], atol=5e-5 + 1e-9
            )
            if measure == "weights":
                want = report.extraction.results[0].maps[0].attention[layer, head]
            else:
                want = _unpack(records[measure])[layer, min(head, records[measure]["heads"] - 1)]
            # The heatmap shows the measure's map (masked above the diagonal: causal).
            shown = np.where(np.isnan(z), 0.0, z)
            assert np.abs(shown - np.tril(want)).max() <= 1 / records["norm"]["scale"] + 1e-3, (
                measure
            )
        heads = report.extraction.results[0].maps[0].attention.shape[1]
        assert seen["norm"][0].endswith("· Norm") and seen["norm"][1] == heads
        assert "(per layer: no heads)" in seen["alti"][0] and seen["alti"][1] == 1
        assert "ALTI rollout" in seen["alti_rollout"][2]
        assert "·" not in seen["weights"][0] and seen["weights"][1] == heads
        assert log.errors == []
    finally:
        page.context.close()


def test_the_pair_under_each_measure_is_counted_independently(tiny_bert: Path) -> None:
    texts = [LAB, "The animal didn't cross the street because it was too wide."]
    report = build_report(
        texts,
        str(tiny_bert),
        focus="it",
        candidates="animal,street",
        compare=True,
        measures=("norm", "alti"),
    )
    pair = report.document.pairs[0]
    assert pair.answer is not None and pair.query is not None
    rows = {r.measure: r for r in pair.measure_rows}
    assert list(rows) == ["weights", "norm", "alti", "alti_rollout"]
    # Weights: the pair's own answer, as the headline states it.
    assert rows["weights"].right_in_both == pair.answer.correct
    assert rows["weights"].best == pair.answer.head

    def right_in_both(a: np.ndarray, b: np.ndarray) -> int:
        # No gold answers: A should favour 'animal' (0), B 'street' (1), strictly.
        def scores(maps: np.ndarray, result: Any, rows: tuple[int, ...]) -> np.ndarray:
            tokens = result.maps[0].query.tokens
            cands = [[i for i, t in enumerate(tokens) if t == w] for w in ("animal", "street")]
            return np.stack(
                [maps[:, :, list(rows)][:, :, :, c].sum(-1).mean(-1) for c in cands], -1
            )

        ra, rb = report.extraction.results
        sa = scores(a, ra, pair.query.positions[0])
        sb = scores(b, rb, pair.query.positions[1])
        return int(((sa[..., 0] > sa[..., 1]) & (sb[..., 1] > sb[..., 0])).sum())

    ma, mb = (r.maps[0].measures for r in report.extraction.results)
    assert ma is not None and mb is not None
    assert rows["norm"].right_in_both == right_in_both(ma.norm, mb.norm)
    assert rows["alti"].right_in_both == right_in_both(ma.alti[:, None], mb.alti[:, None])
    assert rows["alti"].unit == "layers" and rows["alti"].total == ma.alti.shape[0]
    table = [r for r in _parse(report.html).rows if len(r) == 6]
    assert [r[0] for r in table] == list(rows)
    assert table[2][2] == f"{rows['alti'].right_in_both} of {rows['alti'].total} layers"


def test_a_long_export_with_measures_re_renders_byte_for_byte(
    long_measured: Any, tmp_path: Path
) -> None:
    from reportgen.rerender import from_export

    report, _ = long_measured
    export = tmp_path / "long.json"
    report.export_json(export)
    again = from_export(export)
    assert again.html == report.html
    # The measures came back from the file: an edited measure row is refused, naming it.
    data = json.loads(export.read_text(encoding="utf-8"))
    data["items"][0]["measures"]["alti"]["rows"] = data["items"][0]["measures"]["alti"]["rows"][:1]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(InputError, match=r"^items\[0\]\.measures\.alti\.rows: 1 rows, the map has"):
        from_export(bad)
