"""``opm-nlp report``: theme frequencies as a set of files (HTML, XLSX, CSV)."""

from __future__ import annotations

from pathlib import Path

import click

from opm_nlp.cli.common import coded_options, sheet_option


@click.command()
@click.argument("input_path", metavar="TAGGED_OR_CODED", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--codebook", "codebook_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Codebook YAML file of the table's code columns (sets the report's order).")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Folder for report.html, report.xlsx and theme_frequencies.csv.")
@click.option("--by", multiple=True, help="Column to break frequencies down by, side by side (repeat: institution, role...).")
@click.option("--wave", default=None, help="Column of survey waves: frequencies per wave and tests of change between waves.")
@click.option("--quotes", default=3, show_default=True, type=click.IntRange(min=0),
              help="Example answers per theme (0 for none).")
@click.option("--prepost", "prepost_path", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML naming before/after rating columns (items: [{name, before, after}]): adds paired tests.")
@click.option("--title", default=None,
              help="Title and heading of report.html (default: 'Theme report: ' and the input file).")
@click.option("--text-col", default=None, help="Column with the answer text (default: the second column, as tag writes).")
@click.option("--id-col", default=None, help="Column with the response id (default: the first column, as tag writes).")
@click.option("--encoding", default=None,
              help="Text encoding of CSV input (default: detect UTF-8, UTF-8 with BOM, cp1252).")
@sheet_option
@coded_options
def report(input_path, codebook_path, out, by, wave, quotes, prepost_path, title, text_col, id_col, encoding, sheet,
           coded_format, code_col) -> None:
    """Report theme frequencies: tables, charts, subgroups, waves, example answers.

    TAGGED_OR_CODED is a table from 'opm-nlp tag', a reviewed table, or coded answers (one 0/1 column
    per code id). Writes OUT/report.html (self-contained: opens from the file, charts inline),
    OUT/report.xlsx (one sheet per table), OUT/theme_frequencies.csv and each chart as
    OUT/figures/<table>.svg and .png. Every table says how many of
    its answers a person coded or reviewed and how many carry only model suggestions.

    \b
    Example:
      opm-nlp report tagged.csv --codebook codebook/opm_behavior_change.yaml \\
          --out report_2022 --by institution --by role --wave wave --quotes 3 \\
          --title "Mentor training 2022: intended changes"
    """
    from opm_nlp.codebook.coded import default_columns
    from opm_nlp.codebook.codes import load_codebook
    from opm_nlp.io.paths import check_distinct
    from opm_nlp.io.tables import read_table
    from opm_nlp.report.build import FIGURES_DIR, REPORT_FILES, build_report
    from opm_nlp.report.prepost import load_prepost_spec
    from opm_nlp.report.tables import basis_text

    for target in (out, *(out / name for name in REPORT_FILES)):
        check_distinct([input_path, codebook_path, prepost_path], target)
    cb = load_codebook(codebook_path)
    spec = load_prepost_spec(prepost_path) if prepost_path is not None else None
    frame = read_table(input_path, encoding=encoding, sheet=sheet)
    text_col, id_col = default_columns(frame, cb, text_col, id_col, source=str(input_path), format=coded_format,
                                       code_col=code_col)
    result = build_report(frame, cb, text_col, id_col, by=by, wave=wave, quotes=quotes, prepost=spec,
                          source=str(input_path), format=coded_format, code_col=code_col, title=title)
    written = result.write(out)
    click.echo(f"{input_path.name}: answers in '{text_col}', ids in '{id_col}'. {basis_text(result.basis)}")
    for note in result.notes:
        click.echo(f"Note: {note}")
    files = [name for name in written if "/" not in name]
    charts = list(dict.fromkeys(Path(name).stem for name in written if "/" in name))
    listing = f"; charts in {FIGURES_DIR}/ as SVG and PNG: {', '.join(charts)}" if charts else ""
    click.echo(f"Report written to {out}: {', '.join(files)}{listing}")
