"""Command-line interface: thin click commands over the library.

Heavy packages (torch, sentence-transformers, scikit-learn, spaCy) are imported inside the commands
that need them, so ``opm-nlp --help`` starts fast.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import sys
import warnings
from pathlib import Path

import click

from opm_nlp.exceptions import CodebookError, OpmNlpError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CODEBOOK = REPO_ROOT / "codebook" / "opm_behavior_change.yaml"
DEFAULT_MODEL = REPO_ROOT / "models" / "opm_default"
EXAMPLE_NEW_WAVE = REPO_ROOT / "examples" / "opm_wave2022_illustrative.csv"


class _Group(click.Group):
    """Turns user errors into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                return super().invoke(ctx)
        except OpmNlpError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"Warning: {message}", err=True)


def _group(**kwargs):
    return click.group(cls=_Group, **kwargs)


def data_options(func=None, *, required: bool = True):
    """--text-col, --id-col and --encoding, shared by every command that reads answers."""
    def decorate(func):
        func = click.option("--encoding", default=None,
                            help="Text encoding of CSV input (default: detect UTF-8, UTF-8 with BOM, cp1252).")(func)
        func = click.option("--id-col", required=required, help="Column with a unique id per response.")(func)
        return click.option("--text-col", required=required, help="Column with the answer text.")(func)

    return decorate if func is None else decorate(func)


def coded_options(func):
    """--format and --code-col: how codes are stored in coded-data files."""
    func = click.option("--code-col", default=None,
                        help="Column of code ids for long/delimited files (default: 'codes' or 'code').")(func)
    func = click.option("--format", "coded_format", default="auto", show_default=True,
                        type=click.Choice(["auto", "wide", "long", "delimited"]),
                        help="How codes are stored: one 0/1 column per code id (wide), one row per "
                             "response and code (long), or one column of ids separated by ; , or | (delimited).")(func)
    return func


def backend_options(func):
    """--backend and --no-cache: how the embedding network runs, and whether to reuse embeddings."""
    func = click.option("--no-cache", is_flag=True,
                        help="Do not read or write the on-disk embedding cache ($OPM_NLP_CACHE_DIR or "
                             "~/.cache/opm-nlp).")(func)
    func = click.option("--backend", default=None, type=click.Choice(["torch", "onnx", "onnx-int8"]),
                        help="Embedding backend (default: the model's when tagging, onnx-int8 when training). onnx-int8 is "
                             "about twice as fast on CPU.")(func)
    return func


def quiet_option(func):
    @click.option("--quiet", "-q", is_flag=True, help="No progress bars or info messages.")
    @click.option("--verbose", "-v", is_flag=True, help="Log what is being done.")
    @functools.wraps(func)
    def wrapper(*args, quiet: bool, verbose: bool, **kwargs):
        logging.basicConfig(level=logging.INFO if verbose and not quiet else logging.WARNING,
                            format="%(levelname)s %(name)s: %(message)s")
        if not verbose:
            # Dask logs every worker at INFO, and at shutdown a worker may log a heartbeat to the closed
            # scheduler as an ERROR with a traceback; failed tasks reach the command as exceptions anyway.
            # Its config sets its loggers' levels on import, and the worker processes inherit the variable.
            logging.getLogger("distributed").setLevel(logging.CRITICAL)
            os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "critical")
        return func(*args, quiet=quiet, **kwargs)

    return wrapper


@_group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="opm-nlp")
def cli() -> None:
    """Code free-text survey answers against a codebook, offline.

    \b
    Typical use:
      opm-nlp codebook validate codebook/opm_behavior_change.yaml
      opm-nlp train --codebook codebook/opm_behavior_change.yaml --data coded.csv \\
          --text-col answer --id-col response_id --out models/mine
      opm-nlp tag models/mine wave3.xlsx --text-col answer --id-col response_id --out tagged.csv
    """


# -- codebook -------------------------------------------------------------------------------------
@cli.group(cls=_Group)
def codebook() -> None:
    """Check and inspect codebooks (YAML files of codes); exchange them with QDA software and spreadsheets."""


@codebook.command("validate")
@click.argument("codebook_path", metavar="CODEBOOK", type=click.Path(dir_okay=False, path_type=Path))
def codebook_validate(codebook_path: Path) -> None:
    """Check a codebook file and list its codes.

    \b
    Example:
      opm-nlp codebook validate codebook/opm_behavior_change.yaml
    """
    from opm_nlp.codebook.codes import load_codebook

    cb = load_codebook(codebook_path)
    click.echo(f"{codebook_path}: valid codebook '{cb.name}' version {cb.version or '-'}, "
               f"{len(cb)} codes, fingerprint {cb.fingerprint}")
    for code in cb.codes:
        depth = len(cb.ancestors(code.id))
        extras = f" [{len(code.keywords)} keywords, {len(code.examples)} examples]"
        click.echo(f"  {'  ' * depth}{code.id}: {code.label}{extras}")


