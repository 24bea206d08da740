"""Decide what the report shows: turn an :class:`~reportgen.config.Extraction` into a
:class:`~reportgen.report.document.ReportDocument` that the templates read.

Nothing here renders HTML. One module per job, each holding the frozen records it
builds:

- :mod:`~reportgen.report.heads`: which head the page shows first (``--layer/--head``,
  the lab's head, or the first pair's answer head).
- :mod:`~reportgen.report.headstats`: one sentence's head statistics (entropy, verdicts)
  and focus scores (where the focus word looks).
- :mod:`~reportgen.report.sentence`: one sentence's section and the record its views
  read.
- :mod:`~reportgen.report.pairs`: a minimal pair compared head by head: where the
  question is asked, the focus difference, the answer head, the counts against chance.
- :mod:`~reportgen.report.answer`: a pair's answer and the lab's questions, in words.
- :mod:`~reportgen.report.document`: the whole document and the page's settings.
- :mod:`~reportgen.report.long`: the document of inputs over the page budget.
- :mod:`~reportgen.report.text`: how the page words quotes, heads and long texts.
"""
