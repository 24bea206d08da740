"""submission: the hand-in heatmaps as PNG and SVG files, checked by opening them."""

from __future__ import annotations

import json
import struct
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from reportgen import analysis
from reportgen.cli import main
from reportgen.errors import InputError
from reportgen.submission import _layout, check_folder

from .conftest import WINOGRAD

SVG = "{http://www.w3.org/2000/svg}"
PAIR_ARGS = ("--compare", "--focus", "it", "--candidates", "animal,street")


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stderr


def png_header(path: Path) -> tuple[int, int, str]:
    """Width, height and colour mode read from the PNG's IHDR chunk (checked by its CRC)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    body = data[16 : 16 + length]
    (crc,) = struct.unpack(">I", data[16 + length : 20 + length])
    assert zlib.crc32(kind + body) == crc
    width, height, depth, color = struct.unpack(">IIBB", body[:10])
    assert depth == 8
    return width, height, {2: "RGB", 6: "RGBA"}[color]


def svg_texts(path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    return ["".join(t.itertext()).strip() for t in root.iter(f"{SVG}text")]


@pytest.fixture(scope="module")
def pair_files(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("submission")
    html = out / "report.html"
    code, err = _run(
        *WINOGRAD,
        "-m",
        str(tiny_bert),
        *PAIR_ARGS,
        "-o",
        str(html),
        "--submission",
        str(out / "files"),
        "--export-json",
        str(out / "d.json"),
    )
    assert code == 0, err
    return out


def test_two_png_and_two_svg_per_pair(pair_files: Path) -> None:
    files = sorted(p.name for p in (pair_files / "files").iterdir())
    stems = sorted({Path(f).stem for f in files})
    assert len(files) == 4 and len(stems) == 2
    assert stems[0].startswith("pair1_A_L") and stems[1].startswith("pair1_B_L")
    assert stems[0][len("pair1_A_") :] == stems[1][len("pair1_B_") :]  # the same head
    for stem in stems:
        width, height, mode = png_header(pair_files / "files" / f"{stem}.png")
        assert mode in ("RGB", "RGBA")
        assert 400 <= width <= 2000 and 400 <= height <= 2000


def test_svg_carries_the_labs_labels_and_the_weight(pair_files: Path) -> None:
    data = json.loads((pair_files / "d.json").read_text())
    pair = data["pairs"][0]
    layer, head = (pair["best_head"][k] for k in ("layer_index", "head_index"))
    for tag, item, cand in (("A", data["items"][0], 0), ("B", data["items"][1], 1)):
        path = pair_files / "files" / f"pair1_{tag}_L{layer + 1}H{head + 1}.svg"
        texts = svg_texts(path)
        assert f"Layer {layer + 1}, Head {head + 1}" in texts
        assert "Key (attended to)" in texts and "Query (attending from)" in texts
        # The title's second part is the sentence, wrapped over one or more lines.
        joined = " ".join(texts)
        assert item["text"].split()[0] in joined and "[CLS]" in texts and "it" in texts
        focus = item["focus"]["candidates"][cand]
        weight = focus["scores"][layer][head]
        word = focus["word"]
        assert f"{tag}: 'it' → '{word}' = {weight:.3f}" in texts
        assert any(t.startswith("Colour scale 0-") for t in texts)


def test_rerun_is_byte_identical(tiny_bert: Path, pair_files: Path, tmp_path: Path) -> None:
    code, err = _run(
        *WINOGRAD,
        "-m",
        str(tiny_bert),
        *PAIR_ARGS,
        "-o",
        str(tmp_path / "r.html"),
        "--submission",
        str(tmp_path / "again"),
    )
    assert code == 0, err
    first = {p.name: p.read_bytes() for p in (pair_files / "files").iterdir()}
    second = {p.name: p.read_bytes() for p in (tmp_path / "again").iterdir()}
    assert first == second
    assert not any(b"Matplotlib v" in b or b"<dc:date>" in b for b in second.values())


def test_layer_and_head_override_the_answer(tiny_bert: Path, tmp_path: Path) -> None:
    code, err = _run(
        *WINOGRAD,
        "-m",
        str(tiny_bert),
        *PAIR_ARGS,
        "--layer",
        "2",
        "--head",
        "3",
        "-o",
        str(tmp_path / "r.html"),
        "--submission",
        str(tmp_path / "s"),
    )
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [
        "pair1_A_L2H3.png",
        "pair1_A_L2H3.svg",
        "pair1_B_L2H3.png",
        "pair1_B_L2H3.svg",
    ]


def test_gold_answers_pick_the_outlined_candidate(tiny_bert: Path, tmp_path: Path) -> None:
    # Gold says A refers to 'street' and B to 'animal': the captions follow the gold.
    line = {
        "text": WINOGRAD[0],
        "compare": WINOGRAD[1],
        "focus": "it",
        "candidates": ["animal", "street"],
        "answer": "street",
    }
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(line) + "\n")
    code, err = _run(
        "-i",
        str(src),
        "-m",
        str(tiny_bert),
        "-o",
        str(tmp_path / "r.html"),
        "--submission",
        str(tmp_path / "s"),
    )
    assert code == 0, err
    (a_svg,) = (tmp_path / "s").glob("pair1_A_*.svg")
    (b_svg,) = (tmp_path / "s").glob("pair1_B_*.svg")
    assert any(t.startswith("A: 'it' → 'street' = ") for t in svg_texts(a_svg))
    assert any(t.startswith("B: 'it' → 'animal' = ") for t in svg_texts(b_svg))


def test_without_pairs_each_sentence_gets_its_first_head(tiny_bert: Path, tmp_path: Path) -> None:
    code, err = _run(
        *WINOGRAD,
        "-m",
        str(tiny_bert),
        "-o",
        str(tmp_path / "r.html"),
        "--submission",
        str(tmp_path / "s"),
    )
    assert code == 0, err
    # The tiny model has 2 layers: the last layer's first head is shown first.
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [
        "sentence1_L2H1.png",
        "sentence1_L2H1.svg",
        "sentence2_L2H1.png",
        "sentence2_L2H1.svg",
    ]


def test_a_file_in_the_way_fails_before_the_model_loads(tmp_path: Path) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    # A model that does not exist: the folder check must answer first.
    code, err = _run(
        WINOGRAD[0],
        "-m",
        str(tmp_path / "no-model"),
        "--submission",
        str(blocker),
        "-o",
        str(tmp_path / "r.html"),
    )
    assert code != 0 and "Traceback" not in err
    assert code == 2 and "'--submission'" in err and "is a file" in err
    assert not (tmp_path / "r.html").exists()
    with pytest.raises(InputError, match="does not exist"):
        check_folder(tmp_path / "missing" / "deeper")


def test_layout_grows_with_tokens_and_keeps_labels_apart() -> None:
    small, small_font = _layout(16)
    big, big_font = _layout(100)
    assert small < big and small_font > big_font >= 6
    # Each token gets at least as much room as one line of its tick font (1 pt = 1/72 in).
    for n, (side, font) in ((16, (small, small_font)), (100, (big, big_font))):
        assert (side - 2.5) / n >= font / 72


def test_colour_range_matches_the_analysis_rule(pair_files: Path) -> None:
    data = json.loads((pair_files / "d.json").read_text())
    layer, head = (data["pairs"][0]["best_head"][k] for k in ("layer_index", "head_index"))
    item = data["items"][0]
    att = np.array(item["attention"])[layer, head]
    special = [t in ("[CLS]", "[SEP]") for t in item["tokens"]]
    _, top = analysis.submission_range(att, special)
    (svg,) = (pair_files / "files").glob("pair1_A_*.svg")
    assert f"Colour scale 0-{top:.2f}" in " ".join(svg_texts(svg))


def test_pairs_without_a_focus_word_fall_back_to_sentences(tiny_bert: Path, tmp_path: Path) -> None:
    code, err = _run(
        *WINOGRAD,
        "-m",
        str(tiny_bert),
        "--compare",
        "-o",
        str(tmp_path / "r.html"),
        "--submission",
        str(tmp_path / "s"),
    )
    assert code == 0, err
    names = sorted(p.name for p in (tmp_path / "s").iterdir())
    assert names == [f"sentence{i}_L2H1.{e}" for i in (1, 2) for e in ("png", "svg")]


def test_long_inputs_stay_within_the_size_cap() -> None:
    side, font = _layout(512)
    assert side <= 40 and 2 <= font <= (side - 2.5) / 512 * 72
