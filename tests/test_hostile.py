"""Hostile sentences, in the report's source and in a real browser: no script runs,
nothing leaks out, every text shows exactly as given.

One report holds the whole corpus in `tests/data/hostile.jsonl` plus a 2,000-word
sentence (truncated to the tiny model's 128 tokens), a hostile title and a minimal pair
whose focus and candidate words are markup.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from reportgen.cli import main
from reportgen.render import page_scripts

from .conftest import open_report, outside_requests

CORPUS = Path(__file__).resolve().parent / "data" / "hostile.jsonl"
HOSTILE_TITLE = "</title><script>window.__pwned = 'title'</script>{{ 7*7 }}"
PHRASE = "the quick brown fox jumps over a lazy dog while it rains "
LONG_SENTENCE = " ".join((PHRASE * 167).split()[:2000])
# A minimal pair whose focus and candidate words are markup: they reach Plotly titles.
CANDIDATES = ["<b>cat</b>", "<i>dog</i>"]
PAIR: dict[str, Any] = {
    "text": "The <b>cat</b> chased the <i>dog</i> because it was hungry </script><script>",
    "compare": "The <b>cat</b> chased the <i>dog</i> because it was slow <!--",
    "focus": "it",
    "candidates": CANDIDATES,
}


def corpus() -> list[str]:
    """The stored hostile sentences, in file order (comment lines skipped)."""
    lines = CORPUS.read_text(encoding="utf-8").split("\n")
    return [json.loads(line)["text"] for line in lines if line.strip() and line[0] != "#"]


def test_corpus_covers_the_issue_list() -> None:
    texts = corpus()
    assert len(texts) >= 25
    joined = "\n".join(texts)
    for needle in (
        "</script><script>",
        "onerror=",
        "{{ 7*7 }}",
        "<!--",
        "<![CDATA[",
        "\u200d",  # emoji joiner
        "\u200b",  # zero-width space
        "\u00a0",  # non-breaking space
        "\u2028",
        "東京",
        "שלום",
        "[CLS] [SEP]",
    ):
        assert needle in joined, needle
    assert "a" in texts and any(t.startswith("#") for t in texts)
    assert len(LONG_SENTENCE.split()) == 2000


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    return [*corpus(), LONG_SENTENCE, PAIR["text"], PAIR["compare"]]


@pytest.fixture(scope="module")
def hostile_report(
    tiny_bert: Path, sentences: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """One report of the whole corpus, written through the real CLI."""
    folder = tmp_path_factory.mktemp("hostile")
    source = folder / "hostile.jsonl"
    records = [{"text": t} for t in sentences[:-2]] + [PAIR]
    source.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    out = folder / "report.html"
    result = CliRunner().invoke(
        main, ["-i", str(source), "-m", str(tiny_bert), "-o", str(out), "--title", HOSTILE_TITLE]
    )
    assert result.exit_code == 0, result.stderr
    assert "truncated from" in result.stderr  # the 2,000-word sentence
    return out


class _Elements(HTMLParser):
    """Every start tag in the source, with its attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_source_holds_no_markup_from_user_text(hostile_report: Path) -> None:
    source = hostile_report.read_text(encoding="utf-8")
    for needle in ("</script><script>", "<script>window", "<img", "<iframe", "<svg", "<!--"):
        assert needle not in source, needle
    parser = _Elements()
    parser.feed(source)
    parser.close()
    # A deny list (templates change; these tags never belong in a report's source).
    forbidden = {"img", "iframe", "svg", "object", "embed", "base", "link", "form", "frame"}
    assert not forbidden & {tag for tag, _ in parser.tags}
    for tag, attrs in parser.tags:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        assert not str(attrs.get("href") or "").lower().startswith("javascript:")
        if tag == "meta":
            assert attrs.get("http-equiv") in (None, "Content-Security-Policy"), attrs
    scripts = [attrs for tag, attrs in parser.tags if tag == "script"]
    for attrs in scripts:
        # Data blocks are inert; the only scripts that run are our own (no src).
        assert attrs.get("type") in (None, "application/json", "application/x-reportgen-lib")
        assert not attrs.get("src"), attrs
    assert len([a for a in scripts if a.get("type") is None]) == len(page_scripts())
    csp = [a for t, a in parser.tags if t == "meta" and a.get("http-equiv")]
    assert len(csp) == 1 and str(csp[0]["content"]).startswith("default-src 'none'")


