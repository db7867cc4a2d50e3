"""``opm-nlp tag``: suggest codes for a file of new answers."""

from __future__ import annotations

from pathlib import Path

import click

from opm_nlp.cli.common import (
    backend_options,
    check_model_folder,
    data_options,
    model_dir_argument,
    sheet_option,
    verbosity_options,
)


@click.command()
@model_dir_argument
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False, path_type=Path))
@data_options
@sheet_option
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
@verbosity_options
def tag(model_dir, input_path, text_col, id_col, encoding, sheet, out, carry, chunk_size, resume, engine, scheduler,
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

    check_model_folder(model_dir)
    options = TagOptions(text_col, id_col, encoding=encoding, sheet=sheet, carry=carry or None, chunk_size=chunk_size,
                         engine=engine, review_margin=review_margin, backend=backend, cache=not no_cache,
                         scheduler=scheduler, progress=not quiet)
    summary = tag_file(model_dir, input_path, out, options, resume=resume)
    resumed = f" (resumed after {summary.resumed_chunks} saved chunks)" if summary.resumed_chunks else ""
    click.echo(f"Tagged {summary.answers} answers ({summary.empty} empty); {summary.needs_review} need review. "
               f"Written to {out}{resumed}")