@codebook.command("export")
@click.argument("codebook_path", metavar="CODEBOOK", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", default=None, type=click.Choice(["qdc", "xlsx", "csv"]),
              help="qdc: REFI-QDA Codebook, read by NVivo, ATLAS.ti, MAXQDA and QualCoder; xlsx or csv: a "
                   "table, one row per code. Default: from the extension of --out, else qdc.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (.qdc, .xlsx or .csv).")
def codebook_export(codebook_path: Path, fmt: str | None, out: Path) -> None:
    """Write a codebook for QDA software (REFI-QDA Codebook, .qdc) or as a spreadsheet.

    In a .qdc, codes keep their hierarchy, label (as name), colour, and a GUID derived from the code
    id, so a code is the same code in every export. The description holds the definition,
    include/exclude notes, examples, keywords and the code id, which 'opm-nlp codebook import' reads
    back. A spreadsheet has one row per code: id, label, parent, definition, include, exclude,
    examples and keywords (one per line of the cell), color; edit it and import it back.

    \b
    Examples:
      opm-nlp codebook export codebook/opm_behavior_change.yaml --format qdc --out opm.qdc
      opm-nlp codebook export codebook/opm_behavior_change.yaml --out opm_codebook.xlsx
    """
    from opm_nlp.codebook.codes import load_codebook

    implied = {".qdc": "qdc", ".xlsx": "xlsx", ".csv": "csv", ".tsv": "csv"}.get(out.suffix.lower())
    if fmt and implied and fmt != implied:
        raise CodebookError(f"--out {out} is a .{out.suffix.lower().lstrip('.')} file, but --format is {fmt}. "
                            f"Change the extension or --format.")
    fmt = fmt or implied or "qdc"
    if fmt != "qdc" and implied is None:
        raise CodebookError(f"--out {out}: a {fmt} codebook is written to a .{fmt} file, found "
                            f"'{out.suffix or '(no extension)'}'. Rename the file.")
    cb = load_codebook(codebook_path)
    levels = 1 + max(len(cb.ancestors(code.id)) for code in cb.codes)
    if fmt == "qdc":
        from opm_nlp.codebook.qdc import write_qdc

        write_qdc(cb, out)
        what = "REFI-QDA Codebook 1.0"
    else:
        from opm_nlp.codebook.table import write_codebook_table

        write_codebook_table(cb, out)
        what = "one row per code"
    click.echo(f"Wrote {len(cb)} codes ({levels} level{'s' if levels > 1 else ''}) of '{cb.name}' "
               f"to {out} ({what}).")


