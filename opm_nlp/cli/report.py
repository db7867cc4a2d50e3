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
@click.option("--audit", "audit_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Coded file of a random sample of the wave's answers, coded blind (e.g. from 'opm-nlp review "
                   "sample'; ids as in TAGGED): prediction-powered estimates with intervals that carry the model's error.")
@click.option("--partial-audit", is_flag=True,
              help="Use the coded rows of a partly coded --audit file (the report states the caveat).")
@click.option("--model", "model_dir", type=click.Path(file_okay=False, path_type=Path),
              help="The model folder that tagged the wave: quotes its agreement figures, refuses an audit it was "
                   "trained on, and without --audit gives adjusted estimates from its per-code errors.")
@sheet_option
@coded_options
def report(input_path, codebook_path, out, by, wave, quotes, prepost_path, title, text_col, id_col, encoding, sheet,
           coded_format, code_col, audit_path, partial_audit, model_dir) -> None:
    """Report theme frequencies: tables, charts, subgroups, waves, example answers.

    TAGGED_OR_CODED is a table from 'opm-nlp tag', a reviewed table, or coded answers (one 0/1 column
    per code id). Writes OUT/report.html (self-contained: opens from the file, charts inline),
    OUT/report.xlsx (one sheet per table), OUT/theme_frequencies.csv and each chart as
    OUT/figures/<table>.svg and .png. Every table says how many of
    its answers a person coded or reviewed and how many carry only model suggestions.

    \b
    With --audit, each theme's estimate combines the model's scores on every answer with a random sample
    of answers coded blind (prediction-powered inference), so its 95% interval carries the model's error.

    \b
    Example:
      opm-nlp report tagged.csv --codebook codebook/opm_behavior_change.yaml \\
          --out report_2022 --by institution --by role --wave wave --quotes 3 \\
          --title "Mentor training 2022: intended changes"
      opm-nlp report tagged.csv --codebook codebook/opm_behavior_change.yaml \\
          --audit audit.xlsx --model models/opm_default --out report_2022
    """
    from opm_nlp.codebook.coded import default_columns
    from opm_nlp.codebook.codes import load_codebook
    from opm_nlp.io.paths import check_distinct
    from opm_nlp.io.tables import read_table
    from opm_nlp.report.build import FIGURES_DIR, REPORT_FILES, build_report
    from opm_nlp.report.prepost import load_prepost_spec
    from opm_nlp.report.tables import basis_text

    for target in (out, *(out / name for name in REPORT_FILES)):
        check_distinct([input_path, codebook_path, prepost_path, audit_path], target)
    cb = load_codebook(codebook_path)
    spec = load_prepost_spec(prepost_path) if prepost_path is not None else None
    frame = read_table(input_path, encoding=encoding, sheet=sheet)
    text_col, id_col = default_columns(frame, cb, text_col, id_col, source=str(input_path), format=coded_format,
                                       code_col=code_col)
    if partial_audit and audit_path is None:
        from opm_nlp.exceptions import DataError

        raise DataError("--partial-audit needs --audit (the audit file whose coded rows to use). Pass --audit FILE.")
    metadata = trust = model_name = None
    if model_dir is not None:
        from opm_nlp.model.folder import read_metadata
        from opm_nlp.report.prevalence import trust_of

        metadata = read_metadata(model_dir)
        trust = trust_of(metadata)
        model_name = f"{model_dir.name} (created {metadata.get('created', 'unknown')})"
    audit = None
    if audit_path is not None:
        from opm_nlp.columns import human_coded_mask
        from opm_nlp.report.audit import read_audit
        from opm_nlp.report.tables import prepare_table

        wave_table = prepare_table(frame, cb, text_col, id_col, format=coded_format, code_col=code_col,
                                   source=str(input_path))
        audit = read_audit(read_table(audit_path, encoding=encoding, sheet=sheet), cb, wave_table, text_col, id_col,
                           reviewed=human_coded_mask(wave_table), source=audit_path.name,
                           tagged_source=input_path.name, partial=partial_audit, metadata=metadata, code_col=code_col)
    result = build_report(frame, cb, text_col, id_col, by=by, wave=wave, quotes=quotes, prepost=spec,
                          source=str(input_path), format=coded_format, code_col=code_col, title=title, audit=audit,
                          trust=trust, model=model_name)
    written = result.write(out)
    click.echo(f"{input_path.name}: answers in '{text_col}', ids in '{id_col}'. {basis_text(result.basis)}")
    for note in result.notes:
        click.echo(f"Note: {note}")
    files = [name for name in written if "/" not in name]
    charts = list(dict.fromkeys(Path(name).stem for name in written if "/" in name))
    listing = f"; charts in {FIGURES_DIR}/ as SVG and PNG: {', '.join(charts)}" if charts else ""
    click.echo(f"Report written to {out}: {', '.join(files)}{listing}")
