"""atlas.page and the atlas's place in the shared scheme: the page's scripts (ATLAS_SCRIPTS
under a hash CSP, none of the per-sentence page's), its typed data record, no local folder
in page or export, the same output checks and writer as the report, and the input limits
that do and do not apply to a streamed corpus."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import reportgen.atlas.corpus as corpus_module
import reportgen.inputs as inputs
from reportgen.assets import csp_hash, libraries
from reportgen.atlas import build_atlas
from reportgen.atlas.corpus import count_corpus
from reportgen.atlas.page import public_source
from reportgen.cli import main
from reportgen.config import ReportConfig
from reportgen.errors import InputError
from reportgen.render import ATLAS_SCRIPTS, PAGE_SCRIPTS, static_text
from reportgen.store import AtlasRecord

QA = [
    {
        "text": "The animal didn't cross the street because it was too tired.",
        "compare": "The animal didn't cross the street because it was too wide.",
        "focus": "it",
        "candidates": ["animal", "street"],
        "answer": "animal",
    },
    {"text": "Plain sentence, no question."},
    {"text": "Hello, world!"},
]


def write_jsonl(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


class _Scripts(HTMLParser):
    """Every <script>'s attributes and text, and the CSP meta tag."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.csp = ""
        self._open: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self._open = a
            self.scripts.append((a, ""))
        if tag == "meta" and a.get("http-equiv") == "Content-Security-Policy":
            self.csp = str(a["content"])

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._open = None


