"""The `reportgen` command: parse options, call the pipeline, report errors in one line."""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reportgen import __version__
from reportgen.errors import ReportgenError

if TYPE_CHECKING:
    from reportgen.atlas import AtlasOptions
    from reportgen.config import ReportConfig
    from reportgen.pipeline import Report

EPILOG = """\b
Examples:
  # The seed lab's minimal pair, with the focus word and its candidates:
  reportgen "The animal didn't cross the street because it was too tired." \\
            "The animal didn't cross the street because it was too wide." \\
            --compare --focus it --candidates animal,street -o winograd.html

\b
  # Every line of a file through a cached hub model, Layer 5, Head 4 first:
  reportgen -i sample_inputs/winograd.txt -m bert-base-uncased --layer 5 --head 4

\b
  # What every head does over a corpus, with coreference accuracy from "answer" keys:
  reportgen --atlas -i sample_inputs/winograd.jsonl -o atlas.html --export-json atlas.json
"""


def _say(message: str) -> None:
    # Messages quote model configs, file names and sentences: never let them drive the terminal.
    from reportgen.safety import clean_terminal

    click.echo(clean_terminal(message), err=True)


def _human_size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            break
    return f"{value:.1f} {unit}"


@click.command(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("sentences", nargs=-1)
@click.option(
    "-i",
    "--input",
    "input_path",
    metavar="PATH",
    help="A .txt file (one sentence a line; blank and # lines skipped), a .jsonl "
    "file, or - for stdin.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="Where to write the report (- for stdout).",
)
@click.option(
    "-m",
    "--model",
    metavar="ID_OR_PATH",
    default=None,
    help="A local model folder, a .gguf file, or a Hugging Face id that is cached or "
    "reachable. Default: the embedded all-MiniLM-L6-v2.",
)
@click.option(
    "--layer",
    type=click.IntRange(min=1),
    default=None,
    help="Layer shown first (1-based). Default: 10, else the last layer.",
)
@click.option(
    "--head",
    type=click.IntRange(min=1),
    default=None,
    help="Head shown first (1-based). Default: 5 with layer 10, else 1.",
)
@click.option("--title", default=None, help="Title printed at the top of the report.")
@click.option(
    "--focus",
    metavar="WORD",
    default=None,
    help="Word whose attention the focus view follows (e.g. it).",
)
@click.option(
    "--candidates",
    metavar="WORD[,WORD...]",
    default=None,
    help="Words the focus word may refer to (e.g. animal,street).",
)
@click.option(
    "--focus-at",
    type=click.Choice(["auto", "word", "first-diff", "last"]),
    default="auto",
    show_default=True,
    help="Where a minimal pair's question is asked: at the focus word, at the first word "
    "where A and B differ, or at the last token. auto: the focus word, except in a decoder "
    "whose focus word comes before the difference (it cannot see it): first-diff.",
)
@click.option(
    "--measures",
    "measures",
    default=None,
    metavar="LIST",
    help="Context-mixing measures to show beside the weights, each in the page's Measure "
    "choice: 'all' or a comma list of norm, norm_layer, alti (alti brings its rollout). "
    "Computed in the same forward pass; withheld with one line where a model's blocks do "
    "not decompose.",
)
@click.option(
    "--qk/--no-qk",
    "qk",
    default=None,
    help="The 'why this weight' panel's queries and keys on the page whatever its size "
    "(default: only for inputs of at most 64 tokens and a small page), and in "
    "--export-json at float32 (4 x layers x (heads + kv_heads) x n x head size bytes an "
    "item). --no-qk: never.",
)
@click.option(
    "--compare",
    is_flag=True,
    help="Treat consecutive sentences as minimal pairs (1 with 2, 3 with 4, ...).",
)
@click.option(
    "--pair",
    "text_pair",
    metavar="TEXT",
    default=None,
    help="Second segment for BERT-style sentence pairs ([CLS] A [SEP] B [SEP]).",
)
@click.option(
    "--target",
    metavar="TEXT",
    default=None,
    help="Decoder input for encoder-decoder models (T5, BART, Marian).",
)
@click.option(
    "--export-json",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the raw attention (full precision) as JSON to this path.",
)
@click.option(
    "--submission",
    "submission_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    metavar="DIR",
    help="Also write the hand-in heatmaps (PNG and SVG) into DIR: for each minimal pair "
    "with a focus word, A and B in the pair's answer head (or --layer/--head).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Sentences per forward pass.",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda", "mps"]),
    default="auto",
    show_default=True,
    help="Where the model runs.",
)
@click.option(
    "--dtype",
    type=click.Choice(["float32", "float16", "bfloat16"]),
    default="float32",
    show_default=True,
    help="Model weights' precision.",
)
@click.option(
    "--no-truncate",
    is_flag=True,
    help="Refuse inputs longer than the model's limit instead of truncating them.",
)
@click.option(
    "--max-tokens",
    type=click.IntRange(min=2),
    default=None,
    metavar="N",
    help="Cut every input to its first N tokens (with a warning), e.g. to fit memory.",
)
@click.option(
    "--max-sentences",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Refuse more than N sentences (default 1,000: bigger pages open slowly). "
    "Not for --atlas, which streams any number.",
)
@click.option(
    "--atlas",
    is_flag=True,
    help="Write the head atlas of a whole corpus (-i FILE, streamed): per-head statistics, "
    "labels, coreference accuracy against gold answers.",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Atlas only: run here, or as a Ray Data pipeline (pip install 'reportgen[ray]').",
)
@click.option(
    "--ray-address",
    metavar="auto|ray://HOST:PORT",
    default=None,
    help="Atlas with --engine ray: join this cluster. Default: start a local Ray.",
)
@click.option(
    "--num-gpus",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Atlas with --engine ray: GPUs per worker (one model per worker).",
)
@click.option(
    "--examples",
    type=click.IntRange(min=0, max=20),
    default=3,
    show_default=True,
    help="Atlas only: example sentences shown per head.",
)
@click.option(
    "--from-export",
    "from_export",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE.json",
    help="Re-render the page of an --export-json file, with no model: the same page as "
    "the run that wrote it (--title, --layer, --head may change it).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
@click.version_option(__version__, "--version", prog_name="reportgen")
def main(
    sentences: tuple[str, ...],
    input_path: str | None,
    output: Path,
    model: str | None,
    layer: int | None,
    head: int | None,
    title: str | None,
    focus: str | None,
    candidates: str | None,
    focus_at: str,
    measures: str | None,
    qk: bool | None,
    compare: bool,
    text_pair: str | None,
    target: str | None,
    export_json: Path | None,
    submission_dir: Path | None,
    batch_size: int,
    device: str,
    dtype: str,
    no_truncate: bool,
    max_tokens: int | None,
    max_sentences: int | None,
    atlas: bool,
    engine: str,
    ray_address: str | None,
    num_gpus: float,
    examples: int,
    from_export: Path | None,
    quiet: bool,
) -> None:
    """Write one self-contained HTML report of a transformer's attention over SENTENCES.

    The report opens offline in any browser: per-head heatmaps, layer averages
    with entropy, and bertviz's head view for every sentence.
    """
    log = (lambda _msg: None) if quiet else _say
    from reportgen.config import ReportConfig
    from reportgen.safety import sigterm_as_interrupt

    sigterm_as_interrupt()  # as Ctrl-C: one line, no file
    if from_export is not None:
        refused = (["SENTENCE"] if sentences else []) + _given(MODEL_ONLY)
        if refused:
            raise click.UsageError(
                f"{', '.join(refused)} {'does' if len(refused) == 1 else 'do'} not go with "
                "--from-export: it re-renders the export's sentences with no model (it takes "
                "-o, --title, --layer, --head, --export-json, --submission and -q)"
            )
    refused = _given(REPORT_ONLY if atlas else ATLAS_ONLY)
    if refused and atlas:
        raise click.UsageError(
            f"{', '.join(refused)} {'does' if len(refused) == 1 else 'do'} not go with "
            "--atlas: it takes focus, candidates and answers from the JSONL file and "
            "streams any number of sentences"
        )
    if refused:
        raise click.UsageError(
            f"{', '.join(refused)} only go{'es' if len(refused) == 1 else ''} with --atlas"
        )
    config = ReportConfig(
        model=model,
        title=title,
        layer=layer,
        head=head,
        batch_size=batch_size,
        device=device,
        dtype=dtype,
        truncate=not no_truncate,
        max_tokens=max_tokens,
        focus_at=focus_at,
        measures=_measures(measures),
        qk=qk,
    )
    if atlas:
        from reportgen.atlas import AtlasOptions

        if sentences or input_path is None:
            raise click.UsageError("--atlas reads a corpus file: give -i FILE and no SENTENCE")
        options = AtlasOptions(
            engine="ray" if engine == "ray" else "local",
            ray_address=ray_address,
            num_gpus=num_gpus,
            examples=examples,
        )
        if options.engine != "ray" and (options.ray_address is not None or options.num_gpus):
            raise click.UsageError("--ray-address and --num-gpus need --engine ray")

        def run() -> int:
            assert input_path is not None
            return _write_atlas(input_path, output, export_json, config, options, log, quiet)

    elif from_export is not None:
        source = from_export

        def run() -> int:
            return _write_from_export(source, output, export_json, submission_dir, config, log)

    else:

        def run() -> int:
            return _write_report(
                sentences,
                input_path,
                output,
                export_json,
                submission_dir,
                config,
                _LabOptions(focus, candidates, compare, text_pair, target, max_sentences),
                log,
                quiet,
            )

    what = "atlas" if atlas else "report"
    try:
        _check_outputs(
            output,
            export_json,
            str(from_export) if from_export is not None else input_path,
            config,
        )
        size = run()
    except KeyboardInterrupt:
        _say(f"reportgen: interrupted; no {what} written")
        sys.exit(130)
    except ReportgenError as exc:
        _say(f"Error: {exc}")
        sys.exit(exc.exit_code)
    where = f"the {what} to stdout" if str(output) == "-" else str(output)
    log(f"wrote {where} ({_human_size(size)})")


@dataclass(frozen=True)
class _LabOptions:
    """The report's lab options, as given (the atlas reads them from its corpus)."""

    focus: str | None
    candidates: str | None
    compare: bool
    text_pair: str | None
    target: str | None
    max_sentences: int | None


def _check_outputs(
    output: Path, export_json: Path | None, input_path: str | None, config: ReportConfig
) -> None:
    """What both modes check before any model loads: the output folders exist, the title
    and model name are sane, and no output lies over an input, the model or another."""
    from reportgen.inputs import MAX_TITLE_CHARS, check_text
    from reportgen.safety import check_outputs

    for path, hint in ((output, "'-o' / '--output'"), (export_json, "'--export-json'")):
        if path is not None and path.parent != Path("") and not path.parent.is_dir():
            raise click.BadParameter(f"folder '{path.parent}' does not exist", param_hint=hint)
    check_text(config.title, "--title", MAX_TITLE_CHARS, "title")
    check_text(config.model, "--model", 4096, "model")
    check_outputs(
        [("-o/--output", output), ("--export-json", export_json)],
        inputs=[input_path],
        model=config.model if config.model is not None else _embedded_model(),
    )


def _write_report(
    sentences: tuple[str, ...],
    input_path: str | None,
    output: Path,
    export_json: Path | None,
    submission_dir: Path | None,
    config: ReportConfig,
    lab: _LabOptions,
    log: Callable[[str], None],
    quiet: bool,
) -> int:
    """The per-sentence report (and its export and hand-in files); the report's size."""
    from reportgen.inputs import MAX_SENTENCES, collect_inputs, split_candidates
    from reportgen.pipeline import build_report

    if submission_dir is not None:
        from reportgen.submission import check_folder

        check_folder(submission_dir)
    batch = collect_inputs(
        sentences,
        input_path,
        focus=lab.focus,
        candidates=split_candidates(lab.candidates),
        compare=lab.compare,
        text_pair=lab.text_pair,
        target=lab.target,
        max_sentences=lab.max_sentences or MAX_SENTENCES,
    )
    progress = None
    if not quiet and len(batch.items) > 8 and sys.stderr.isatty():
        progress = _progress_printer()
    with _muted_stderr(quiet):
        report = build_report(
            batch,
            config=config,
            log=log,
            progress=progress,
            # The plan refuses a long input before the weights load.
            needs_full_maps="--submission" if submission_dir is not None else None,
        )
    return _write_outputs(report, output, export_json, submission_dir, log)


def _write_outputs(
    report: Report,
    output: Path,
    export_json: Path | None,
    submission_dir: Path | None,
    log: Callable[[str], None],
) -> int:
    """A finished report's files: the export and the submission where asked, then the page
    (written last, so a page on disk means the run finished); the page's size."""
    from reportgen.config import Extraction

    if export_json is not None:
        size = report.export_json(export_json)
        log(f"wrote {export_json} ({_human_size(size)})")
    if submission_dir is not None:
        from reportgen.submission import write_submission

        # Long inputs are refused before this (pipeline.plan_run, _write_from_export).
        assert isinstance(report.extraction, Extraction)
        files = write_submission(report.document, report.extraction, submission_dir)
        log(f"wrote {len(files)} submission files into {submission_dir}")
    return report.save(output)


def _write_from_export(
    source: Path,
    output: Path,
    export_json: Path | None,
    submission_dir: Path | None,
    config: ReportConfig,
    log: Callable[[str], None],
) -> int:
    """`--from-export`: the page of an export file again, with no model; its size."""
    from reportgen.config import LongExtraction
    from reportgen.errors import InputError
    from reportgen.rerender import from_export

    if submission_dir is not None:
        from reportgen.submission import check_folder

        check_folder(submission_dir)
    report = from_export(source, title=config.title, layer=config.layer, head=config.head)
    if submission_dir is not None and isinstance(report.extraction, LongExtraction):
        # As a model run refuses it over the page budget (pipeline.plan_run), before writing.
        raise InputError(
            "--submission draws full heatmaps, which a long-input export does not keep; "
            "run the model again with --max-tokens N to bring the input under the page budget"
        )
    return _write_outputs(report, output, export_json, submission_dir, log)


def _write_atlas(
    input_path: str,
    output: Path,
    export_json: Path | None,
    config: ReportConfig,
    options: AtlasOptions,
    log: Callable[[str], None],
    quiet: bool,
) -> int:
    """`--atlas`: one page for a whole corpus file (see reportgen.atlas); its size."""
    from reportgen.atlas import build_atlas, progress_printer

    with _muted_stderr(quiet):
        atlas = build_atlas(
            input_path,
            config,
            options,
            log=log,
            progress=None if quiet else progress_printer(),
        )
    if export_json is not None:
        size = atlas.export_json(export_json)
        log(f"wrote {export_json} ({_human_size(size)})")
    return atlas.save(output)


# The options of one mode that the other refuses: flag -> click parameter name.
REPORT_ONLY = {
    "--compare": "compare",
    "--focus": "focus",
    "--candidates": "candidates",
    "--focus-at": "focus_at",
    "--qk": "qk",
    "--pair": "text_pair",
    "--target": "target",
    "--layer": "layer",
    "--head": "head",
    "--submission": "submission_dir",
    "--max-sentences": "max_sentences",
}
ATLAS_ONLY = {
    "--engine": "engine",
    "--ray-address": "ray_address",
    "--num-gpus": "num_gpus",
    "--examples": "examples",
}


# What --from-export refuses: it runs no model and reads its sentences from the export.
MODEL_ONLY = {
    "-m/--model": "model",
    "-i/--input": "input_path",
    "--focus": "focus",
    "--candidates": "candidates",
    "--focus-at": "focus_at",
    "--measures": "measures",
    "--qk": "qk",
    "--compare": "compare",
    "--pair": "text_pair",
    "--target": "target",
    "--batch-size": "batch_size",
    "--device": "device",
    "--dtype": "dtype",
    "--no-truncate": "no_truncate",
    "--max-tokens": "max_tokens",
    "--max-sentences": "max_sentences",
    "--atlas": "atlas",
    **ATLAS_ONLY,
}


def _measures(given: str | None) -> tuple[str, ...]:
    """--measures: 'all' or a comma list of mixing.MEASURES, in their order."""
    from reportgen.mixing import MEASURES

    if given is None:
        return ()
    names = {n.strip() for n in given.split(",") if n.strip()}
    if names == {"all"}:
        return MEASURES
    unknown = sorted(names - set(MEASURES))
    if unknown or not names:
        raise click.BadParameter(
            f"{', '.join(unknown) or 'nothing'} is not among all, {', '.join(MEASURES)}",
            param_hint="--measures",
        )
    return tuple(m for m in MEASURES if m in names)


def _given(options: dict[str, str]) -> list[str]:
    """The flags among `options` given on the command line (a default given is given)."""
    source = click.get_current_context().get_parameter_source
    return [
        f for f, name in options.items() if source(name) == click.core.ParameterSource.COMMANDLINE
    ]


def _embedded_model() -> str | None:
    """The embedded model's folder, guarded like any model folder; None if missing."""
    from reportgen.models import embedded_model_path

    try:
        return str(embedded_model_path())
    except ReportgenError:
        return None


@contextlib.contextmanager
def _muted_stderr(quiet: bool) -> Iterator[None]:
    """With -q, third-party progress bars (transformers' GGUF conversion uses a bare tqdm
    on stderr) stay silent; errors still reach the user as exceptions, printed after."""
    if not quiet:
        yield
        return
    with contextlib.redirect_stderr(io.StringIO()):
        yield


def _progress_printer() -> Callable[[int, int], None]:
    def progress(done: int, total: int) -> None:
        width = 30
        filled = width * done // total
        end = "\n" if done == total else ""
        click.echo(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} sentences{end}",
            err=True,
            nl=False,
        )

    return progress
