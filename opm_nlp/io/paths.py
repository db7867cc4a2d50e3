"""The files a command reads and writes: an output never replaces an input; the sheets of a workbook.

:func:`check_distinct` refuses an output that is one of the input files, by whatever path it is named
(relative, absolute, through a symlink or a hard link), and :func:`check_outside` an output folder,
replaced as a whole, that holds an input. Both run before any work, so a run never overwrites what it
reads. :func:`sheet_names`, :func:`check_sheet` and :func:`sheet_hint` name the worksheets of an
.xlsx file, for ``--sheet`` and for error messages.

Examples
--------
>>> from opm_nlp.io.paths import check_distinct
>>> check_distinct(["wave3.csv"], "wave3.csv")  # doctest: +SKIP
Traceback (most recent call last):
DataError: The output wave3.csv is the input file wave3.csv; writing it would replace the input. Pass another --out.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from opm_nlp.exceptions import DataError

#: Workbook extensions whose sheets can be listed (those :mod:`opm_nlp.io.tables` reads as Excel).
_WORKBOOK_EXTENSIONS = (".xlsx", ".xlsm")


def same_file(first: str | Path, second: str | Path) -> bool:
    """True when both paths exist and are one file (or folder), however each is spelled."""
    try:
        return os.path.samefile(first, second)
    except OSError:  # one of them does not exist (yet): an output not yet written is no input
        return False


def check_distinct(inputs: Iterable[str | Path | None], output: str | Path, option: str = "--out") -> None:
    """Refuse an output path that is one of the input files.

    Parameters
    ----------
    inputs : iterable of str or Path or None
        The files the command reads (``None`` entries, for options not given, are skipped).
    output : str or Path
        The file the command writes.
    option : str
        The option that names ``output``, for the message.

    Raises
    ------
    DataError
        If ``output`` exists and is the same file as one of ``inputs``.
    """
    for path in inputs:
        if path is not None and same_file(path, output):
            raise DataError(f"The output {output} is the input file {path}; writing it would replace the input. "
                            f"Pass another {option}.")


def check_outside(inputs: Iterable[str | Path | None], folder: str | Path, option: str = "--out") -> None:
    """Refuse an output folder, written as a whole, that is or holds one of the input files.

    Raises
    ------
    DataError
        If ``folder`` is one of ``inputs`` or one of them lies inside it.
    """
    folder = Path(folder)
    check_distinct(inputs, folder, option)
    if not folder.is_dir():
        return
    inside = folder.resolve()
    for path in inputs:
        if path is not None and Path(path).exists() and inside in Path(path).resolve().parents:
            raise DataError(f"The input {path} is inside the output folder {folder}, which is written as a whole; "
                            f"writing it would delete the input. Move the input, or pass another {option}.")


def sheet_names(path: str | Path) -> list[str] | None:
    """The worksheet names of an .xlsx file, in order; ``None`` for another kind of file or an unreadable one."""
    path = Path(path)
    if path.suffix.lower() not in _WORKBOOK_EXTENSIONS or not path.is_file():
        return None
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True)
    except Exception:  # a damaged file: its reader gives the error that says so
        return None
    try:
        return list(workbook.sheetnames)
    finally:
        workbook.close()


def check_sheet(path: str | Path, sheet: str | None, names: list[str] | None = None) -> None:
    """Refuse a ``--sheet`` that the workbook at ``path`` does not have, listing the ones it has.

    ``names`` are the workbook's sheets when the caller has them open; a file that is not a workbook
    is not checked (``--sheet`` applies to .xlsx inputs only).
    """
    if sheet is None:
        return
    names = sheet_names(path) if names is None else names
    if names is not None and sheet not in names:
        raise DataError(f"{path}: no sheet '{sheet}'; the file has sheets {names}. Pass one of them to --sheet.")


def sheet_hint(source: str | Path) -> str:
    """For a message about a missing column: the sheets of ``source`` when it is a workbook with several.

    Returns ``""`` unless ``source`` names an .xlsx file with more than one sheet, where the column
    may well be on another sheet than the one read.
    """
    names = sheet_names(source)
    if not names or len(names) < 2:
        return ""
    return f" The file has sheets {names}; pass --sheet to read another."
