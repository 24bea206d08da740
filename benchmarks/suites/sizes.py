"""Bytes per attention value and report sizes, beside bertviz and plain 8-bit rounding."""

from __future__ import annotations

from .. import targets
from ..context import Context
from ..fixtures import built, many_page, many_sentences, pair_page
from ..inputs import PARAGRAPH, WINOGRAD, write_lines
from ..measure import reportgen_cmd, run, say
from ..payload import bertviz_bytes, eight_bit, report_payload
from ..table import Row, fmt_mb, fmt_s


def rows(ctx: Context) -> list[Row]:
    import numpy as np

    from reportgen.assets import libraries
    from reportgen.config import InputBatch, SentenceInput
    from reportgen.extract import extract

    say("payload and sizes: Winograd pair and generated sentences")
    config, loaded = ctx.embedded
    pair_html = built(pair_page(ctx.work))
    pair = extract(InputBatch(items=tuple(SentenceInput(s) for s in WINOGRAD)), config, loaded)
    pair_att = [r.maps[0].attention for r in pair.results]
    pair_tokens = [r.maps[0].query.tokens for r in pair.results]
    bv_pair = bertviz_bytes(pair_att, pair_tokens)
    chars, values = report_payload(pair_html)
    ours = chars / values
    bv_per_value = bv_pair / values
    out = [
        Row.check(
            "Attention payload, Winograd pair (bytes/value)",
            f"{ours:.3f}",
            f"bertviz head_view {bv_per_value:.1f}",
            targets.PAYLOAD,
            ours,
            shown=f"{bv_per_value / ours:.0f}x smaller",
        )
    ]
    # The issue's own reference point: ~99 tokens through the embedded model, where plain
    # 8-bit rounding + compression measured 0.41 bytes/value. At 16 tokens each weight
    # carries more information, so the same 8-bit method (which breaks the 0.002 bound)
    # is shown beside ours for both sizes.
    paragraph_txt = write_lines(ctx.work / "paragraph.txt", [PARAGRAPH])
    paragraph_html = ctx.work / "paragraph.html"
    run(reportgen_cmd("-i", str(paragraph_txt), "-o", str(paragraph_html)))
    paragraph = extract(InputBatch(items=(SentenceInput(PARAGRAPH),)), config, loaded)
    paragraph_map = paragraph.results[0].maps[0].attention
    chars, values = report_payload(paragraph_html)
    out.append(
        Row.check(
            f"Attention payload, one {paragraph_map.shape[-1]}-token paragraph (bytes/value)",
            f"{chars / values:.3f}",
            f"8-bit rounding + gzip (outside the 0.002 bound) {eight_bit(paragraph_map):.3f}",
            targets.PAYLOAD,
            chars / values,
        )
    )
    out.append(
        Row.info(
            "Winograd pair: the same 8-bit reference (bytes/value)",
            f"{eight_bit(np.concatenate([a.ravel() for a in pair_att])):.3f}",
            "shows what short sentences cost at any rounding",
        )
    )
    pair_size = pair_html.stat().st_size
    out.append(
        Row.check(
            "Report size, Winograd pair (all scripts inlined)",
            fmt_mb(pair_size),
            f"bertviz head_view {fmt_mb(bv_pair)}",
            targets.WINOGRAD_SIZE,
            pair_size,
        )
    )
    plotly = next(lib for lib in libraries() if lib.name == "plotly")
    packed, source = len(plotly.packed), len(plotly.source.encode())
    out.append(
        Row.info(
            "plotly.js as inlined (gzip + base64)",
            fmt_mb(packed),
            f"plotly.min.js {fmt_mb(source)}",
            f"{packed / source:.2f} of its size",
        )
    )

    cmd, many_html = many_page(ctx.work)
    many_time = run(cmd)
    lengths = [len(loaded.tokenizer(s)["input_ids"]) for s in many_sentences()]
    many_size = many_html.stat().st_size
    chars, values = report_payload(many_html)
    out.append(
        Row.check(
            f"Attention payload, 200 sentences (bytes/value, {np.mean(lengths):.1f} tokens)",
            f"{chars / values:.3f}",
            f"bertviz head_view ≈ {bv_per_value:.1f}",
            targets.PAYLOAD,
            chars / values,
        )
    )
    out.append(
        Row.check(
            f"Report size, 200 sentences (built in {fmt_s(many_time)})",
            fmt_mb(many_size),
            f"bertviz ≈ {fmt_mb(bv_per_value * values)} (at its bytes/value)",
            targets.MANY_SIZE,
            many_size,
        )
    )
    return out
