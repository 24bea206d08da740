"""What every suite is handed: the work folder, the run's options, the shared model."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reportgen.config import ReportConfig
    from reportgen.models import LoadedModel

BATCH_SIZE = 16


@dataclass
class Context:
    work: Path  # reports and inputs of this run; suites share the pages they write here
    quick: bool = False  # one run of each timing, fewer sentences
    browser: bool = True  # the Chromium timings
    long_timeout: float = 180.0  # s to wait for the 512-token report in Chromium

    @property
    def reps(self) -> int:
        return 1 if self.quick else 3

    @cached_property
    def embedded(self) -> tuple[ReportConfig, LoadedModel]:
        """The embedded model, loaded once in this process for the suites that call
        extract() directly."""
        from reportgen.config import ReportConfig
        from reportgen.models import load_model

        config = ReportConfig(batch_size=BATCH_SIZE)
        return config, load_model(config)
