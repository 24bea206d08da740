"""The hand-in as files: each minimal pair's two submission heatmaps, as PNG and SVG.

Drawn with matplotlib's object API on the Agg canvas (no pyplot, no global backend, no
display, no network). The output is byte-identical on a rerun: fixed fonts, a fixed SVG
hash salt, and no date or version stamps in the files' metadata.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from reportgen import analysis
from reportgen.config import Extraction
from reportgen.errors import InputError
from reportgen.render import atomic_path
from reportgen.report.document import ReportDocument

__all__ = ["HeatmapSpec", "check_folder", "submission_specs", "write_submission"]

OUTLINE = "#ff2d55"
_RC: Any = {  # a plain dict; matplotlib types its keys as literals
    "font.family": "DejaVu Sans",
    "svg.fonttype": "none",  # real <text>: selectable, searchable, and parseable in tests
    "svg.hashsalt": "reportgen",  # fixed ids in the SVG, so reruns are byte-identical
    "path.simplify": False,
}
_PNG_METADATA: dict[str, str | None] = {"Software": None}
_SVG_METADATA: dict[str, str | None] = {"Date": None, "Creator": None}


@dataclass(frozen=True)
class HeatmapSpec:
    """One submission heatmap: what to draw and what to call the file."""

    stem: str  # file name without extension, e.g. "pair1_A_L5H1"
    title: str  # "Layer 5, Head 1"
    sentence: str
    tokens: tuple[str, ...]
    special: tuple[bool, ...]
    attention: np.ndarray  # float64[n, n], one head
    focus_rows: tuple[int, ...]
    candidate_cols: tuple[int, ...]
    caption: str
    row_name: str = "focus"  # what the outlined row is: the focus word, or the pair's query


def check_folder(folder: Path) -> None:
    """Fail early (before the model loads) on a folder that cannot be written."""
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--submission '{folder}' is a file, not a folder")
    if not folder.exists() and not folder.parent.is_dir():
        raise InputError(f"--submission: folder '{folder.parent}' does not exist")


def submission_specs(doc: ReportDocument, extraction: Extraction) -> list[HeatmapSpec]:
    """Two maps per comparable pair (its submission head, its query row outlined); else
    each sentence's first head."""
    specs: list[HeatmapSpec] = []
    for p in doc.pairs:
        fa, fb = doc.sentences[p.a].focus, doc.sentences[p.b].focus
        if p.words is None or fa is None or fb is None or p.query is None or p.scores is None:
            continue
        layer, head = p.chosen
        query = p.query
        # Where the question is asked is said on the file, unless it is the focus word.
        where = "" if query.at == "word" else f" (asked at {query.where})"
        for side, (tag, index, focus, cand) in enumerate(
            (("A", p.a, fa, p.words.expected[0]), ("B", p.b, fb, p.words.expected[1]))
        ):
            c = focus.candidates.index(cand)
            weight = float(p.scores[side][layer, head, c])
            specs.append(
                _spec(
                    doc,
                    extraction,
                    index,
                    f"pair{p.number}_{tag}_L{layer + 1}H{head + 1}",
                    (layer, head),
                    query.positions[side],
                    focus.candidate_positions[c],
                    f"{tag}: '{query.words[side]}' → '{cand}' = {weight:.3f}{where}",
                    row_name="focus" if query.at == "word" else "query",
                )
            )
    if specs:
        return specs  # pairs without a focus word fall through to one map per sentence
    layer, head = doc.start.layer, doc.start.head
    for s in doc.sentences:
        f = s.focus
        rows: tuple[int, ...] = ()
        cols: tuple[int, ...] = ()
        caption = ""
        if f is not None:
            rows = f.positions
            if f.candidates:
                c = f.candidates.index(f.answer) if f.answer in f.candidates else 0
                cols = f.candidate_positions[c]
                weight = float(f.scores[layer, head, c])
                caption = f"'{f.word}' → '{f.candidates[c]}' = {weight:.3f}"
        stem = f"sentence{s.number}_L{layer + 1}H{head + 1}"
        specs.append(_spec(doc, extraction, s.number - 1, stem, (layer, head), rows, cols, caption))
    return specs


