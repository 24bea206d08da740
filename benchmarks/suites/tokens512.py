"""512 tokens through a BERT-base-sized random model: time, size and payload, beside bertviz."""

from __future__ import annotations

from .. import targets
from ..context import Context
from ..fixtures import bert_base_random, long_input, long_page
from ..measure import mem_available, run, say
from ..payload import bertviz_subprocess, report_payload
from ..table import Row, fmt_mb, fmt_s

BERTVIZ_FULL_RAM = 12 * 2**30  # bertviz's 512-token run peaks near 9 GB


def rows(ctx: Context) -> list[Row]:
    import numpy as np

    from reportgen.config import InputBatch, ReportConfig, SentenceInput
    from reportgen.extract import extract

    say("512 tokens: BertConfig() with random weights")
    model_dir, long_txt = bert_base_random(ctx.work), long_input(ctx.work)
    cmd, long_html = long_page(ctx.work)
    long_time = run(cmd)
    long_size = long_html.stat().st_size
    chars, long_values = report_payload(long_html)
    long_res = extract(
        InputBatch(items=(SentenceInput(long_txt.read_text().strip()),)),
        ReportConfig(model=str(model_dir)),
    ).results[0]
    long_att = long_res.maps[0].attention
    if long_att.shape != (12, 12, 512, 512):
        raise RuntimeError(f"512-token input gave attention of shape {long_att.shape}")
    if ctx.quick or mem_available() < BERTVIZ_FULL_RAM:
        # bertviz on the first 256 tokens (rows renormalised), scaled up by value count.
        half = long_att[:, :, :256, :256] / long_att[:, :, :256, :256].sum(-1, keepdims=True)
        np.save(ctx.work / "attention256.npy", half)
        bv_size, bv_time, bv_peak = bertviz_subprocess(ctx.work / "attention256.npy")
        bv_long = bv_size / half.size * long_att.size
        bv_note = (
            f"bertviz ≈ {fmt_mb(bv_long)} (est. from its {fmt_mb(bv_size)}, "
            f"{fmt_s(bv_time)} at 256 tokens)"
        )
        bv_time_note = f"bertviz at 256 tokens: {fmt_s(bv_time)}"
    else:
        np.save(ctx.work / "attention512.npy", long_att)
        bv_size, bv_time, bv_peak = bertviz_subprocess(ctx.work / "attention512.npy")
        bv_long = bv_size
        bv_note = f"bertviz head_view {fmt_mb(bv_size)} (peak RAM {fmt_mb(bv_peak)})"
        bv_time_note = f"bertviz head_view {fmt_s(bv_time)} (HTML only)"
    del long_res, long_att
    return [
        Row.info(
            "512 tokens, 12 x 12 heads: reportgen time (load, forward, report)",
            fmt_s(long_time),
            bv_time_note,
        ),
        Row.check(
            "512 tokens: report size",
            fmt_mb(long_size),
            bv_note,
            targets.LONG_SIZE,
            long_size,
        ),
        Row.check(
            "512 tokens: attention payload (bytes/value)",
            f"{chars / long_values:.3f}",
            f"bertviz {bv_long / long_values:.1f}",
            targets.PAYLOAD,
            chars / long_values,
        ),
    ]
