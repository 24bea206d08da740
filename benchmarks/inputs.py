"""The texts the benchmark feeds reportgen: fixed, or generated from a seed."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

WINOGRAD = (
    "The animal didn't cross the street because it was too tired.",
    "The animal didn't cross the street because it was too wide.",
)
PROMPT_CAUSAL = "The animal didn't cross the street because it was too"

PARAGRAPH = (
    "The city councilmen refused the demonstrators a permit because they feared violence, "
    "and the trophy did not fit into the brown suitcase because it was too large, so the "
    "animal that had not crossed the street because it was too tired waited by the road "
    "while Joan made sure to thank Susan for all the help she had given during the long "
    "and difficult week that followed the storm."
)

# Plain prose written for this benchmark (no third-party text); repeated to length.
PROSE = (
    "The morning train to the coast was late again, and the people on the platform had "
    "long since stopped looking at the board. A woman with a bicycle read a folded "
    "newspaper while her dog slept against the wheel. Two students argued quietly about "
    "whether the bridge across the river had been built before or after the old mill "
    "closed, and neither of them was willing to look it up. When the train finally "
    "arrived, it was shorter than usual, and everyone pressed toward the same three doors.\n\n"
    "Inside, the carriage smelled of coffee and wet coats. The conductor walked slowly "
    "down the aisle, checking tickets and answering questions that had nothing to do with "
    "tickets. He told one passenger that the fog would lift by noon and another that the "
    "bakery near the harbour had closed for the winter. Most of what he said turned out "
    "to be true, which surprised the passengers who had never taken this line before.\n\n"
    "Outside the window the fields gave way to marshland, then to a long row of houses "
    "painted in colours that had faded to the same soft grey. A man in the seat by the "
    "door counted the stations under his breath. He had made this journey every week for "
    "eleven years, he said to nobody in particular, and he still could not remember "
    "whether the fourth stop came before the tunnel or after it.\n\n"
    "By the time the sea appeared, the fog had indeed begun to thin. The light changed "
    "from white to pale yellow, and the children at the back of the carriage stopped "
    "their game to press their faces against the glass. The woman with the bicycle "
    "folded her newspaper, woke the dog, and stood up before the train had stopped, as "
    "if she were afraid that the doors would not open for her.\n\n"
    "The town itself was quieter than anyone expected. The shops along the front were "
    "still shuttered, the gulls had the pier to themselves, and the only sound was the "
    "steady scrape of a shovel where someone was clearing sand from the steps of the "
    "library. It was the kind of place that seemed to be waiting for a season that had "
    "not yet decided whether to come."
)

_WHEN = ("Late last night", "Early this morning", "Last summer", "On Sunday", "Yesterday")
_SUBJECT = (
    "the animal",
    "the old man",
    "a small child",
    "the teacher",
    "my neighbour",
    "the doctor",
    "the tired cat",
    "our new manager",
)
_VERB = ("didn't cross", "quickly painted", "carefully watched", "never visited", "opened")
_OBJECT = (
    "the busy street",
    "the old wooden fence",
    "the big yellow house",
    "the muddy river bank",
    "the shiny red car",
)
_WHY = (
    "because it was too tired",
    "after the long storm",
    "before the guests arrived",
    "while the sun was setting",
    "since nobody else would do it",
)
# Common words, one word piece each, so long_text's length check holds.
_LONG_WORDS = (
    *("the", "animal", "did", "not", "cross", "street", "because", "it", "was", "too"),
    *("tired", "wide", "a", "dog", "ran", "over", "big", "red", "house", "and", "then"),
    *("sat", "down", "under", "old", "tree", "while", "children"),
)


def generated_sentences(count: int, seed: int) -> list[str]:
    """Deterministic English sentences of about 20 word pieces (with [CLS] and [SEP])."""
    rng = random.Random(seed)
    return [
        f"{rng.choice(_WHEN)}, {rng.choice(_SUBJECT)} {rng.choice(_VERB)} "
        f"{rng.choice(_OBJECT)} {rng.choice(_WHY)}."
        for _ in range(count)
    ]


def long_text(tokenizer: Any, pieces: int) -> str:
    """A text of exactly `pieces` word pieces (plus [CLS] and [SEP])."""
    rng = random.Random(0)
    text = " ".join(rng.choice(_LONG_WORDS) for _ in range(pieces))
    n = len(tokenizer(text)["input_ids"]) - 2
    if n != pieces:
        raise RuntimeError(f"long input has {n} word pieces, expected {pieces}")
    return text


def prose(tokenizer: Any, tokens: int) -> str:
    """PROSE, repeated and cut at a word, to about `tokens` tokens."""
    text = PROSE
    while len(tokenizer(text)["input_ids"]) < tokens:
        text = text + "\n\n" + PROSE
    words = text.split(" ")
    low, high = 1, len(words)
    while low < high:
        mid = (low + high) // 2
        if len(tokenizer(" ".join(words[:mid]))["input_ids"]) >= tokens:
            high = mid
        else:
            low = mid + 1
    return " ".join(words[:low])


def write_lines(path: Path, lines: Sequence[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