def _spec(
    doc: ReportDocument,
    extraction: Extraction,
    index: int,
    stem: str,
    layer_head: tuple[int, int],
    rows: Sequence[int],
    cols: Sequence[int],
    caption: str,
    row_name: str = "focus",
) -> HeatmapSpec:
    amap = extraction.results[index].maps[0]
    layer, head = layer_head
    # The first map only: its query and key are the same tokens (self-attention).
    attention = np.asarray(amap.attention[layer, head], dtype=np.float64)
    return HeatmapSpec(
        stem=stem,
        title=f"Layer {layer + 1}, Head {head + 1}",
        sentence=doc.sentences[index].text,
        tokens=amap.key.display,
        special=amap.key.special,
        attention=attention,
        focus_rows=tuple(rows),
        candidate_cols=tuple(cols),
        caption=caption,
        row_name=row_name,
    )


MAX_SIDE_IN = 40.0  # inches; 4000 px at 100 dpi keeps a 512-token PNG near 64 MB in memory


def _layout(n: int) -> tuple[float, float]:
    """Figure side (inches) and tick font size (points) from the token count.

    About a third of an inch per token for short sentences, shrinking to a seventh at 100
    tokens, so 16 tokens give a 7.6-inch figure with 9-pt labels and 100 tokens a 16-inch
    one with 6-pt labels that still do not overlap. Past MAX_SIDE_IN the cells shrink
    and so does the font, to one point less than a cell (never under 2 pt).
    """
    cell = 0.32 if n <= 24 else max(0.14, 0.32 - (n - 24) * 0.0024)
    if 2.5 + n * cell > MAX_SIDE_IN:
        cell = (MAX_SIDE_IN - 2.5) / n
    size = 2.5 + n * cell
    font = 9.0 if n <= 40 else 7.0 if n <= 70 else 6.0
    font = max(2.0, min(font, cell * 72 - 1))
    return max(size, 5.0), font


def _span(positions: Sequence[int]) -> tuple[float, float] | None:
    return (min(positions) - 0.5, max(positions) + 0.5) if positions else None


def draw(spec: HeatmapSpec) -> Figure:
    """The matplotlib Figure of one submission heatmap (not yet saved)."""
    n = spec.attention.shape[-1]
    side, font = _layout(n)
    vmin, vmax = analysis.submission_range(spec.attention, spec.special)
    fig = Figure(figsize=(side + 1.2, side + 0.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(spec.attention, cmap="viridis", vmin=vmin, vmax=vmax, interpolation="nearest")
    ticks = list(range(n))
    ax.set_xticks(ticks, labels=list(spec.tokens), rotation=90, fontsize=font)
    ax.set_yticks(ticks, labels=list(spec.tokens), fontsize=font)
    ax.set_xlabel("Key (attended to)")
    ax.set_ylabel("Query (attending from)")
    wrapped = "\n".join(textwrap.wrap(spec.sentence, width=max(40, int(side * 9))))
    ax.set_title(f"{spec.title}\n{wrapped}", fontsize=11)
    rows, cols = _span(spec.focus_rows), _span(spec.candidate_cols)
    if rows is not None:
        ax.add_patch(
            Rectangle((-0.5, rows[0]), n, rows[1] - rows[0], fill=False, ec=OUTLINE, lw=2.5)
        )
    if cols is not None:
        ax.add_patch(
            Rectangle((cols[0], -0.5), cols[1] - cols[0], n, fill=False, ec=OUTLINE, lw=2.5)
        )
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
    bar.set_label("attention weight")
    scale = (
        f"Colour scale 0-{vmax:.2f}, the largest weight outside special-token columns "
        "(those may saturate)."
        if any(spec.special)
        else f"Colour scale 0-{vmax:.2f}, the largest weight."
    )
    lines = [spec.caption] if spec.caption else []
    if rows is not None or cols is not None:
        lines.append(f"Outlined: the {spec.row_name} row and the candidate's column.")
    lines.append(scale)
    fig.text(0.5, 0.01, "\n".join(lines), ha="center", va="bottom", fontsize=9)
    fig.subplots_adjust(bottom=0.12 + 0.9 / side, top=0.86, left=0.16, right=0.92)
    return fig


def write_submission(doc: ReportDocument, extraction: Extraction, folder: Path) -> list[Path]:
    """Write every submission heatmap as PNG and SVG into `folder`; return the paths."""
    check_folder(folder)
    folder.mkdir(exist_ok=True)
    written: list[Path] = []
    with matplotlib.rc_context(_RC):
        for spec in submission_specs(doc, extraction):
            fig = draw(spec)
            for ext, metadata in (("png", _PNG_METADATA), ("svg", _SVG_METADATA)):
                path = folder / f"{spec.stem}.{ext}"
                with atomic_path(path) as tmp:
                    fig.savefig(
                        tmp, format=ext, metadata=metadata, bbox_inches="tight", pad_inches=0.2
                    )
                written.append(path)
    return written