@codebook.command("import")
@click.argument("source", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Codebook YAML file to write.")
@click.option("--name", default=None, help="Name of the codebook (default: the file name).")
@click.option("--sheet", default=None, help="Worksheet of an .xlsx file that holds the codes (default: the first).")
def codebook_import(source: Path, out: Path, name: str | None, sheet: str | None) -> None:
    """Read a REFI-QDA Codebook (.qdc) or a spreadsheet of codes into a codebook YAML file.

    A .qdc comes from NVivo, ATLAS.ti, MAXQDA or QualCoder (the 1.0 and the older 0.4 namespace).
    A spreadsheet (.xlsx, .csv) has one row per code and a column of code names ('label' or 'name');
    optional columns: id, parent (an id or a label), definition (or 'description'), include, exclude,
    examples and keywords (one per line of the cell, or separated by ' | '), color. Code ids are
    snake_case names (made unique) where none are given. Codes without a definition get a
    placeholder definition and a warning, since every opm-nlp code needs a definition.

    \b
    Examples:
      opm-nlp codebook import nvivo_codes.qdc --out codebook/mine.yaml
      opm-nlp codebook import our_codebook.xlsx --name "Mentoring changes" --out codebook/mine.yaml
    """
    from opm_nlp.codebook.codes import IMPORTABLE
    from opm_nlp.codebook.qdc import write_codebook_yaml

    suffix = source.suffix.lower()
    if suffix not in IMPORTABLE:
        raise CodebookError(f"{source}: expected a REFI-QDA codebook (.qdc) or a spreadsheet of codes "
                            f"({', '.join(s for s in IMPORTABLE if s != '.qdc')}), found "
                            f"'{source.suffix or '(no extension)'}'.")
    if suffix == ".qdc":
        from opm_nlp.codebook.qdc import read_qdc

        cb = read_qdc(source, name=name)
    else:
        from opm_nlp.codebook.table import read_codebook_table

        cb = read_codebook_table(source, name=name, sheet=sheet)
    write_codebook_yaml(cb, out, comment=f"Imported from {source.name} by 'opm-nlp codebook import'.")
    click.echo(f"Imported {len(cb)} codes from {source} to {out}; fingerprint {cb.fingerprint}. "
               f"Check it with: opm-nlp codebook validate {out}")


# -- export ---------------------------------------------------------------------------------------
@cli.group(cls=_Group)
def export() -> None:
    """Export coded answers to QDA software (REFI-QDA projects)."""


@export.command("qdpx")
@click.argument("tagged_path", metavar="TAGGED", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--codebook", "codebook_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Codebook YAML file of the table's code columns.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Project to write (.qdpx).")
@click.option("--text-col", default=None, help="Column with the answer text (default: the second column).")
@click.option("--id-col", default=None, help="Column with the response id (default: the first column).")
@click.option("--encoding", default=None,
              help="Text encoding of CSV input (default: detect UTF-8, UTF-8 with BOM, cp1252).")
@click.option("--name", default=None, help="Project name shown in the QDA tool (default: the codebook's name).")
def export_qdpx(tagged_path, codebook_path, out, text_col, id_col, encoding, name) -> None:
    """Write answers and their codes as a REFI-QDA project (.qdpx).

    For NVivo, ATLAS.ti, MAXQDA or QualCoder. TAGGED is a table from 'opm-nlp tag', a reviewed
    table, or coded answers (one 0/1 column per code id). One text source and one case per answer; the other columns (wave, institution, ...) become case
    variables; each answer's codes are codings over the whole answer, by the user 'human coder'
    where people coded or reviewed it, otherwise by 'opm-nlp model suggestions'.

    \b
    Example:
      opm-nlp export qdpx tagged.csv --codebook codebook/opm_behavior_change.yaml \\
          --text-col answer --id-col response_id --out wave2022.qdpx
    """
    from opm_nlp.codebook.codes import load_codebook
    from opm_nlp.exchange.qdpx import HUMAN_USER, MODEL_USER, read_project_input, write_qdpx

    cb = load_codebook(codebook_path)
    frame, text_col, id_col = read_project_input(tagged_path, cb, text_col=text_col, id_col=id_col,
                                                 encoding=encoding)
    summary = write_qdpx(frame, cb, out, text_col, id_col, name=name, source=str(tagged_path))
    variables = f" ({', '.join(summary.variables)})" if summary.variables else ""
    click.echo(f"Wrote {out}: {summary.sources} answers from '{text_col}' as sources and cases "
               f"({summary.empty} empty), {len(summary.variables)} case variables{variables}, "
               f"{summary.human_codings} codings by '{HUMAN_USER}' and {summary.model_codings} by "
               f"'{MODEL_USER}'.")


# -- train ----------------------------------------------------------------------------------------
@cli.command()
@click.option("--codebook", "codebook_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Codebook YAML file.")
@click.option("--data", "data_paths", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Coded answers (CSV/XLSX/Parquet). Repeat for several files; for a response id in "
                   "several files, the later file's codes win. Leave out to start from the codebook's "
                   "examples and definitions alone.")
@data_options(required=False)
@coded_options
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Model folder to write.")
@click.option("--method", default="embedding", show_default=True, type=click.Choice(["embedding", "keyword"]),
              help="embedding: learn from the coded answers; keyword: the codebook's stem-word query.")
@click.option("--embedding-model", default=None,
              help="sentence-transformers model folder or cached name (default: packaged all-MiniLM-L6-v2).")
@click.option("--embedding-layers", default=None, type=click.IntRange(1),
              help="Describe answers by the embedding model's last N layers (default: 3 where the model "
                   "allows, else 1, its sentence embedding).")
@click.option("--context-col", default=None,
              help="Column saying what each answer responds to (e.g. the question, when a file holds answers "
                   "to several questions); answers to tag need the same column.")
@click.option("--review-margin", default=0.15, show_default=True, type=click.FloatRange(0, 1),
              help="Tagging flags an answer for review when a code's score is this close to its threshold "
                   "(larger: more answers routed to people).")
@click.option("--no-codebook-examples", is_flag=True,
              help="Learn from the coded answers only, not also from the codebook's examples and definitions.")
@click.option("--fine-tune/--no-fine-tune", default=None,
              help="Also fine-tune the embedding network on the coded answers (better suggestions; minutes of "
                   "training instead of seconds, a ~40 MB larger model, slower tagging; needs PyTorch). "
                   "Default: on from 1,000 coded answers.")
@click.option("--no-sentence-scores", is_flag=True,
              help="Score whole answers only, not also each sentence of a longer answer (faster tagging of "
                   "long answers; themes carried by one sentence of a long answer are found less often).")
@backend_options
@quiet_option
def train(codebook_path, data_paths, text_col, id_col, encoding, coded_format, code_col, out, method,
          embedding_model, embedding_layers, context_col, review_margin, no_codebook_examples, fine_tune,
          no_sentence_scores, backend, no_cache, quiet) -> None:
    """Train a model from answers people have already coded.

    The embedding method also learns from the codebook's examples and definitions, which carry the
    model while few answers are coded; without --data it learns from them alone (a first model for a
    new codebook: expect rough suggestions, and review them).

    \b
    Example:
      opm-nlp train --codebook codebook/opm_behavior_change.yaml \\
          --data examples/opm_coded_illustrative.csv \\
          --text-col answer --id-col response_id --out models/my_model
    """
    from opm_nlp.classify.finetune import DEFAULT_EPOCHS
    from opm_nlp.codebook.codes import load_codebook
    from opm_nlp.embedding.encoder import DEFAULT_BACKEND
    from opm_nlp.model.coding_model import CodingModel
    from opm_nlp.model.options import TrainOptions
    from opm_nlp.model.training import read_training_data, train_model

    if fine_tune and method != "embedding":
        raise click.UsageError("--fine-tune applies to --method embedding only.")
    cb = load_codebook(codebook_path)
    epochs = None if fine_tune is None else DEFAULT_EPOCHS if fine_tune else 0
    options = TrainOptions(method=method, embedding_model=embedding_model, embedding_layers=embedding_layers,
                           context_col=context_col, review_margin=review_margin,
                           codebook_examples=not no_codebook_examples, fine_tune=epochs,
                           sentences=not no_sentence_scores, backend=backend or DEFAULT_BACKEND, cache=not no_cache)
    model = CodingModel.from_options(cb, options)
    if data_paths and (text_col is None or id_col is None):
        raise click.UsageError("--text-col and --id-col are required with --data.")
    data = read_training_data(data_paths, cb, text_col, id_col, encoding=encoding, format=coded_format,
                              code_col=code_col)
    if data.coded is None:
        if not quiet and method == "embedding":
            click.echo(f"Training '{method}' model on the codebook alone: {len(cb.examples())} examples and "
                       f"definitions, {len(cb)} codes...", err=True)
        train_model(cb, data, options, progress=not quiet, model=model).save(out)
        what = "the codebook's keywords" if method == "keyword" else "the codebook alone"
        click.echo(f"Model written to {out} (from {what}; no cross-validated figures).")
        return
    for note in data.notes:
        click.echo(note)
    if len(data.sources) > 1:
        click.echo(f"Combined {len(data.sources)} files: {len(data.coded)} answers; later files changed "
                   f"{data.changed_labels} labels.")
    if not quiet:
        slow = " (fine-tuning the embedding network too: minutes)" if model.fine_tune_epochs(data.answers) else ""
        click.echo(f"Training '{method}' model on {len(data.coded)} coded answers, {len(cb)} codes{slow}...", err=True)
    train_model(cb, data, options, progress=not quiet, model=model).save(out)
    meta = model.metadata
    skipped = meta["training"]["empty_answers_skipped"]
    if skipped:
        click.echo(f"{skipped} answers with empty text were not used for training.")
    cv = meta["cv_metrics"]
    if cv:
        click.echo(f"Cross-validated micro-F1 {cv['micro_f1']:.3f}{_interval(cv['micro_f1_interval'], '95% interval ')}, "
                   f"macro-F1 {cv['macro_f1']:.3f}{_interval(cv['macro_f1_interval'])} "
                   f"({cv['folds']}-fold; see {out / 'README.md'}).")
    click.echo(f"Model written to {out}")


# -- tag ------------------------------------------------------------------------------------------
@cli.command()
@click.argument("model_dir", type=click.Path(file_okay=False, path_type=Path))
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False, path_type=Path))
@data_options
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Tagged table to write: .csv, .xlsx or .parquet.")
@click.option("--carry", multiple=True, help="Column to copy to the output (repeat; default: all other columns).")
@click.option("--chunk-size", default=2000, show_default=True, type=click.IntRange(min=1),
              help="Answers read, tagged and saved at a time (memory stays flat; the unit of --resume).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run of the same command where it stopped.")
