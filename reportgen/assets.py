"""Third-party JavaScript, read from the installed packages when a report is written.

Nothing third-party lives in this repository: plotly.js comes from `plotly`, d3 5.7
from `mpld3`, jQuery from `xstatic-jquery` and the head view from `bertviz`. Each is
gzip-compressed and base64-encoded into the page, where `templates/js/loader.js` inflates it
with the browser's DecompressionStream and runs it.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from reportgen.errors import ReportgenError
from reportgen.headview import head_view_script


@dataclass(frozen=True)
class Library:
    """One inlined script: its name, source text and packed (gzip+base64) form."""

    name: str
    source: str

    @property
    def packed(self) -> str:
        """The gzip+base64 text that goes into the page (compressed once per process)."""
        return _packed_text(self.source)

    @property
    def csp_hash(self) -> str:
        """The CSP source expression that lets this script run once inflated."""
        return csp_hash(self.source)


def pack(data: bytes) -> str:
    """gzip (mtime 0, so the same bytes every time) then base64."""
    return base64.b64encode(gzip.compress(data, compresslevel=9, mtime=0)).decode("ascii")


@cache
def _packed_text(source: str) -> str:
    # plotly.js is 4.6 MB: level-9 gzip costs ~0.4 s, paid once, not on every render.
    return pack(source.encode("utf-8"))


def csp_hash(script: str) -> str:
    """`'sha256-...'` for a Content-Security-Policy script-src."""
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


# Import names whose distribution is named otherwise.
_DISTRIBUTIONS = {"xstatic.pkg.jquery": "XStatic-jQuery"}


def _package_text(package: str, *parts: str) -> str:
    try:
        # find_spec locates the package without running it: importing mpld3 would pull
        # in matplotlib (~0.3 s of every report) just to read one file beside it.
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError(f"no package named '{package}'")
        folder = Path(next(iter(spec.submodule_search_locations)))
        return folder.joinpath(*parts).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise ReportgenError(
            f"cannot read {'/'.join(parts)} from the installed '{package}' package ({exc}); "
            f"reinstall it: pip install --force-reinstall {_DISTRIBUTIONS.get(package, package)}"
        ) from None


@cache
def libraries() -> tuple[Library, ...]:
    """The libraries every report inlines, in load order."""
    return (
        Library("jquery", _package_text("xstatic.pkg.jquery", "data", "jquery.min.js")),
        Library("d3", _package_text("mpld3", "js", "d3.v5.min.js")),
        Library("plotly", _package_text("plotly", "package_data", "plotly.min.js")),
        Library("bertviz-head-view", head_view_script(_package_text("bertviz", "head_view.js"))),
    )
