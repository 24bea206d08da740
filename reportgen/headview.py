"""The adapter around bertviz's head view, where all of its quirks stay.

bertviz ships `head_view.js` as a script that reads a `PYTHON_PARAMS` placeholder,
loads d3 and jQuery through require.js from a CDN and runs once. We wrap the
unmodified file in a function whose parameter is named `PYTHON_PARAMS`, so one
inlined copy can draw any number of head views from data decoded in the page,
and `templates/js/bertviz.js` provides a two-line stand-in for require.js.
"""

from __future__ import annotations

from reportgen.errors import ReportgenError

# bertviz's own filter names for sentence pairs, in the order of its `attention` list.
PAIR_FILTERS = (
    ("All", "all"),
    ("Sentence A -> Sentence A", "aa"),
    ("Sentence B -> Sentence B", "bb"),
    ("Sentence A -> Sentence B", "ab"),
    ("Sentence B -> Sentence A", "ba"),
)
# Above this many tokens the head view starts with the selected layer only (bertviz
# issue 82: every layer's arcs at once make long inputs unresponsive).
LAYER_AT_A_TIME_TOKENS = 64


def head_view_script(source: str) -> str:
    """Wrap bertviz's head_view.js as `window.reportgenHeadView(params)`."""
    if "PYTHON_PARAMS" not in source or "requirejs(" not in source:
        raise ReportgenError(
            "the installed bertviz has an unexpected head_view.js; reportgen needs bertviz >= 1.4"
        )
    return "window.reportgenHeadView = function (PYTHON_PARAMS) {\n" + source + "\n};\n"
