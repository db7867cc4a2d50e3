"""``opm-nlp codebook``: check a codebook, and exchange it with QDA software and spreadsheets."""

from __future__ import annotations

from pathlib import Path

import click

from opm_nlp.cli.common import CommandGroup
from opm_nlp.exceptions import CodebookError


@click.group(cls=CommandGroup)
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
    from opm_nlp.io.paths import check_distinct

    check_distinct([codebook_path], out)
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
    from opm_nlp.io.paths import check_distinct

    check_distinct([source], out)
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
