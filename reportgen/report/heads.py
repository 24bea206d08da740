"""Which head the page shows first: ``--layer/--head``, the lab's head, or the first
minimal pair's answer head, always with the reason in words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from reportgen.config import SEED_HEAD, SEED_LAYER, ModelInfo, ReportConfig
from reportgen.errors import InputError

if TYPE_CHECKING:  # pairs.py builds on HeadChoice; only the type is needed here
    from reportgen.report.pairs import PairDoc


@dataclass(frozen=True)
class HeadChoice:
    """The head the heatmaps show first (0-based) and why."""

    layer: int
    head: int
    note: str


def is_lab_model(model: ModelInfo) -> bool:
    """Whether the lab's Layer 10, Head 5 means anything here: a 12 x 12 BERT only
    (BertModel, BertForMaskedLM, ...; not RoBERTa or ALBERT, whose heads differ)."""
    return model.layers == 12 and model.heads == 12 and model.architecture.startswith("Bert")


def choose_head(model: ModelInfo, layer: int | None, head: int | None) -> HeadChoice:
    """Validate `--layer/--head` (1-based) or fall back to the seed lab's head."""
    for flag, value, limit in (("--layer", layer, model.layers), ("--head", head, model.heads)):
        if value is not None and not 1 <= value <= limit:
            what = "layers" if flag == "--layer" else "heads"
            raise InputError(
                f"{flag} {value} is out of range: this model has {what} 1-{limit} (1-based)"
            )
    if layer is not None or head is not None:
        lay = layer if layer is not None else min(SEED_LAYER, model.layers)
        hd = head if head is not None else 1
        return HeadChoice(
            lay - 1, hd - 1, f"Layer {lay}, Head {hd}, as chosen with --layer/--head."
        )
    if is_lab_model(model):
        return HeadChoice(
            SEED_LAYER - 1,
            SEED_HEAD - 1,
            f"Layer {SEED_LAYER}, Head {SEED_HEAD}: the lab's head (a coreference head of "
            "12-layer x 12-head BERT).",
        )
    if model.layers >= SEED_LAYER and model.heads >= SEED_HEAD:
        return HeadChoice(
            SEED_LAYER - 1,
            SEED_HEAD - 1,
            f"Layer {SEED_LAYER}, Head {SEED_HEAD}: the lab names this head for 12-layer x "
            f"12-head BERT; this model ({model.architecture}, {model.layers} x {model.heads}) is "
            "not one, so it is "
            "only a starting point.",
        )
    return HeadChoice(
        model.layers - 1,
        0,
        f"Layer {model.layers}, Head 1: this model has no Layer {SEED_LAYER}, Head {SEED_HEAD} "
        f"(the lab's head, in 12-layer x 12-head BERT), so the last layer's first head is "
        "shown first.",
    )


def pair_start(start: HeadChoice, pairs: tuple[PairDoc, ...], config: ReportConfig) -> HeadChoice:
    """Without --layer/--head, the first pair's answer head is shown first everywhere, so
    the header, the pair view and the submission block name the same head."""
    if config.layer is not None or config.head is not None:
        return start
    first = next((p for p in pairs if p.answer is not None), None)
    if first is None or first.answer is None:
        return start
    layer, head = first.answer.head
    others = {p.answer.head for p in pairs if p.answer is not None} - {first.answer.head}
    note = (
        f"Layer {layer + 1}, Head {head + 1}: the head minimal pair {first.number} hands in "
        "(the rule is printed with the pair)."
    )
    if others:
        note += " Each other pair names its own head."
    return HeadChoice(layer, head, note)
