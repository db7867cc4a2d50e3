"""Shared pieces of the commands: the error edge, option groups used by several commands, formatting.

The error edge (:class:`CommandGroup`) turns library errors into one line on stderr and exit status 1.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import sys
import warnings
from pathlib import Path

import click

from opm_nlp.exceptions import ModelError, OpmNlpError


class CommandGroup(click.Group):
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


def data_options(func=None, *, required: bool = True):
    """--text-col, --id-col and --encoding, shared by every command that reads answers."""
    def decorate(func):
        func = click.option("--encoding", default=None,
                            help="Text encoding of CSV input (default: detect UTF-8, UTF-8 with BOM, cp1252).")(func)
        func = click.option("--id-col", required=required, help="Column with a unique id per response.")(func)
        return click.option("--text-col", required=required, help="Column with the answer text.")(func)

    return decorate if func is None else decorate(func)


def sheet_option(func):
    """--sheet: the worksheet of .xlsx input, for every command that reads a table."""
    return click.option("--sheet", default=None,
                        help="Worksheet of .xlsx input that holds the table (default: the first).")(func)


def model_dir_argument(func):
    """MODEL_DIR, a model folder; checked by :func:`check_model_folder` in the command, not by click.

    click's folder check ("Directory ... is a file") says nothing of what a model folder is.
    """
    return click.argument("model_dir", type=click.Path(path_type=Path))(func)


_MODEL_FOLDER = ("A model folder is a folder written by 'opm-nlp train' (it holds metadata.json, codebook.yaml "
                 "and the classifier), e.g. models/opm_default")


def check_model_folder(path: Path) -> None:
    """Refuse, in one line, a MODEL_DIR or --model that is not a model folder, saying what one is.

    Raises
    ------
    ModelError
        If ``path`` is a file (a codebook, most often), or a folder without metadata.json.
    """
    path = Path(path)
    train = "opm-nlp train --codebook {} --data CODED --text-col ... --id-col ... --out models/NAME"
    if path.is_file():
        if path.suffix.lower() in (".yaml", ".yml"):
            raise ModelError(f"{path} is a codebook, not a model folder. {_MODEL_FOLDER}. Train one from this "
                             f"codebook with: {train.format(path)}")
        raise ModelError(f"{path} is a file, not a model folder. {_MODEL_FOLDER}.")
    if path.is_dir() and not (path / "metadata.json").is_file():
        codebooks = sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml"))
        if codebooks:
            raise ModelError(f"{path} is a folder of codebooks, not a model folder (no metadata.json). "
                             f"{_MODEL_FOLDER}. Train one from a codebook with: {train.format(codebooks[0])}")
        raise ModelError(f"{path} is not a model folder (no metadata.json). {_MODEL_FOLDER}.")
    if not path.exists():
        raise ModelError(f"Model folder {path} not found. {_MODEL_FOLDER}.")


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


def verbosity_options(func):
    """--quiet (no progress bars or info messages) and --verbose (log what is being done)."""
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


def review_codebook_options(func):
    """--codebook or --model: the codes the answers were tagged with."""
    func = click.option("--model", "model_dir", default=None, type=click.Path(path_type=Path),
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


def codebook_or_model(codebook_path, model_dir):
    """The codebook and (with --model) the model metadata; exactly one of the two options."""
    from opm_nlp.codebook.codes import load_codebook
    from opm_nlp.model.folder import read_model_info

    if codebook_path is None and model_dir is None:
        raise click.UsageError("Pass --model MODEL_DIR (or --codebook CODEBOOK): the model or codebook the "
                               "answers were tagged with.")
    if codebook_path is not None and model_dir is not None:
        raise click.UsageError("Pass either --model or --codebook, not both (the model folder holds its codebook).")
    if model_dir is not None:
        check_model_folder(model_dir)
        return read_model_info(model_dir)
    return load_codebook(codebook_path), None


def format_interval(interval, prefix: str = "") -> str:
    """' (low-high)' for a figure's interval; '' when there is none (too few answers to resample)."""
    low, high = interval
    if low is None or high is None or math.isnan(low) or math.isnan(high):  # None in metadata, NaN computed
        return ""
    return f" ({prefix}{low:.3f}-{high:.3f})"
