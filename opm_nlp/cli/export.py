"""``opm-nlp export``: tagged or reviewed answers as a project for QDA software (REFI-QDA)."""

from __future__ import annotations

from pathlib import Path

import click

from opm_nlp.cli.common import CommandGroup, sheet_option


@click.group(cls=CommandGroup)
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
@sheet_option
@click.option("--name", default=None, help="Project name shown in the QDA tool (default: the codebook's name).")
def export_qdpx(tagged_path, codebook_path, out, text_col, id_col, encoding, sheet, name) -> None:
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
    from opm_nlp.io.paths import check_distinct

    check_distinct([tagged_path, codebook_path], out)
    cb = load_codebook(codebook_path)
    frame, text_col, id_col = read_project_input(tagged_path, cb, text_col=text_col, id_col=id_col,
                                                 encoding=encoding, sheet=sheet)
    summary = write_qdpx(frame, cb, out, text_col, id_col, name=name, source=str(tagged_path))
    variables = f" ({', '.join(summary.variables)})" if summary.variables else ""
    click.echo(f"Wrote {out}: {summary.sources} answers from '{text_col}' as sources and cases "
               f"({summary.empty} empty), {len(summary.variables)} case variables{variables}, "
               f"{summary.human_codings} codings by '{HUMAN_USER}' and {summary.model_codings} by "
               f"'{MODEL_USER}'.")
