"""Codebooks kept as spreadsheets: one row per code, read into and written from a :class:`Codebook`.

Many teams keep their codebook in Excel. A table with a column of code names (``label`` or ``name``)
and, ideally, ``definition`` is enough; the other columns are optional::

    id | label | parent | definition | include | exclude | examples | keywords | color

Headers are matched without regard to case, spaces or underscores, and common names are understood
(``description`` for ``definition``, ``colour`` for ``color``, ``inclusion criteria`` for ``include``).
``examples`` and ``keywords`` hold one item per line of the cell (Alt+Enter in Excel); items may also be
separated by `` | ``, and keywords by ``;`` or ``,``. Without an ``id`` column, ids are made from the
labels (``Goal setting`` -> ``goal_setting``). ``parent`` names another code by id or label.

Examples
--------
>>> from opm_nlp.codebook.table import read_codebook_table, write_codebook_table
>>> cb = read_codebook_table("codes.xlsx")  # doctest: +SKIP
>>> write_codebook_table(cb, "codes_again.xlsx")  # doctest: +SKIP
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pandas as pd

from opm_nlp.codebook.codes import (
    CODE_KEYS,
    ID_RE,
    Codebook,
    first_few,
    no_definition,
    slugify,
    unique_id,
)
from opm_nlp.exceptions import CodebookError, DataError
from opm_nlp.io.tables import (
    atomic_output,
    cell_text,
    read_table,
    row_number,
    write_table,
    write_xlsx,
)

# accepted headers for each field, after lower-casing and turning "_" and "-" into spaces
HEADERS = {
    "id": ("id", "code id", "code key"),
    "label": ("label", "name", "code name", "code label", "code", "theme", "category"),
    "parent": ("parent", "parent id", "parent code", "parent label", "parent theme", "parent category"),
    "definition": ("definition", "description", "code definition", "meaning"),
    "include": ("include", "inclusion", "inclusion criteria", "include when", "when to use"),
    "exclude": ("exclude", "exclusion", "exclusion criteria", "exclude when", "when not to use"),
    "examples": ("examples", "example", "example answers", "example quotes", "quotes"),
    "keywords": ("keywords", "keyword", "stems", "keyword stems", "search terms"),
    "color": ("color", "colour"),
}
_LINES = re.compile(r"\s*(?:\r\n|\r|\n)\s*")
_ITEMS = {"examples": re.compile(r"\s+\|\s+"), "keywords": re.compile(r"\s*[;,|]\s*")}


def _header(name: object) -> str:
    return " ".join(str(name).lower().replace("_", " ").replace("-", " ").split())


def _items(value: str, field: str) -> list[str]:
    """A cell's examples or keywords: one per line, or separated by `` | `` (keywords also by ; or ,)."""
    lines = [line for line in _LINES.split(value) if line]
    if len(lines) > 1:
        return lines
    return [item for item in _ITEMS[field].split(value) if item]


def columns_of(frame: pd.DataFrame, source: str) -> tuple[dict[str, str], list[str]]:
    """Which column holds each codebook field, and the columns that match none."""
    found: dict[str, str] = {}
    ignored = []
    for column in frame.columns:
        header = _header(column)
        field = next((f for f, names in HEADERS.items() if header in names and f not in found), None)
        if field is None:
            ignored.append(str(column))
        else:
            found[field] = column
    if "label" not in found:
        raise CodebookError(
            f"{source}: no column of code names. Expected a 'label' (or 'name') column, one code per row, "
            f"and ideally 'definition'; found columns {[str(c) for c in frame.columns]}."
        )
    return found, ignored