@pytest.fixture(scope="module")
def deep_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A corpus in nested folders whose names must not reach the page or the export."""
    folder = tmp_path_factory.mktemp("private-folder")
    return write_jsonl(folder / "nested" / "qa.jsonl", QA)


@pytest.fixture(scope="module")
def page_html(deep_corpus: Path, tiny_bert: Path) -> str:
    return build_atlas(str(deep_corpus), ReportConfig(model=str(tiny_bert))).html()


def test_page_runs_exactly_the_atlas_scripts_in_order(page_html: str) -> None:
    parsed = _Scripts()
    parsed.feed(page_html)
    ours = [text for attrs, text in parsed.scripts if "type" not in attrs]
    assert ours == [static_text(f"js/{name}") for name in ATLAS_SCRIPTS]
    # The shared modules, not copies: core, store (gzip decoding) and loader come first,
    # the one coordinator (main.js, its "atlas" entry) last.
    assert ATLAS_SCRIPTS[:3] == ("core.js", "store.js", "loader.js")
    assert ATLAS_SCRIPTS[-1] == PAGE_SCRIPTS[-1] == "main.js"
    assert set(ATLAS_SCRIPTS) - {"atlas.js"} <= set(PAGE_SCRIPTS)
    assert "atlas.js" not in PAGE_SCRIPTS
    assert 'data-rg-page="atlas"' in page_html
    atlas_js = static_text("js/atlas.js")
    assert "DecompressionStream" not in atlas_js and "atob(" not in atlas_js
    # The CSP allows these scripts and the inflated plotly.js, nothing else.
    allowed = set(re.findall(r"'sha256-[^']+'", parsed.csp.split("script-src", 1)[1].split(";")[0]))
    plotly = [lib for lib in libraries() if lib.name == "plotly"]
    assert allowed == {csp_hash(s) for s in ours} | {lib.csp_hash for lib in plotly}
    packed = [attrs.get("data-name") for attrs, _ in parsed.scripts if attrs.get("data-name")]
    assert packed == ["plotly"]


def test_page_data_is_an_atlas_record(page_html: str, tiny_bert: Path) -> None:
    parsed = _Scripts()
    parsed.feed(page_html)
    (text,) = [t for a, t in parsed.scripts if a.get("id") == "rg-data-rg-main"]
    data = json.loads(text)
    assert list(data) == list(AtlasRecord.__dataclass_fields__)
    assert (data["layers"], data["heads"]) == (2, 4)
    assert all(set(s) == {"name", "grid"} for s in data["stats"])
    for rows in data["examples"].values():
        for row in rows:
            assert set(row) == {"sentence", "value", "map"}
            n = len(data["sentences"][row["sentence"]]["tokens"])
            assert len(row["map"]) == n and all(len(r) == n for r in row["map"])
    assert "</" not in text  # script-safe JSON
    # The shared scripts' settings (print.js sizes token heatmaps as on the report).
    (config,) = [t for a, t in parsed.scripts if a.get("id") == "rg-config"]
    from reportgen.figures import HEATMAP_SIZE

    assert json.loads(config) == {"heatmap_size": HEATMAP_SIZE}


def test_no_local_folder_in_page_or_export(
    tmp_path: Path, deep_corpus: Path, tiny_bert: Path
) -> None:
    out, exp = tmp_path / "atlas.html", tmp_path / "atlas.json"
    code, _, err = cli(
        "--atlas", "-i", str(deep_corpus), "-m", str(tiny_bert), "-o", str(out),
        "--export-json", str(exp),
    )  # fmt: skip
    assert code == 0, err
    html, export = out.read_text(encoding="utf-8"), exp.read_text(encoding="utf-8")
    for private in (str(deep_corpus.parent), str(tiny_bert.parent), "private-folder"):
        assert private not in html and private not in export
    assert json.loads(export)["model"]["name"] == tiny_bert.name
    parsed = _Scripts()
    parsed.feed(html)
    (text,) = [t for a, t in parsed.scripts if a.get("id") == "rg-data-rg-main"]
    sources = {s["source"] for s in json.loads(text)["sentences"]}
    assert sources and all(re.fullmatch(r"qa\.jsonl line \d+", s) for s in sources), sources


def test_public_source() -> None:
    assert public_source("/home/me/data/corpus.jsonl line 12") == "corpus.jsonl line 12"
    assert public_source("data/corpus.jsonl line 3") == "corpus.jsonl line 3"
    assert public_source("../c.txt:5") == "c.txt:5"
    assert public_source("<stdin> line 2") == "<stdin> line 2"
    assert public_source("<stdin>:2") == "<stdin>:2"


def test_outputs_are_checked_like_the_report(tmp_path: Path, tiny_bert: Path) -> None:
    corpus = write_jsonl(tmp_path / "c.jsonl", QA)
    before = corpus.read_bytes()
    cases = [
        (["-o", str(corpus)], "is the input file"),
        (["-o", str(tmp_path / "a"), "--export-json", str(tmp_path / "a")], "same file"),
        (["-o", str(tiny_bert / "config.json")], "inside the model"),
    ]
    for extra, message in cases:
        code, _, err = cli("--atlas", "-i", str(corpus), "-m", str(tiny_bert), *extra)
        assert code != 0 and message in err and "loading" not in err, (extra, err)
        assert len([x for x in err.splitlines() if x.startswith("Error:")]) == 1
    assert corpus.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl"]


def test_dash_writes_the_atlas_to_stdout(tmp_path: Path, tiny_bert: Path) -> None:
    corpus = write_jsonl(tmp_path / "c.jsonl", QA)
    code, out, err = cli("--atlas", "-i", str(corpus), "-m", str(tiny_bert), "-q", "-o", "-")
    assert code == 0, err
    assert out.startswith("<!DOCTYPE html>") and out.rstrip().endswith("</html>")
    assert 'id="rg-data-rg-main"' in out
    assert list(tmp_path.iterdir()) == [corpus]


def test_max_sentences_does_not_go_with_atlas(tmp_path: Path) -> None:
    corpus = write_jsonl(tmp_path / "c.jsonl", QA)
    code, _, err = cli("--atlas", "-i", str(corpus), "--max-sentences", "10")
    assert code == 2 and "--max-sentences" in err and "streams any number" in err


def test_report_limits_on_count_and_file_size_do_not_cap_a_corpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = write_jsonl(tmp_path / "c.jsonl", QA * 50)
    monkeypatch.setattr(inputs, "MAX_SENTENCES", 2)
    monkeypatch.setattr(inputs, "MAX_INPUT_BYTES", 1024)
    assert corpus.stat().st_size > 1024
    assert count_corpus(str(corpus)) == 4 * 50  # each "compare" is a sentence of its own


def test_one_overlong_line_is_refused_without_reading_it_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(corpus_module, "MAX_LINE_BYTES", 200)
    corpus = tmp_path / "c.txt"
    corpus.write_text("Short.\n" + "word " * 100 + "\nShort.\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"c\.txt line 2: longer than"):
        count_corpus(str(corpus))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"text": "x" * (inputs.MAX_CHARS + 1)}, "over the limit"),
        ({"text": "It.", "focus": "f" * (inputs.MAX_WORD_CHARS + 1)}, '"focus"'),
        ({"text": "It.", "candidates": [f"w{i}" for i in range(60)]}, "over the limit of 50"),
        ({"text": "It.", "compare": "y" * (inputs.MAX_CHARS + 1)}, '"compare"'),
    ],
)
def test_field_limits_apply_per_line(tmp_path: Path, line: dict[str, Any], message: str) -> None:
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"text": "Fine."}, line])
    with pytest.raises(InputError, match="line 2") as caught:
        count_corpus(str(corpus))
    assert message in str(caught.value)
    txt = tmp_path / "c.txt"
    txt.write_text("Fine.\n" + "z" * (inputs.MAX_CHARS + 1) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"c\.txt line 2: sentence"):
        count_corpus(str(txt))


# ---------- issue 22: intervals, the chance level and readable figures ----------


def test_atlas_records_are_described_in_the_format() -> None:
    import dataclasses

    from reportgen import store

    doc = store.__doc__ or ""
    for record in (
        store.AtlasRecord,
        store.AtlasStatRecord,
        store.AtlasSentenceRecord,
        store.AtlasExampleRecord,
        store.AtlasSimilarRecord,
        store.AtlasCorefRecord,
    ):
        assert record.__name__ in doc
        for f in dataclasses.fields(record):
            assert f"``{f.name}``" in doc, f"{record.__name__}.{f.name} is not in FORMAT"


def synthetic_atlas(layers: int, heads: int, items: int, planted: bool, seed: int = 4) -> Any:
    """An Atlas with random statistics, a random head-distance map and `items`
    two-candidate gold items on which every head picks at random (and, if `planted`,
    Layer 2 Head 3 is right on every one): no model needed, any size."""
    import numpy as np

    from reportgen.atlas import Atlas
    from reportgen.atlas.stats import AtlasSums

    rng = np.random.default_rng(seed)
    sums = AtlasSums.empty(layers, heads, k=0)
    sums.sums[:] = rng.random(sums.sums.shape)
    sums.rows[:] = 1.0
    sums.log_keys, sums.sentences, sums.tokens = 3.0, items, 12 * items
    count = layers * heads
    points = rng.normal(size=(count, 4))
    sums.js_sum = np.triu(np.linalg.norm(points[:, None] - points[None], axis=-1), 1)
    sums.js_rows = 1.0
    for seq in range(items):
        answer = int(rng.integers(0, 2))
        prefer = rng.integers(0, 2, size=(layers, heads)).astype(np.int8)
        if planted:
            prefer[1, 2] = answer
        sums.coref_right += prefer == answer
        sums.coref_items += 1
        sums.nearest_right += int(rng.integers(0, 2))
        sums.first_right += answer == 0
        sums.coref.add(seq, answer, 2, prefer)
    return Atlas("synthetic", sums)


@pytest.mark.parametrize("planted", [False, True])
def test_the_page_says_whether_the_best_head_beats_chance(planted: bool) -> None:
    atlas = synthetic_atlas(6, 12, 20, planted)
    html = atlas.html()
    coref = atlas.coref
    assert coref is not None
    level = coref.chance_level
    assert level.distinguishable is planted
    headline = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html.split('id="rg-coref-chance"')[1]))
    headline = headline.split("</p>")[0] if "</p>" in headline else headline[:600]
    layer, head = coref.best
    assert f"Layer {layer + 1}, Head {head + 1}" in headline
    lo, hi = coref.best_interval.low, coref.best_interval.high
    assert f"95% interval {lo:.3f}–{hi:.3f}" in headline
    verdict = "is distinguishable from chance" if planted else "is not distinguishable from chance"
    assert verdict in headline
    assert (
        f"reached at least {level.observed:.3f} in {level.at_or_above:,} of 1,000 rounds"
        in headline
    )
    assert f"(p = {level.p_value:.3f}" in headline
    assert f"{level.percentile_95:.3f}: the 95th percentile" in html
    assert f"About {coref.items_needed:,} items would tell" in html
    if planted:
        assert (layer, head) == (1, 2) and level.p_value == pytest.approx(1 / 1001)
    else:
        assert level.p_value > 0.05


def test_export_carries_intervals_and_the_chance_level(tmp_path: Path) -> None:
    from reportgen.atlas.stats import wilson_interval

    atlas = synthetic_atlas(3, 4, 20, planted=True)
    atlas.export_json(tmp_path / "atlas.json")
    coref = json.loads((tmp_path / "atlas.json").read_text())["coreference"]
    right = atlas.sums.coref_right
    low, high = wilson_interval(right.astype(float), 20)
    assert coref["interval"]["method"] == "wilson" and coref["interval"]["confidence"] == 0.95
    assert coref["interval"]["low"] == low.tolist() and coref["interval"]["high"] == high.tolist()
    nb_low, nb_high = wilson_interval(float(atlas.sums.nearest_right), 20)
    assert coref["baseline_intervals"]["nearest_before"] == [float(nb_low), float(nb_high)]
    chance = coref["chance"]
    assert chance["random_pick"] == 0.5
    assert chance["best_head"] == {
        "layer": 1,
        "head": 2,
        "accuracy": 1.0,
        "interval": [float(low[1, 2]), float(high[1, 2])],
    }
    assert (chance["rounds"], chance["seed"], chance["at_or_above"]) == (1000, 22, 0)
    assert chance["p_value"] == pytest.approx(1 / 1001) and chance["distinguishable"] is True
    assert chance["percentile_95"] == atlas.coref.chance_level.percentile_95
    assert chance["items_needed"] == 3
    # The page's record carries the same intervals, rounded.
    payload = _payload(atlas.html())
    assert payload["coref_scale"]["low"][1][2] == round(float(low[1, 2]), 5)


def test_the_same_synthetic_atlas_twice_is_the_same_bytes() -> None:
    assert synthetic_atlas(6, 12, 20, False).html() == synthetic_atlas(6, 12, 20, False).html()


def _payload(html: str) -> dict[str, Any]:
    parsed = _Scripts()
    parsed.feed(html)
    (text,) = [t for a, t in parsed.scripts if a.get("id") == "rg-data-rg-main"]
    return dict(json.loads(text))


def test_the_colour_range_is_centred_on_chance_and_the_map_names_five() -> None:
    atlas = synthetic_atlas(30, 9, 40, planted=True)
    payload = _payload(atlas.html())
    scale = payload["coref_scale"]
    assert scale["chance"] == 0.5
    assert scale["zmax"] - 0.5 == pytest.approx(0.5 - scale["zmin"])
    grid = [v for row in payload["coref"] for v in row]
    assert scale["zmax"] == pytest.approx(max(abs(v - 0.5) for v in grid) + 0.5)
    similar = payload["similar"]
    assert len(similar["x"]) == 270
    # The five most accurate, best first (ties in layer-major order), the planted one first.
    order = sorted(range(270), key=lambda i: (-grid[i], i))[:5]
    assert similar["labelled"] == order and order[0] == 1 * 9 + 2


def _open_atlas(browser: Any, path: Path) -> tuple[Any, Any]:
    from .conftest import open_report

    page, log = open_report(browser, path, wait_all=False)
    page.wait_for_selector("#rg-main[data-rg-rendered='1']", state="attached", timeout=60_000)
    return page, log


def _draw(page: Any, selector: str) -> None:
    page.locator(selector).scroll_into_view_if_needed()
    page.wait_for_selector(f"{selector} .main-svg", state="attached", timeout=60_000)


@pytest.mark.browser
def test_the_accuracy_grid_diverges_about_the_baseline_in_chromium(
    browser: Any, tmp_path: Path, deep_corpus: Path, tiny_bert: Path
) -> None:
    out = tmp_path / "atlas.html"
    atlas = build_atlas(str(deep_corpus), ReportConfig(model=str(tiny_bert)))
    atlas.save(out)
    assert atlas.coref is not None and atlas.coref.chance == 0.5
    page, log = _open_atlas(browser, out)
    try:
        grid = '[data-stat="coref"]'
        _draw(page, grid)
        trace = page.locator(grid).evaluate(
            "el => ({zmin: el.data[0].zmin, zmax: el.data[0].zmax, zmid: el.data[0].zmid,"
            " colorscale: el.data[0].colorscale, fullscale: el._fullData[0].colorscale,"
            " text: el.data[0].text})"
        )
        assert trace["zmid"] == 0.5  # the baseline the page shows: a random pick
        assert trace["zmid"] - trace["zmin"] == pytest.approx(trace["zmax"] - trace["zmid"])

        def rgb(colour: str) -> tuple[int, int, int]:
            return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]

        stops = trace["fullscale"]
        assert stops == trace["colorscale"]  # the figure draws exactly the page's scale
        # Diverging: red at the low end, blue at the high end, neutral grey-white at the
        # stop where the baseline falls, (zmid - zmin) / (zmax - zmin) = 0.5.
        where = (trace["zmid"] - trace["zmin"]) / (trace["zmax"] - trace["zmin"])
        (middle,) = [c for f, c in stops if f == pytest.approx(where)]
        r, g, b = rgb(middle)
        assert min(r, g, b) > 230 and max(r, g, b) - min(r, g, b) < 10
        lo, hi = rgb(stops[0][1]), rgb(stops[-1][1])
        assert lo[0] > lo[2] + 100 and hi[2] > hi[0] + 100
        low = atlas.coref.low
        assert trace["text"][0][0] == f"{low[0, 0]:.3f}–{atlas.coref.high[0, 0]:.3f}"
        assert log.errors == []
    finally:
        page.context.close()


@pytest.mark.browser
def test_the_map_of_270_heads_names_five_and_the_chosen_one(browser: Any, tmp_path: Path) -> None:
    out = tmp_path / "atlas.html"
    atlas = synthetic_atlas(30, 9, 40, planted=True)
    atlas.save(out)
    page, log = _open_atlas(browser, out)
    try:
        _draw(page, '[data-stat="coref"]')
        _draw(page, '[data-view="atlas-similar"]')
        similar = '[data-view="atlas-similar"]'

        def names() -> list[str]:
            return list(
                page.locator(similar).evaluate("el => el.layout.annotations.map(a => a.text)")
            )

        shown = names()
        # The five most accurate (the planted Layer 2, Head 3 first) and the chosen head.
        assert shown[0] == "L2H3" and len(shown) == 6 and shown[-1] == "L1H1 (chosen)"
        assert page.locator(f"{similar} .annotation").count() == 6
        points = page.locator(similar).evaluate("el => el.data.reduce((n, t) => n + t.x.length, 0)")
        modes = page.locator(similar).evaluate("el => el.data.map(t => t.mode)")
        assert points == 270 and set(modes) == {"markers"}  # names on hover, not drawn
        # Choosing a head elsewhere (the label table) names it on the map.
        page.locator('.rg-labels td[data-layer="29"][data-head="8"]').click()
        page.wait_for_selector("[data-view='atlas-head'][data-rg-rendered='1']", state="attached")
        for _ in range(50):  # the map updates after the head view: poll (no eval under CSP)
            if names()[-1] == "L30H9 (chosen)":
                break
            page.wait_for_timeout(100)
        assert names()[-1] == "L30H9 (chosen)" and len(names()) == 6
        assert log.errors == [] and log.dialogs == []
    finally:
        page.context.close()
