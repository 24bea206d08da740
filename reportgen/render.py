"""Jinja2 rendering, asset inlining and the atomic write of the one HTML file.

One escaping rule: text reaches HTML through Jinja2's autoescape, data reaches
`<script>` blocks only through :func:`script_json`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import jinja2
import numpy as np
from markupsafe import Markup

from reportgen.assets import csp_hash, libraries
from reportgen.errors import InputError, ReportgenError
from reportgen.figures import SINK_FACTOR

if TYPE_CHECKING:  # importlib.resources.abc is 3.11+; only the annotations need it
    from importlib.resources.abc import Traversable

_SCRIPT_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_SCRIPT_TABLE = str.maketrans(_SCRIPT_ESCAPES)


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)  # a page record (reportgen.store)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def script_json(value: Any) -> Markup:
    """JSON that is safe inside `<script>`: no `</script>`, `<!--` or line separators.

    `<`, `>` and `&` become `\\u003c`-style escapes, which JSON.parse reads back
    as the same characters.
    """
    text = json.dumps(
        value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_json_default
    )
    return Markup(text.translate(_SCRIPT_TABLE))


def template_root() -> Traversable:
    """The templates: `reportgen/templates` in an installed package (the wheel maps the
    repository's `templates/` there), else `templates/` beside the package in a checkout."""
    packaged = resources.files("reportgen") / "templates"
    if packaged.joinpath("report.html.j2").is_file():
        return packaged
    checkout = Path(__file__).resolve().parent.parent / "templates"
    if (checkout / "report.html.j2").is_file():
        return checkout
    raise ReportgenError(
        "reportgen's templates are missing from its installation; reinstall reportgen"
    )


def _template_source(name: str) -> str:
    try:
        return template_root().joinpath(*name.split("/")).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise jinja2.TemplateNotFound(name) from None


@cache
def environment() -> jinja2.Environment:
    """The one Jinja2 environment: autoescape on, undefined names are errors."""
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_template_source),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["script_json"] = script_json
    env.globals["sink_factor"] = SINK_FACTOR  # the long page states its sink rule
    return env


@cache
def static_text(name: str) -> str:
    """Our own CSS or JS, read raw (never through the Jinja parser)."""
    text = template_root().joinpath(*name.split("/")).read_text(encoding="utf-8")
    if "</script" in text.lower() or "</style" in text.lower():
        raise ReportgenError(f"templates/{name} must not contain a closing script/style tag")
    return text


# The page's own scripts, in load order (templates/js/). Each adds to `window.reportgen`;
# core.js first (the namespace and the view registry), main.js last (it starts the page).
# A new view is one file here plus one `RG.registerView` call in it.
PAGE_SCRIPTS = (
    "core.js",  # namespace, view registry, notices
    "store.js",  # decoding the page's data (reportgen/store.py)
    "transforms.js",  # maths mirrored from analysis.py
    "heatmap.js",  # Plotly drawing
    "bertviz.js",  # bertviz's head view and its quirks
    "views.js",  # a sentence's views and the maps they show (RG.shownMaps)
    "qk.js",  # "why this weight": a heatmap cell explained from queries and keys
    "grid.js",  # the grid of all heads (model view)
    "nexttoken.js",  # causal models' next-token view
    "pairs.js",  # minimal pairs and the submission block
    "handin.js",  # hand-in: heatmap sizes, printing the submission
    "long.js",  # the long-input view (over the page budget)
    "loader.js",  # inflating the inlined libraries
    "lazy.js",  # lazy drawing
    "print.js",  # printing: draw everything, lay out for A4, restore after
    "main.js",  # the coordinator
)


# The head atlas page's scripts (reportgen.atlas.page), in load order: the shared
# namespace, the gzip decoder, the library loader, lazy drawing and printing, the
# atlas's views, then the same coordinator.
ATLAS_SCRIPTS = (
    "core.js",  # namespace, view registry, notices
    "store.js",  # RG.decodeText: gzip+base64 through DecompressionStream
    "loader.js",  # inflating the inlined plotly.js
    "lazy.js",  # lazy drawing
    "print.js",  # printing, as the report's
    "atlas.js",  # the atlas's views
    "main.js",  # the coordinator
)


@dataclasses.dataclass(frozen=True)
class PageKind:
    """One kind of page: its template, our scripts and the libraries it inlines."""

    template: str
    scripts: tuple[str, ...]
    libraries: tuple[str, ...]  # names from assets.libraries(), in its order


PAGE_KINDS = {
    "report": PageKind(
        "report.html.j2", PAGE_SCRIPTS, ("jquery", "d3", "plotly", "bertviz-head-view")
    ),
    "atlas": PageKind("atlas.html.j2", ATLAS_SCRIPTS, ("plotly",)),
}


