"""Command-line interface: thin click commands over the library.

Heavy packages (torch, sentence-transformers, scikit-learn, spaCy) are imported inside the commands
that need them, so ``opm-nlp --help`` starts fast.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import warnings
from pathlib import Path

import click

from opm_nlp.exceptions import OpmNlpError

REPO_ROOT = Path(__file__).resolve().parents[1]
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


def data_options(func):
    """--text-col, --id-col and --encoding, shared by every command that reads answers."""
    func = click.option("--encoding", default=None,
                        help="Text encoding of CSV input (default: detect UTF-8, UTF-8 with BOM, cp1252).")(func)
    func = click.option("--id-col", required=True, help="Column with a unique id per response.")(func)
    func = click.option("--text-col", required=True, help="Column with the answer text.")(func)
    return func


def coded_options(func):
    """--format and --code-col: how codes are stored in coded-data files."""
    func = click.option("--code-col", default=None,
                        help="Column of code ids for long/delimited files (default: 'codes' or 'code').")(func)
    func = click.option("--format", "coded_format", default="auto", show_default=True,
                        type=click.Choice(["auto", "wide", "long", "delimited"]),
                        help="How codes are stored: one 0/1 column per code id (wide), one row per "
                             "response and code (long), or one column of ids separated by ; , or | (delimited).")(func)
    return func


def quiet_option(func):
    @click.option("--quiet", "-q", is_flag=True, help="No progress bars or info messages.")
    @click.option("--verbose", "-v", is_flag=True, help="Log what is being done.")
    @functools.wraps(func)
    def wrapper(*args, quiet: bool, verbose: bool, **kwargs):
        logging.basicConfig(level=logging.INFO if verbose and not quiet else logging.WARNING,
                            format="%(levelname)s %(name)s: %(message)s")
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
    """Check and inspect codebooks (YAML files of codes)."""


@codebook.command("validate")
@click.argument("codebook_path", metavar="CODEBOOK", type=click.Path(dir_okay=False, path_type=Path))
def codebook_validate(codebook_path: Path) -> None:
    """Check a codebook file and list its codes.

    \b
    Example:
      opm-nlp codebook validate codebook/opm_behavior_change.yaml
    """
    from opm_nlp.codebook import load_codebook

    cb = load_codebook(codebook_path)
    click.echo(f"{codebook_path}: valid codebook '{cb.name}' version {cb.version or '-'}, "
               f"{len(cb)} codes, fingerprint {cb.fingerprint}")
    for code in cb.codes:
        depth = len(cb.ancestors(code.id))
        extras = f" [{len(code.keywords)} keywords, {len(code.examples)} examples]"
        click.echo(f"  {'  ' * depth}{code.id}: {code.label}{extras}")


# -- train ----------------------------------------------------------------------------------------
@cli.command()
@click.option("--codebook", "codebook_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Codebook YAML file.")
@click.option("--data", "data_paths", required=True, multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Coded answers (CSV/XLSX/Parquet). Repeat for several files; for a response id in "
                   "several files, the later file's codes win.")
@data_options
@coded_options
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Model folder to write.")
@click.option("--method", default="embedding", show_default=True, type=click.Choice(["embedding", "keyword"]),
              help="embedding: learn from the coded answers; keyword: the codebook's stem-word query.")
@click.option("--embedding-model", default=None,
              help="sentence-transformers model folder or cached name (default: packaged all-MiniLM-L6-v2).")
@quiet_option
def train(codebook_path, data_paths, text_col, id_col, encoding, coded_format, code_col, out, method,
          embedding_model, quiet) -> None:
    """Train a model from answers people have already coded.

    \b
    Example:
      opm-nlp train --codebook codebook/opm_behavior_change.yaml \\
          --data examples/opm_coded_illustrative.csv \\
          --text-col answer --id-col response_id --out models/my_model
    """
    from opm_nlp.bundle import CodingModel
    from opm_nlp.codebook import load_codebook
    from opm_nlp.surveys import combine_coded, read_coded

    cb = load_codebook(codebook_path)
    frames = [read_coded(p, cb, text_col, id_col, encoding=encoding, format=coded_format, code_col=code_col)
              for p in data_paths]
    coded, changed = combine_coded(frames, cb, id_col)
    if len(frames) > 1:
        click.echo(f"Combined {len(data_paths)} files: {len(coded)} answers; later files changed {changed} labels.")
    if not quiet:
        click.echo(f"Training '{method}' model on {len(coded)} coded answers, {len(cb)} codes...", err=True)
    model = CodingModel(cb, method=method, embedding_model=embedding_model)
    model.fit(coded, text_col, sources=[p.name for p in data_paths])
    model.save(out)
    meta = model.metadata
    skipped = meta["training"]["empty_answers_skipped"]
    if skipped:
        click.echo(f"{skipped} answers with empty text were not used for training.")
    cv = meta["cv_metrics"]
    if cv:
        click.echo(f"Cross-validated micro-F1 {cv['micro_f1']:.3f}, macro-F1 {cv['macro_f1']:.3f} "
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
@quiet_option
def tag(model_dir, input_path, text_col, id_col, encoding, out, carry, quiet) -> None:
    """Suggest codes for new answers.

    The output has the id, the text, the carried columns, one 0/1 column per code id (so a corrected
    file is training data), score_<code> per code, suggested_codes, uncertain_codes and needs_review.

    \b
    Example:
      opm-nlp tag models/opm_default examples/opm_wave2022_illustrative.csv \\
          --text-col answer --id-col response_id --out tagged.csv
    """
    from opm_nlp.bundle import REVIEW_COL, CodingModel
    from opm_nlp.surveys import read_responses, write_table

    frame = read_responses(input_path, text_col, id_col, encoding=encoding)
    model = CodingModel.load(model_dir)
    tagged = model.tag(frame, text_col, id_col, carry=list(carry) or None, progress=not quiet)
    write_table(tagged, out)
    empty = int(frame[text_col].eq("").sum())
    click.echo(f"Tagged {len(tagged)} answers ({empty} empty); {int(tagged[REVIEW_COL].sum())} need review. "
               f"Written to {out}")


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
def evaluate(model_dir, data_path, text_col, id_col, encoding, coded_format, code_col, second_coder,
             json_path) -> None:
    """How well the model agrees with human coders, per code.

    \b
    Example:
      opm-nlp evaluate models/opm_default --data held_out.csv \\
          --text-col answer --id-col response_id --second-coder held_out_coder2.csv
    """
    from opm_nlp.bundle import CodingModel
    from opm_nlp.evaluation import agreement_report, format_table
    from opm_nlp.surveys import read_coded, write_json

    model = CodingModel.load(model_dir)
    cb = model.codebook
    coded = read_coded(data_path, cb, text_col, id_col, encoding=encoding, format=coded_format, code_col=code_col)
    second = None
    if second_coder is not None:
        second = read_coded(second_coder, cb, text_col, id_col, encoding=encoding, format=coded_format,
                            code_col=code_col)
    report = agreement_report(model, coded, text_col, id_col, second)
    click.echo(f"Model vs {data_path.name}: {report['n_answers']} answers")
    click.echo(format_table(report["model_vs_human"]))
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
    from opm_nlp.demo import run_demo

    result = run_demo(out, model_dir=DEFAULT_MODEL, new_wave=EXAMPLE_NEW_WAVE, progress=not quiet)
    click.echo(result["summary_text"])
    click.echo(f"\nTagged answers: {result['tagged']}\nTheme frequencies: {result['frequencies']}")


def main() -> None:
    """Entry point of the ``opm-nlp`` script."""
    cli(prog_name="opm-nlp")


if __name__ == "__main__":  # pragma: no cover
    main()