@click.option("--engine", default="local", show_default=True, type=click.Choice(["local", "dask"]),
              help="local: this process; dask: chunks tagged by the workers of a Dask cluster.")
@click.option("--scheduler", default=None, help="Address of a running Dask scheduler (default: a local cluster).")
@click.option("--review-margin", default=None, type=click.FloatRange(0, 1),
              help="Flag an answer for review when a code's score is this close to its threshold (default: the "
                   "margin the model was trained with; larger: more answers routed to people).")
@backend_options
@quiet_option
def tag(model_dir, input_path, text_col, id_col, encoding, out, carry, chunk_size, resume, engine, scheduler,
        review_margin, backend, no_cache, quiet) -> None:
    """Suggest codes for new answers.

    The output has the id, the text, the carried columns, one 0/1 column per code id (so a corrected
    file is training data), score_<code> per code, suggested_codes, uncertain_codes and needs_review.
    Input is read and tagged in chunks; the output appears only when every answer is tagged, and an
    interrupted run continues with --resume.

    \b
    Example:
      opm-nlp tag models/opm_default examples/opm_wave2022_illustrative.csv \\
          --text-col answer --id-col response_id --out tagged.csv
    """
    from opm_nlp.model.batch import tag_file
    from opm_nlp.model.options import TagOptions

    options = TagOptions(text_col, id_col, encoding=encoding, carry=carry or None, chunk_size=chunk_size,
                         engine=engine, review_margin=review_margin, backend=backend, cache=not no_cache,
                         scheduler=scheduler, progress=not quiet)
    summary = tag_file(model_dir, input_path, out, options, resume=resume)
    resumed = f" (resumed after {summary.resumed_chunks} saved chunks)" if summary.resumed_chunks else ""
    click.echo(f"Tagged {summary.answers} answers ({summary.empty} empty); {summary.needs_review} need review. "
               f"Written to {out}{resumed}")


