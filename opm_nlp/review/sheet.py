"""Review in a spreadsheet, for teams without Label Studio.

``opm-nlp review sheet`` writes an XLSX workbook:

- ``answers`` (first sheet, read back by ``opm-nlp train --data review.xlsx``): one row per answer,
  least certain first; the id and answer; ``evidence`` (the sentence that carried each suggested code,
  when the tagged table has it); ``reviewed`` and ``reviewer`` for the reviewer to fill;
  one 0/1 column per code id pre-filled with the model's suggestion (drop-down 0/1, 1 shaded);
  then ``suggested_codes``, ``uncertain_codes``, ``uncertainty``, ``model_version``, the scores and
  the carried columns. Hovering a code's header shows its label and definition.
- ``codebook``: id, label, parent, definition, include, exclude, examples.
- ``instructions``: how to review.

Rows not marked ``reviewed`` = 1 hold the model's suggestion; ``opm-nlp train`` leaves them out.
Text that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``) is stored as text.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from opm_nlp.columns import EVIDENCE_COL, NEEDS_REVIEW_COL, SCORE_PREFIX, SUGGESTED_COL, UNCERTAIN_COL
from opm_nlp.classify.decision import DecisionRule
from opm_nlp.codebook.codes import Codebook
from opm_nlp.exceptions import DataError
from opm_nlp.columns import MODEL_VERSION_COL, REVIEWED_COL, REVIEWER_COL
from opm_nlp.review.common import UNCERTAINTY_COL, uncertainty
from opm_nlp.io.formulas import append_frame, warn_removed_characters
from opm_nlp.io.tables import add_sheet, answered, atomic_output, text_values

ANSWERS_SHEET = "answers"
CODEBOOK_SHEET = "codebook"
INSTRUCTIONS_SHEET = "instructions"
_INSTRUCTIONS = [
    "How to review the model's suggestions",
    "",
    "1. On the 'answers' sheet, read each answer. The code columns (one per code id) hold the model's "
    "suggestion: 1 = the code applies, 0 = it does not. Hover a code's header for its definition; the "
    "'codebook' sheet has the include/exclude notes.",
    "2. Correct the 0/1 values so they are your coding (pick 0 or 1 from the drop-down).",
    "3. Put 1 in 'reviewed' for every row you have checked, even when you changed nothing; add your name "
    "or initials in 'reviewer' if several people review.",
    "4. Rows are sorted least certain first ('uncertainty' near 1): start at the top.",
    "5. Keep the column names, the 'answers' sheet first and the header in row 1. Rows without reviewed = 1 "
    "are ignored when training.",
    "",
    "Then: opm-nlp review stats review.xlsx --model MODEL_DIR   (how often you agreed with the model)",
    "      opm-nlp train --codebook CODEBOOK --data coded.csv --data review.xlsx --text-col ... --id-col ... --out NEW_MODEL",
]

_REVIEWED_COMMENT = ("Put 1 when you have checked this row's codes (even if unchanged). Rows without 1 are not used "
                     "for training.")


def review_frame(tagged: pd.DataFrame, scores: np.ndarray, codebook: Codebook, text_col: str, id_col: str,
                 model_version: str, rule: DecisionRule | np.ndarray) -> pd.DataFrame:
    """The ``answers`` sheet as a table: columns in review order, least certain answers first, empty ones last."""
    ids = codebook.ids
    score_cols = [SCORE_PREFIX + c for c in ids]
    has_text = answered(tagged[text_col])
    # Empty answers have nothing to review: no uncertainty, listed last.
    unsure = np.where(has_text, uncertainty(scores, rule), np.nan)
    out = tagged[[id_col, text_col]].copy()
    if EVIDENCE_COL in tagged.columns:  # beside the answer: the sentence that carried each suggested code
        out[EVIDENCE_COL] = text_values(tagged[EVIDENCE_COL])
    out[REVIEWED_COL] = None
    out[REVIEWER_COL] = None
    for code_id in ids:
        out[code_id] = tagged[code_id].astype(int)
    out[SUGGESTED_COL] = ["; ".join(c for c in ids if int(row[c]) == 1) for _, row in tagged.iterrows()]
    out[UNCERTAIN_COL] = text_values(tagged[UNCERTAIN_COL]) if UNCERTAIN_COL in tagged.columns else ""
    out[UNCERTAINTY_COL] = np.round(unsure, 4)
    out[MODEL_VERSION_COL] = model_version
    for j, column in enumerate(score_cols):
        out[column] = scores[:, j]
    used = set(out.columns) | {NEEDS_REVIEW_COL}
    for column in tagged.columns:
        if column not in used:
            out[column] = tagged[column]
    order = np.lexsort((-np.nan_to_num(unsure, nan=-1.0), ~has_text))
    return out.iloc[order].reset_index(drop=True)


def codebook_frame(codebook: Codebook) -> pd.DataFrame:
    """The ``codebook`` sheet: one row per code."""
    return pd.DataFrame([{
        "id": c.id, "label": c.label, "parent": c.parent or "", "definition": c.definition,
        "include": c.include, "exclude": c.exclude, "examples": " | ".join(c.examples),
    } for c in codebook.codes])


def write_review_sheet(frame: pd.DataFrame, codebook: Codebook, path: str | Path) -> Path:
    """Write a review workbook (see the module docstring) atomically.

    Parameters
    ----------
    frame : DataFrame
        From :func:`review_frame`.
    codebook : Codebook
    path : str or Path
        An ``.xlsx`` file.
    """
    return write_coding_workbook(frame, codebook, path, _INSTRUCTIONS, what="review sheet",
                                 reviewed_comment=_REVIEWED_COMMENT)


def write_coding_workbook(frame: pd.DataFrame, codebook: Codebook, path: str | Path, instructions: list[str],
                          what: str = "review sheet", reviewed_comment: str = _REVIEWED_COMMENT,
                          extra_sheets: dict[str, list[pd.DataFrame]] | None = None) -> Path:
    """Write a workbook in which people code answers, atomically: the review sheet and the audit sheet.

    Sheets: ``answers`` (``frame``, formatted by :func:`_format_answers`: 0/1 drop-downs on the code and
    ``reviewed`` columns, each code's definition on its header), ``codebook``, then ``extra_sheets`` in
    order (each a list of tables, written one below the other with a blank row between), then
    ``instructions`` (one line per row).

    Parameters
    ----------
    frame : DataFrame
        The answers: id and answer first (then ``evidence``, if shown), then ``reviewed``, ``reviewer`` and one
        column per code id.
    codebook : Codebook
    path : str or Path
        An ``.xlsx`` file.
    instructions : list of str
        Lines of the instructions sheet; the first is its title.
    what : str
        Names the workbook in the error for a path that is not ``.xlsx``.
    reviewed_comment : str
        The comment on the ``reviewed`` header: when to put 1, and what rows without 1 are taken for.
    extra_sheets : dict of str to list of DataFrame, optional
        Further sheets, e.g. the audit's ``design`` (its items, then its strata).
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font

    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        stem = what.split()[0]
        raise DataError(f"The {what} must be an .xlsx file; found '{path.name}'. Use --out {stem}.xlsx.")
    workbook = Workbook()
    workbook.remove(workbook.active)
    answers = add_sheet(workbook, ANSWERS_SHEET, frame, answer_col=str(frame.columns[1]))
    add_sheet(workbook, CODEBOOK_SHEET, codebook_frame(codebook))
    for title, (first, *rest) in (extra_sheets or {}).items():
        extra = add_sheet(workbook, title, first)
        for table in rest:
            extra.append([])
            warn_removed_characters(append_frame(extra, table), extra.title)
    notes = workbook.create_sheet(INSTRUCTIONS_SHEET)
    for line in instructions:
        notes.append([line])
    notes.column_dimensions["A"].width = 120
    notes["A1"].font = Font(bold=True)
    _format_answers(answers, frame, codebook, reviewed_comment)
    with atomic_output(path) as tmp:
        workbook.save(tmp)
    return path


def _format_answers(answers, frame: pd.DataFrame, codebook: Codebook, reviewed_comment: str) -> None:
    """Style the ``answers`` worksheet of a review workbook.

    Bold, frozen header; wrapped answers; a 0/1 drop-down on the code and ``reviewed`` columns, with
    1 shaded in the code columns; each code's label and definition (and what ``reviewed`` means) as
    a comment on its header.
    """
    from openpyxl.comments import Comment
    from openpyxl.formatting.rule import CellIsRule
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    columns = list(frame.columns)
    last = len(frame) + 1
    letter = {c: get_column_letter(j) for j, c in enumerate(columns, start=1)}
    bold = Font(bold=True)
    for cell in answers[1]:
        cell.font = bold
    answers.freeze_panes = "C2"
    text_letter = letter[columns[1]]
    answers.column_dimensions[text_letter].width = 70
    for (cell,) in answers.iter_rows(min_row=2, min_col=2, max_col=2):
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    if EVIDENCE_COL in letter:
        answers.column_dimensions[letter[EVIDENCE_COL]].width = 45
        answers[f"{letter[EVIDENCE_COL]}1"].comment = Comment(
            "The sentence of the answer that carried each code the model suggested.", "opm-nlp", width=320, height=60)

    binary = DataValidation(type="list", formula1='"0,1"', allow_blank=True, showErrorMessage=True,
                            errorTitle="0 or 1", error="Enter 1 (the code applies / row reviewed) or 0.")
    answers.add_data_validation(binary)
    shade = PatternFill(start_color="C6EFCE", end_color="C6EFCE", fill_type="solid")
    for code in codebook.codes:
        col = letter[code.id]
        binary.add(f"{col}2:{col}{max(last, 2)}")
        header = answers[f"{col}1"]
        header.alignment = Alignment(text_rotation=90, horizontal="center")
        header.comment = Comment(f"{code.label}: {code.definition}", "opm-nlp", width=320, height=160)
        answers.column_dimensions[col].width = 5
        answers.conditional_formatting.add(f"{col}2:{col}{max(last, 2)}",
                                           CellIsRule(operator="equal", formula=["1"], fill=shade))
    reviewed = letter[REVIEWED_COL]
    binary.add(f"{reviewed}2:{reviewed}{max(last, 2)}")
    answers[f"{reviewed}1"].comment = Comment(
        reviewed_comment, "opm-nlp", width=320, height=100)
    answers.column_dimensions[reviewed].width = 10
    answers.column_dimensions[letter[REVIEWER_COL]].width = 12