def page_scripts(kind: str = "report") -> list[str]:
    """Our own scripts of a page kind, in load order."""
    return [static_text(f"js/{name}") for name in PAGE_KINDS[kind].scripts]


def content_security_policy(scripts: list[str]) -> str:
    """No network at all; only our own inline scripts (by hash) and inline styles."""
    hashes = " ".join(csp_hash(s) for s in scripts)
    return (
        "default-src 'none'; "
        f"script-src {hashes}; "
        "style-src 'unsafe-inline'; "
        "img-src data: blob:; font-src data:; connect-src data: blob:; "
        "base-uri 'none'; form-action 'none'"
    )


def render_page(kind: str, context: dict[str, Any]) -> str:
    """The one render: a page kind's template with its libraries, our CSS and scripts, and
    a strict CSP; main.js picks its entry from <body data-rg-page>."""
    page = PAGE_KINDS[kind]
    scripts = page_scripts(kind)
    libs = [lib for lib in libraries() if lib.name in page.libraries]
    csp = content_security_policy([*scripts, *(lib.source for lib in libs)])
    return (
        environment()
        .get_template(page.template)
        .render(
            **context,
            page_kind=kind,
            csp=csp,
            css=Markup(static_text("report.css")),
            scripts=[Markup(s) for s in scripts],
            libraries=[{"name": lib.name, "packed": lib.packed} for lib in libs],
        )
    )


STDOUT = "-"


def _new_temp(folder: Path, name: str) -> Path:
    """Create an empty file beside the target with the mode that the umask gives new
    files (mkstemp would make it 0600), never following or reusing an existing name."""
    for _ in range(100):
        tmp = folder / f".{name}.{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        except OSError as exc:
            raise cannot_write(f"to '{folder}'", exc) from None
        return tmp
    raise cannot_write(f"to '{folder}'", "no free temporary name")


@contextmanager
def _spooled(sink: Callable[[], BinaryIO], close: bool) -> Iterator[Path]:
    """Yield a private scratch file; once the block succeeds, copy it whole to `sink()`.
    Nothing reaches a stream or device from a run that fails half-way."""
    fd, name = tempfile.mkstemp(prefix="reportgen.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        out = sink()
        try:
            with tmp.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
        finally:
            if close:
                out.close()
    finally:
        tmp.unlink(missing_ok=True)


def cannot_write(where: str, why: OSError | str) -> InputError:
    """The one error for an output that cannot be written (`where`: "'path'" or
    "to 'folder'")."""
    reason = why if isinstance(why, str) else why.strerror or str(why)
    return InputError(f"cannot write {where}: {reason}")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """:func:`_atomic_path`, with any OS error (in the block, the rename, the folder)
    turned into the one "cannot write" line."""
    try:
        with _atomic_path(path) as tmp:
            yield tmp
    except OSError as exc:
        raise cannot_write(f"'{path}'", exc) from None


@contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path; once the block succeeds, what it holds lands at `path`.

    A regular file, or a new name, is replaced by a rename from beside it, so no reader
    sees half a file; a symlink is followed and its target replaced, the link kept. New
    files get the mode the umask allows; a replaced file keeps its mode (and, where
    permitted, its owner). "-" is stdout; a character device or FIFO (/dev/null,
    /dev/stdout, a pipe) is written to directly, after the block: a rename would turn it
    into a regular file. Block devices and sockets are refused.
    """
    if str(path) == STDOUT:
        with _spooled(lambda: sys.stdout.buffer, close=False) as tmp:
            yield tmp
        return
    try:
        st: os.stat_result | None = os.stat(path)  # follows symlinks
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        if stat.S_ISDIR(st.st_mode):
            raise InputError(f"output '{path}' is a folder")
        if not (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
            raise InputError(
                f"output '{path}' is a block device or socket, not a file; "
                "reportgen writes only files, character devices and FIFOs"
            )
        with _spooled(lambda: open(path, "wb"), close=True) as tmp:  # noqa: SIM115
            yield tmp
        return
    target = Path(os.path.realpath(path))  # through symlinks, so the link itself stays
    folder = target.parent
    if not folder.is_dir():
        raise InputError(f"output folder '{folder}' does not exist")
    tmp = _new_temp(folder, target.name)
    try:
        if st is not None:
            if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                with suppress(OSError):  # only root may give a file away
                    os.chown(tmp, st.st_uid, st.st_gid)
            os.chmod(tmp, stat.S_IMODE(st.st_mode))
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, text: str | bytes) -> int:
    """Write `text` to `path` atomically; return the number of bytes written."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return len(data)