# -- review ---------------------------------------------------------------------------------------
@cli.group(cls=_Group)
def review() -> None:
    """Have people confirm or correct the suggestions: in Label Studio or in a spreadsheet.

    Reviewed files feed `opm-nlp train --data` (only rows marked reviewed=1 are used).
    """


def review_codebook_options(func):
    """--codebook or --model: the codes the answers were tagged with."""
    func = click.option("--model", "model_dir", default=None, type=click.Path(file_okay=False, path_type=Path),
                        help="Model folder the answers were tagged with (gives the codebook, thresholds and "
                             "model version).")(func)
    func = click.option("--codebook", "codebook_path", default=None,
                        type=click.Path(dir_okay=False, path_type=Path),
                        help="Codebook YAML file, when the model folder is not at hand.")(func)
    return func


def tagged_options(func):
    """--text-col, --id-col, --encoding for reading a tagged table."""
    func = click.option("--encoding", default=None,
                        help="Text encoding of CSV input (default: detect UTF-8, UTF-8 with BOM, cp1252).")(func)
    func = click.option("--id-col", default=None, help="Column with the response id (default: the first column, "
                                                       "as tag writes).")(func)
    func = click.option("--text-col", default=None, help="Column with the answer text (default: the second "
                                                         "column, as tag writes).")(func)
    return func


def server_options(func):
    """--url and --api-key for Label Studio, defaulting to LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY."""
    func = click.option("--api-key", envvar="LABEL_STUDIO_API_KEY", default=None,
                        help="Label Studio access token (default: $LABEL_STUDIO_API_KEY). Prefer the variable: "
                             "a flag shows in the process list and shell history.")(func)
    func = click.option("--url", envvar="LABEL_STUDIO_URL", default=None,
                        help="Label Studio address, e.g. http://localhost:8080 (default: $LABEL_STUDIO_URL). "
                             "Nothing is sent anywhere else.")(func)
    return func


def _review_codebook(codebook_path, model_dir):
    """The codebook and (with --model) the model metadata; exactly one of the two options."""
    from opm_nlp.model.folder import read_model_info
    from opm_nlp.codebook.codes import load_codebook

    if codebook_path is None and model_dir is None:
        raise click.UsageError("Pass --model MODEL_DIR (or --codebook CODEBOOK): the model or codebook the "
                               "answers were tagged with.")
    if codebook_path is not None and model_dir is not None:
        raise click.UsageError("Pass either --model or --codebook, not both (the model folder holds its codebook).")
    if model_dir is not None:
        return read_model_info(model_dir)
    return load_codebook(codebook_path), None


def _interval(interval, prefix: str = "") -> str:
    """' (low-high)' for a figure's interval; '' when there is none (too few answers to resample)."""
    low, high = interval
    if low is None or high is None or math.isnan(low) or math.isnan(high):  # None in metadata, NaN computed
        return ""
    return f" ({prefix}{low:.3f}-{high:.3f})"