def read_codebook_table(path: str | Path, name: str | None = None, sheet: str | None = None,
                        encoding: str | None = None) -> Codebook:
    """Read a codebook kept as a table (CSV, XLSX or Parquet; one row per code).

    Ids come from the ``id`` column or, where it is empty, from the label (made unique). A code without
    a definition gets ``"(no definition in FILE)"`` and a warning, since opm-nlp needs one per code.
    Columns that are not codebook fields are ignored, with a warning naming them.

    Parameters
    ----------
    path : str or Path
        The table.
    name : str, optional
        Name of the codebook (default: the file name without extension).
    sheet : str, optional
        Worksheet of an XLSX file (default: the first).
    encoding : str, optional
        Text encoding of a CSV file (default: detected).

    Raises
    ------
    CodebookError
        If the file cannot be read, has no column of code names, or the codes do not make a valid
        codebook (an invalid or repeated id, an unknown parent, a cycle); the message names the row.
    """
    path = Path(path)
    try:
        frame = read_table(path, encoding=encoding, sheet=sheet)
    except DataError as exc:
        raise CodebookError(str(exc)) from None
    columns, ignored = columns_of(frame, str(path))
    cells = {field: [cell_text(v) for v in frame[column]] for field, column in columns.items()}
    empty = [""] * len(frame)

    rows: list[tuple[int, dict[str, str]]] = []
    for index in range(len(frame)):
        row = {field: cells.get(field, empty)[index] for field in CODE_KEYS}
        if not any(row.values()):
            continue  # a blank row between codes
        if not row["label"]:
            raise CodebookError(
                f"{path}, row {row_number(index)}: the code has no {columns['label']!r}; every code needs a name.")
        rows.append((row_number(index), row))
    if not rows:
        raise CodebookError(f"{path}: the table has no codes (every row is empty).")

    for line, row in rows:
        if row["id"] and not ID_RE.match(row["id"]):
            raise CodebookError(
                f"{path}, row {line}: code id {row['id']!r} in column {columns['id']!r} is not snake_case "
                f"(lower-case letters, digits and underscores, starting with a letter, e.g. 'goal_setting'). "
                f"Fix it, or delete the column to have ids made from the labels.")
    taken = {row["id"] for _, row in rows if row["id"]}
    ids = []
    for _, row in rows:
        if not row["id"]:
            row["id"] = unique_id(slugify(row["label"]), taken)
            taken.add(row["id"])
        ids.append(row["id"])
    by_label = {}
    for _, row in rows:
        by_label.setdefault(row["label"].lower(), row["id"])

    placeholder = no_definition(path.name)
    undefined: list[str] = []
    raw_codes, places = [], {}
    for number, (line, row) in enumerate(rows):
        raw: dict[str, object] = {"id": row["id"], "label": " ".join(row["label"].split()),
                                  "definition": row["definition"]}
        if not row["definition"]:
            undefined.append(row["id"])
            raw["definition"] = placeholder
        for field in ("include", "exclude"):
            if row[field]:
                raw[field] = row[field]
        for field in ("examples", "keywords"):
            if row[field]:
                raw[field] = _items(row[field], field)
        if row["parent"]:
            parent = row["parent"]
            raw["parent"] = parent if parent in ids else by_label.get(parent.lower(), parent)
        if row["color"]:
            raw["color"] = row["color"]
        raw_codes.append(raw)
        places[number] = f"row {line}"

    about = _about(path) if sheet is None else {}
    codebook = Codebook.from_dict(
        {"name": name or about.get("name") or path.stem, "version": about.get("version", ""),
         "description": about.get("description") or f"Imported from {path.name}.", "codes": raw_codes},
        source=str(path), lines=places,
    )
    if ignored:
        warnings.warn(f"{path}: column(s) {first_few(ignored)} are not codebook fields and were ignored. "
                      f"Fields: {list(TABLE_COLUMNS)}.", stacklevel=2)
    if undefined:
        warnings.warn(
            f"{path}: {len(undefined)} code(s) have no definition {first_few(undefined)}; their definition is "
            f"'{placeholder}'. Write a definition for each before training or sharing the codebook.",
            stacklevel=2,
        )
    return codebook


def _about(path: Path) -> dict[str, str]:
    """The codebook's name, version and description from the 'about' sheet an exported workbook has."""
    if path.suffix.lower() != ".xlsx":
        return {}
    try:
        frame = pd.read_excel(path, sheet_name=ABOUT_SHEET, header=None, dtype=object)
    except (ValueError, KeyError, OSError):  # no such sheet
        return {}
    return {key: cell_text(value) for key, value, *_ in frame.itertuples(index=False)
            if key in ("name", "version", "description")} if frame.shape[1] >= 2 else {}


ABOUT_SHEET = "about"
TABLE_COLUMNS = ("id", "label", "parent", "definition", "include", "exclude", "examples", "keywords", "color")


def codebook_table(codebook: Codebook) -> pd.DataFrame:
    """One row per code, in the columns :func:`read_codebook_table` reads back to the same codes."""
    return pd.DataFrame([{
        "id": code.id, "label": code.label, "parent": code.parent or "", "definition": code.definition,
        "include": code.include, "exclude": code.exclude, "examples": "\n".join(code.examples),
        "keywords": "\n".join(code.keywords), "color": code.color or "",
    } for code in codebook.codes], columns=list(TABLE_COLUMNS))


def write_codebook_table(codebook: Codebook, path: str | Path) -> Path:
    """Write ``codebook`` as a table, one row per code: XLSX, CSV or TSV by extension, atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".xlsx", ".csv", ".tsv"):
        raise CodebookError(f"{path}: a codebook table is written as .xlsx, .csv or .tsv, found "
                            f"'{path.suffix or '(no extension)'}'.")
    frame = codebook_table(codebook)
    if suffix != ".xlsx":
        return write_table(frame, path)
    about = pd.DataFrame([("name", codebook.name), ("version", codebook.version),
                          ("description", codebook.description)], columns=["field", "value"])
    with atomic_output(path) as tmp:
        write_xlsx({"codebook": frame, ABOUT_SHEET: about}, tmp)
    return path