@pytest.mark.browser
def test_hostile_corpus_renders_literally_and_runs_nothing(
    browser: Any, hostile_report: Path, sentences: list[str]
) -> None:
    page, log = open_report(browser, hostile_report)
    assert log.dialogs == []
    assert page.evaluate("() => typeof window.__pwned") == "undefined"
    assert outside_requests(log, hostile_report) == []
    assert log.errors == []
    assert page.locator("#rg-error").count() == 0
    # Every sentence, byte for byte, in its heading (textContent keeps zero-width
    # characters and no-break spaces that innerText would normalise).
    headings = page.locator("section.rg-sentence > h2").evaluate_all(
        "els => els.map(e => e.textContent)"
    )
    # Inputs over 80 characters: shortened in the heading and the navigation, in full below.
    short = [text[:80] + "…" if len(text) > 80 else text for text in sentences]
    assert headings == [f"{i}. {text}" for i, text in enumerate(short, start=1)]
    nav_labels = page.locator("#rg-sentence-list a").evaluate_all(
        "els => els.map(e => e.textContent)"
    )
    assert nav_labels == short
    full = page.locator("section.rg-sentence").evaluate_all(
        "els => els.map(e => (e.querySelector('.rg-full-text') || e.querySelector('h2 .rg-text'))"
        ".textContent)"
    )
    assert full == sentences
    nav = page.locator("#rg-sentence-list li").evaluate_all("els => els.map(e => e.dataset.text)")
    assert nav == [text.lower() for text in sentences]
    assert page.title() == f"{HOSTILE_TITLE} · reportgen"
    assert page.locator("h1").text_content() == HOSTILE_TITLE
    # Template syntax stays literal: nothing evaluated {{ 7*7 }} to 49.
    jinja = sentences.index("{{ 7*7 }} {% if true %}jinja{% endif %} {# comment #}") + 1
    assert "{{ 7*7 }}" in str(page.locator(f"#s{jinja} > h2").text_content())
    assert not [h for h in [*headings, page.locator("h1").text_content()] if "49" in str(h)]
    # Nothing the sentences describe became an element, an attribute or a handler.
    injected = page.evaluate(
        """() => {
            const found = [];
            for (const el of document.querySelectorAll('*')) {
                for (const a of el.attributes) {
                    const url = ['href', 'src', 'action', 'formaction'].includes(a.name);
                    if (a.name.startsWith('on') || (url && /javascript:/i.test(a.value))) {
                        found.push(el.tagName + ' ' + a.name + '=' + a.value);
                    }
                }
            }
            const tags = 'img, iframe, object, embed, base, link, meta[http-equiv=refresh]';
            for (const el of document.querySelectorAll(tags)) found.push(el.outerHTML);
            return found;
        }"""
    )
    assert injected == []
    # The views drew tokens as text: the head view and the heatmap ticks show '<'.
    lone = sentences.index("<") + 1
    texts = page.locator(f"#s{lone} .rg-bertviz svg text").all_text_contents()
    assert "<" in texts and "[CLS]" in texts
    ticks = page.locator(f'#s{lone} [data-plot="head"] .xtick text').all_text_contents()
    assert "<" in ticks
    # Figure titles quote the focus and candidate words: shown as typed, not as markup.
    titles = [t for t in page.locator(".gtitle").all_text_contents() if "'it' →" in t]
    assert titles, "no focus or pair figure drew a title"
    for title in titles:
        assert any(f"'{c}'" in title for c in CANDIDATES), title
    # Redraw everything with special tokens hidden: the sentence of only special tokens
    # keeps them rather than drawing an empty map. The click is answered at once (the
    # page redraws a section at a time), then every section is scrolled to and redrawn.
    page.click("#rg-hide-special", timeout=5_000)
    only = sentences.index("[CLS] [SEP] [MASK] [PAD] [UNK]") + 1
    assert page.locator(f"#s{only}").get_attribute("data-rg-rendered") is None
    page.locator(f"#s{only}").scroll_into_view_if_needed()
    page.wait_for_selector(f"#s{only}[data-rg-rendered='1']", state="attached")
    ticks = page.locator(f'#s{only} [data-plot="head"] .xtick text').all_text_contents()
    assert len(ticks) == 7 and set(ticks) <= {"[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]"}
    assert log.errors == [] and page.locator("#rg-error").count() == 0
    assert log.dialogs == [] and page.evaluate("() => typeof window.__pwned") == "undefined"
    assert outside_requests(log, hostile_report) == []
    page.context.close()
