"""What reportgen echoes and where it writes: terminal-safe text, short previews of long
values, and the output checks that run before the model loads."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path

from reportgen.errors import InputError

# Whole escape sequences first (CSI "ESC [ ... final", OSC "ESC ] ... BEL or ESC \", and
# two-byte ones), so that no half of a sequence is left to print as junk; then any control
# character that is left: C0, DEL, C1 (whose 0x9b is a one-byte CSI on some terminals), and
# the bidirectional overrides that make a line read differently from what it holds.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC, DCS, SOS, PM, APC strings
    r"|\x1b[ -/]*[0-~]?"  # the rest: ESC and what it introduces
)
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_BLANKS = re.compile("[\t\n\r]+")
# The one-line error stays one readable line whatever a message quotes.
MAX_ECHO_CHARS = 2_000
PREVIEW_CHARS = 40


def clean_terminal(text: str) -> str:
    """`text` as one line that a terminal prints literally: escape sequences and control
    characters removed, tabs and line breaks turned into single spaces, at most
    MAX_ECHO_CHARS characters."""
    text = _BLANKS.sub(" ", _CONTROLS.sub("", _ESCAPES.sub("", text)))
    if len(text) > MAX_ECHO_CHARS:
        text = text[: MAX_ECHO_CHARS - 3] + "..."
    return text


def preview(value: str, limit: int = PREVIEW_CHARS) -> str:
    """The start of `value` for an error message: at most `limit` characters, then "..."."""
    return value if len(value) <= limit else value[:limit] + "..."


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of what `path` names after symlinks, or None when it does not exist."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _stdout_identity() -> tuple[int, int] | None:
    try:
        st = os.fstat(1)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _is_null_device(path: Path) -> bool:
    """/dev/null and its aliases: writing there twice harms nothing."""
    try:
        st, null = os.stat(path), os.stat(os.devnull)
    except OSError:
        return False
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == null.st_rdev


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_outputs(
    outputs: Sequence[tuple[str, Path | None]],
    inputs: Sequence[str | None] = (),
    model: str | Path | None = None,
) -> None:
    """Refuse, before any work, an output that would destroy something reportgen reads or
    writes: an input file, the model folder or a file inside it (or the model file), or
    another output. `outputs` pairs each path with the option that named it; "-" is stdout.
    Symlinks and hard links count as the file they lead to."""
    seen: list[tuple[str, Path, tuple[int, int] | None]] = []
    model_path = Path(model).expanduser() if model is not None else None
    model_real = Path(os.path.realpath(model_path)) if model_path and model_path.exists() else None
    for option, path in outputs:
        if path is None:
            continue
        to_stdout = str(path) == "-"
        real = Path("-") if to_stdout else Path(os.path.realpath(path))
        ident = _stdout_identity() if to_stdout else _identity(path)
        harmless = not to_stdout and _is_null_device(path)
        for other_option, other_real, other_ident in seen:
            same = real == other_real or (ident is not None and ident == other_ident)
            if same and not harmless:
                raise InputError(
                    f"{option} '{path}' is the same file as {other_option}; "
                    "give each output its own path"
                )
        seen.append((option, real, ident))
        if to_stdout or harmless:
            continue
        for source in inputs:
            if source is None or source == "-":
                continue
            source_ident = _identity(Path(source))
            if real == Path(os.path.realpath(source)) or (
                ident is not None and ident == source_ident
            ):
                raise InputError(
                    f"{option} '{path}' is the input file '{source}'; writing there would "
                    "replace it, so choose another output path"
                )
        if model_real is not None and (
            _inside(real, model_real) or (ident is not None and ident == _identity(model_real))
        ):
            raise InputError(
                f"{option} '{path}' is inside the model '{model}'; writing there would "
                "damage the model, so choose another output path"
            )


def sigterm_as_interrupt() -> None:
    """Make SIGTERM raise KeyboardInterrupt in the main thread, as Ctrl-C does: the
    command then says one line, removes its temporary file, writes nothing, and exits
    through the interpreter (so Ray's exit hook shuts down a Ray the run started). Ray's
    driver installs its own C handler (a stack dump) at ray.init: call this again after."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def public_name(name: str) -> str:
    """A model or file as a shared report may name it: a path becomes its last part.

    Hub ids ("org/model") stay whole; anything that names a local file or folder
    (absolute, relative with ./ or ~, or existing on disk) keeps only its name, so a
    report never publishes the maker's folder layout. An input's line ("x.txt:3") keeps
    its line number.
    """
    file, colon, line = name.rpartition(":")
    if colon and line.isdigit() and file:
        return f"{public_name(file)}:{line}"
    path = Path(name)
    local = name.startswith(("/", "~", ".", "\\")) or (len(name) > 1 and name[1] == ":")
    if not local:
        try:
            local = path.exists()
        except OSError:
            local = False
    return path.name or name if local else name