@review.command("push")
@click.argument("tagged_path", metavar="TAGGED", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--project", required=True, help="Label Studio project title (created if it does not exist).")
@review_codebook_options
@tagged_options
@server_options
def review_push(tagged_path, project, codebook_path, model_dir, text_col, id_col, encoding, url, api_key) -> None:
    """Send tagged answers to Label Studio for review, least certain first.

    Each answer becomes a task with the model's codes pre-ticked; the reviewer confirms or corrects
    them. Answers already in the project (same response id) are not sent again, so a later wave adds
    only its new answers. Server and key come from LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY.

    \b
    Example:
      export LABEL_STUDIO_URL=http://localhost:8080 LABEL_STUDIO_API_KEY=<your token>
      opm-nlp review push tagged.csv --project "OPM wave 2022" --model models/opm_default
    """
    from opm_nlp.review.labelstudio import push_tagged
    from opm_nlp.review.labelstudio_server import connect
    from opm_nlp.review.common import model_version, prepare_for_review, thresholds_of
    from opm_nlp.io.tables import read_table

    cb, metadata = _review_codebook(codebook_path, model_dir)
    tagged, scores, text_col, id_col = prepare_for_review(read_table(tagged_path, encoding=encoding), cb, text_col,
                                                          id_col, source=str(tagged_path))
    server = connect(url, api_key)
    result = push_tagged(server, tagged, scores, cb, project, text_col, id_col,
                         model_version(cb, metadata), thresholds_of(cb, metadata))
    empty = f"; {result.empty_skipped} empty answers not sent" if result.empty_skipped else ""
    click.echo(f"Project '{project}' (id {result.project_id}, {'created' if result.created_project else 'existing'}): "
               f"added {result.added} answers for review, {result.already_there} were already there{empty}.")
    click.echo(f"Review them at {result.url} (least certain first).")


@review.command("pull")
@click.option("--project", required=True, help="Label Studio project title.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Reviewed table to write: .csv, .xlsx or .parquet.")
@review_codebook_options
@click.option("--include-unreviewed", is_flag=True,
              help="Also write answers nobody has reviewed yet, with reviewed=0 and the model's codes "
                   "(train leaves them out).")
@server_options
def review_pull(project, out, codebook_path, model_dir, include_unreviewed, url, api_key) -> None:
    """Fetch reviewers' codes from Label Studio as a coded table, and how often they agreed with the model.

    The table has the id and answer columns, reviewed, reviewer, reviewed_at, changed_suggestion,
    model_version, suggested_codes and one 0/1 column per code id: training data for
    `opm-nlp train --data`. Only reviewed answers are written unless --include-unreviewed.

    \b
    Example:
      opm-nlp review pull --project "OPM wave 2022" --out reviewed.csv --model models/opm_default
    """
    from opm_nlp.exceptions import ReviewError
    from opm_nlp.review.labelstudio import pull_reviews
    from opm_nlp.review.labelstudio_server import connect
    from opm_nlp.review.common import format_agreement, review_agreement
    from opm_nlp.io.tables import write_table

    cb, _ = _review_codebook(codebook_path, model_dir)
    server = connect(url, api_key)
    result = pull_reviews(server, project, cb, include_unreviewed=include_unreviewed)
    waiting = result.tasks - result.reviewed
    if not result.reviewed and not include_unreviewed:
        raise ReviewError(f"No answer of project '{project}' has been reviewed yet ({result.tasks} tasks); nothing "
                          f"written. Review some in Label Studio, or pass --include-unreviewed.")
    write_table(result.table, out)
    skipped = f", {result.skipped} skipped by reviewers" if result.skipped else ""
    click.echo(f"Project '{project}': {result.reviewed} of {result.tasks} answers reviewed "
               f"({waiting} not yet{skipped}).")
    if result.several_reviews:
        click.echo(f"{result.several_reviews} answers were reviewed more than once; the latest review is used.")
    which = "all answers (unreviewed: reviewed=0, model codes)" if include_unreviewed else "reviewed answers only"
    click.echo(f"Wrote {len(result.table)} rows ({which}) to {out}")
    table, summary = review_agreement(result.table, cb, source=f"project '{project}'")
    click.echo(format_agreement(table, summary))


@review.command("sheet")
@click.argument("tagged_path", metavar="TAGGED", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Review workbook to write (.xlsx).")
@review_codebook_options
@tagged_options
def review_sheet(tagged_path, out, codebook_path, model_dir, text_col, id_col, encoding) -> None:
    """Write a spreadsheet for reviewing suggestions without Label Studio.

    One row per answer, least certain first, with the suggested codes pre-filled as 0/1 (drop-down),
    the scores, a 'reviewed' column to mark, and the codebook on a second sheet. The filled
    workbook is training data: `opm-nlp train --data review.xlsx ...` uses the rows marked reviewed=1.

    \b
    Example:
      opm-nlp review sheet tagged.csv --out review.xlsx --model models/opm_default
    """
    from opm_nlp.review.common import model_version, prepare_for_review, thresholds_of
    from opm_nlp.review.sheet import review_frame, write_review_sheet
    from opm_nlp.io.tables import read_table

    cb, metadata = _review_codebook(codebook_path, model_dir)
    tagged, scores, text_col, id_col = prepare_for_review(read_table(tagged_path, encoding=encoding), cb, text_col,
                                                          id_col, source=str(tagged_path))
    frame = review_frame(tagged, scores, cb, text_col, id_col, model_version(cb, metadata), thresholds_of(cb, metadata))
    write_review_sheet(frame, cb, out)
    click.echo(f"Review sheet with {len(frame)} answers (least certain first) written to {out}. Correct the 0/1 "
               f"code columns, put 1 in 'reviewed', then: opm-nlp train ... --data {out}")


@review.command("stats")
@click.argument("reviewed_path", metavar="REVIEWED", type=click.Path(dir_okay=False, path_type=Path))
@review_codebook_options
@click.option("--encoding", default=None,
              help="Text encoding of CSV input (default: detect UTF-8, UTF-8 with BOM, cp1252).")
def review_stats(reviewed_path, codebook_path, model_dir, encoding) -> None:
    """How often reviewers accepted or changed the model's codes, per code (kappa, kept, added, removed).

    Reads a file from `review pull` or a filled `review sheet`; only rows marked reviewed=1 count.
    Reviewers who see suggestions tend to accept them, so read this as an upper bound of agreement.

    \b
    Example:
      opm-nlp review stats review.xlsx --model models/opm_default
    """
    from opm_nlp.review.common import format_agreement, review_agreement
    from opm_nlp.io.tables import read_table

    cb, _ = _review_codebook(codebook_path, model_dir)
    table, summary = review_agreement(read_table(reviewed_path, encoding=encoding), cb, source=str(reviewed_path))
    click.echo(format_agreement(table, summary))


# -- evaluate -------------------------------------------------------------------------------------
@cli.command()
@click.argument("model_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--data", "data_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Answers coded by people, not used for training.")
@data_options
@coded_options
@click.option("--second-coder", type=click.Path(dir_okay=False, path_type=Path),
              help="The same answers coded by a second person: adds human-human kappa per code.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the figures as JSON.")
@quiet_option
def evaluate(model_dir, data_path, text_col, id_col, encoding, coded_format, code_col, second_coder,
             json_path, quiet) -> None:
    """How well the model agrees with human coders, per code.

    \b
    Example:
      opm-nlp evaluate models/opm_default --data held_out.csv \\
          --text-col answer --id-col response_id --second-coder held_out_coder2.csv
    """
    from opm_nlp.classify.metrics import agreement_report, format_table
    from opm_nlp.codebook.coded import read_coded
    from opm_nlp.io.tables import write_json
    from opm_nlp.model.coding_model import CodingModel
    from opm_nlp.model.training import read_human_coded

    model = CodingModel.load(model_dir)
    cb = model.codebook
    coded, note = read_human_coded(data_path, cb, text_col, id_col, encoding=encoding, format=coded_format,
                                   code_col=code_col)
    if note:
        click.echo(note)
    second = None
    if second_coder is not None:
        second = read_coded(second_coder, cb, text_col, id_col, encoding=encoding, format=coded_format,
                            code_col=code_col)
    report = agreement_report(model, coded, text_col, id_col, second, progress=not quiet)
    click.echo(f"Model vs {data_path.name}: {report['n_answers']} answers")
    table, intervals = report["model_vs_human"], report["f1_intervals"]
    click.echo(format_table(table))
    if _interval(intervals["micro"]):
        click.echo(f"Micro-F1 {table.loc['micro', 'f1']:.3f}{_interval(intervals['micro'], '95% interval ')}, "
                   f"macro-F1 {table.loc['macro', 'f1']:.3f}{_interval(intervals['macro'])}: how much they depend on "
                   f"which {report['n_answers']} answers were coded.")
    if second is not None:
        click.echo(f"\nOn the {report['n_double_coded']} answers both people coded, kappa per code:")
        click.echo(format_table(report["kappa_comparison"]))
    if json_path is not None:
        write_json(report_to_json(report), json_path)
        click.echo(f"Figures written to {json_path}")


def report_to_json(report: dict) -> dict:
    """Make an agreement report JSON-serialisable."""
    out = {}
    for key, value in report.items():
        if hasattr(value, "to_dict"):
            out[key] = json.loads(value.to_json(orient="index"))
        else:
            out[key] = value
    return out


# -- report ---------------------------------------------------------------------------------------
@cli.command()
@click.argument("input_path", metavar="TAGGED_OR_CODED", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--codebook", "codebook_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Codebook YAML file of the table's code columns (sets the report's order).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for report.html, report.xlsx and theme_frequencies.csv.")
@click.option("--by", multiple=True, help="Column to break frequencies down by, side by side (repeat: institution, role...).")
@click.option("--wave", default=None, help="Column of survey waves: frequencies per wave and tests of change between waves.")
@click.option("--quotes", default=3, show_default=True, type=click.IntRange(min=0),
              help="Example answers per theme (0 for none).")
@click.option("--prepost", "prepost_path", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML naming before/after rating columns (items: [{name, before, after}]): adds paired tests.")
@click.option("--text-col", default=None, help="Column with the answer text (default: the second column, as tag writes).")
@click.option("--id-col", default=None, help="Column with the response id (default: the first column, as tag writes).")
@click.option("--encoding", default=None,
              help="Text encoding of CSV input (default: detect UTF-8, UTF-8 with BOM, cp1252).")
@coded_options
def report(input_path, codebook_path, out, by, wave, quotes, prepost_path, text_col, id_col, encoding,
           coded_format, code_col) -> None:
    """Report theme frequencies: tables, charts, subgroups, waves, example answers.

    TAGGED_OR_CODED is a table from 'opm-nlp tag', a reviewed table, or coded answers (one 0/1 column
    per code id). Writes OUT/report.html (self-contained: opens from the file, charts inline),
    OUT/report.xlsx (one sheet per table) and OUT/theme_frequencies.csv. Every table says how many of
    its answers a person coded or reviewed and how many carry only model suggestions.

    \b
    Example:
      opm-nlp report tagged.csv --codebook codebook/opm_behavior_change.yaml \\
          --out report_2022 --by institution --by role --wave wave --quotes 3
    """
    from opm_nlp.codebook.codes import load_codebook
    from opm_nlp.report.prepost import load_prepost_spec
    from opm_nlp.report.build import build_report
    from opm_nlp.codebook.coded import default_columns
    from opm_nlp.report.tables import basis_text
    from opm_nlp.io.tables import read_table

    cb = load_codebook(codebook_path)
    spec = load_prepost_spec(prepost_path) if prepost_path is not None else None
    frame = read_table(input_path, encoding=encoding)
    text_col, id_col = default_columns(frame, cb, text_col, id_col, source=str(input_path))
    result = build_report(frame, cb, text_col, id_col, by=by, wave=wave, quotes=quotes, prepost=spec,
                          source=str(input_path), format=coded_format, code_col=code_col)
    written = result.write(out)
    click.echo(f"{input_path.name}: answers in '{text_col}', ids in '{id_col}'. {basis_text(result.basis)}")
    for note in result.notes:
        click.echo(f"Note: {note}")
    click.echo(f"Report written to {out}: {', '.join(written)}")


# -- cache ----------------------------------------------------------------------------------------
@cli.group(cls=_Group)
def cache() -> None:
    """Show or clear the cache folder (embeddings, ONNX exports, fine-tuned networks)."""


@cache.command("info")
def cache_info() -> None:
    """Show where the cache is and how much room each part takes.

    \b
    Example:
      opm-nlp cache info
    """
    from opm_nlp.embedding.cache import cache_root, format_bytes, usage

    parts = usage()
    click.echo(f"Cache folder: {cache_root()} (set OPM_NLP_CACHE_DIR to move it)")
    for part in parts:
        click.echo(f"  {part.name:<11} {part.entries:>4} entries {format_bytes(part.size):>8}  {part.holds}")
    click.echo(f"Total {format_bytes(sum(part.size for part in parts))}. Everything is rebuilt when next needed; "
               "'opm-nlp cache clear' deletes it.")


@cache.command("clear")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def cache_clear(yes: bool) -> None:
    """Delete the cache: embeddings of answers, ONNX exports and fine-tuned networks.

    Nothing is lost: models keep their own weights, and the next command that needs a part rebuilds it
    (the first tagging after clearing is slower). Deletes only what opm-nlp wrote in the cache folder.
    Run it when no other opm-nlp command is running.

    \b
    Example:
      opm-nlp cache clear --yes
    """
    from opm_nlp.embedding.cache import cache_root, clear, format_bytes, usage

    total = sum(part.size for part in usage())
    if not yes:
        click.confirm(f"Delete {format_bytes(total)} of cached embeddings and networks in {cache_root()}?", abort=True)
    click.echo(f"Cache cleared: {format_bytes(clear())} freed in {cache_root()}.")


# -- demo -----------------------------------------------------------------------------------------
@cli.command()
@click.option("--out", default="demo_output", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the tagged table and the theme-frequency summary.")
@quiet_option
def demo(out, quiet) -> None:
    """Tag the illustrative OPM new wave with the shipped default model and summarise the themes.

    \b
    Example:
      opm-nlp demo --out demo_output
    """
    from opm_nlp.cli.demo import run_demo

    result = run_demo(out, model_dir=DEFAULT_MODEL, new_wave=EXAMPLE_NEW_WAVE, progress=not quiet)
    click.echo(result["summary_text"])
    click.echo(f"\nTagged answers: {result['tagged']}\nTheme frequencies: {result['frequencies']}")


def main() -> None:
    """Entry point of the ``opm-nlp`` script."""
    cli(prog_name="opm-nlp")


if __name__ == "__main__":  # pragma: no cover
    main()
