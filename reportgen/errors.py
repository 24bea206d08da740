"""Exceptions that the CLI turns into a one-line message and a non-zero exit."""

from __future__ import annotations


class ReportgenError(Exception):
    """Base class: a failure the user can act on, reported without a traceback."""

    exit_code = 1


class InputError(ReportgenError):
    """The sentences, options or files given to reportgen are unusable."""

    exit_code = 2


class ModelError(ReportgenError):
    """The model cannot be loaded or does not return usable attention."""

    exit_code = 1
