"""Reading an audit sample for the report: answers drawn at random from a tagged wave and coded blind.

An audit measures the model; it does not train it. ``report --audit`` takes any coded file (wide, long or
delimited, as :func:`opm_nlp.codebook.coded.to_wide` reads) whose ids are ids of the tagged wave, made by
``opm-nlp review sample`` or coded elsewhere. :func:`read_audit` checks that the audit can stand for a
random sample of the answers nobody reviewed, and refuses in one line when it cannot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from opm_nlp.codebook.codes import Codebook
from opm_nlp.codebook.coded import to_wide
from opm_nlp.columns import AUDIT_COL, REVIEWED_COL
from opm_nlp.exceptions import DataError


@dataclass(frozen=True)
class Audit:
    """Human codes of an audit sample, by response id.

    Attributes
    ----------
    codes : DataFrame
        Index: response ids (as text) of the coded audit answers; one 0/1 column per code id.
    design : str or None
        The sample's design as the file records it (:data:`opm_nlp.columns.AUDIT_COL`), if it does.
    source : str
        The file's name, for messages.
    n_rows : int
        Answers in the file.
    notes : tuple of str
        Caveats for the report (e.g. a partly coded audit used on request).
    """

    codes: pd.DataFrame
    design: str | None
    source: str
    n_rows: int
    notes: tuple[str, ...] = ()


def _few(values, k: int = 5) -> str:
    values = [str(v) for v in values]
    return ", ".join(values[:k]) + (f", ... ({len(values)} in all)" if len(values) > k else "")


def read_audit(frame: pd.DataFrame, codebook: Codebook, tagged: pd.DataFrame, text_col: str, id_col: str, *,
               reviewed: np.ndarray, source: str = "the audit file", tagged_source: str = "the tagged table",
               partial: bool = False, metadata: dict | None = None, format: str = "auto",
               code_col: str | None = None) -> Audit:
    """Check an audit file against the tagged wave and return its human codes.

    Parameters
    ----------
    frame : DataFrame
        The audit file as read. Rows coded are those with ``reviewed`` = 1 when it has that column,
        else all rows.
    tagged : DataFrame
        The wave the report is about (wide, prepared), whose ``id_col`` the audit's ids must match.
    reviewed : bool array
        Rows of ``tagged`` that people reviewed; an audit answer may not be one of them.
    partial : bool
        Use the coded rows of a partly coded audit (a note states the caveat) instead of refusing it.
    metadata : dict, optional
        The model's metadata: an audit whose answers the model was trained on is refused.

    Raises
    ------
    DataError
        On ids not in the wave, repeated ids, audit answers that were reviewed, a partly coded audit
        without ``partial``, no coded answers, or answers the model was trained on.
    """
    if id_col not in frame.columns:
        raise DataError(f"{source} has no column '{id_col}' (the id column of {tagged_source}); the audit's ids must "
                        f"match the tagged wave's. Columns: {list(frame.columns)}.")
    frame = frame.copy()
    if text_col not in frame.columns:  # the wave holds the answers; an audit needs only ids and codes
        frame[text_col] = ""
    design = None
    if AUDIT_COL in frame.columns:
        designs = frame[AUDIT_COL].dropna().astype(str).str.strip()
        design = next((d for d in designs if d), None)
    ids = frame[id_col].astype(str).str.strip()
    known = set(tagged[id_col].astype(str).str.strip())
    unknown = [i for i in dict.fromkeys(ids) if i not in known]
    if unknown:
        raise DataError(f"{source}: {len(unknown)} id(s) are not in {tagged_source}: {_few(unknown)}. An audit is "
                        f"drawn from the wave it measures; pass the audit of this wave.")
    n_rows = int(ids.nunique())
    if REVIEWED_COL in frame.columns:
        coded_rows = pd.to_numeric(frame[REVIEWED_COL], errors="coerce").fillna(0).to_numpy() == 1
    else:
        coded_rows = np.ones(len(frame), bool)
    coded_ids = set(ids[coded_rows])
    notes = []
    if not coded_ids:
        raise DataError(f"{source}: none of its {n_rows} answers is marked coded ('{REVIEWED_COL}' = 1). Code the "
                        f"audit answers blind, then pass the file again.")
    if len(coded_ids) < n_rows:
        missing = n_rows - len(coded_ids)
        if not partial:
            raise DataError(f"{source}: {missing} of its {n_rows} answers are not coded yet ('{REVIEWED_COL}' is not "
                            f"1). Finish coding them, or pass --partial-audit to use the {len(coded_ids)} coded ones.")
        notes.append(f"The audit is partly coded: {len(coded_ids)} of {n_rows} answers, used as if random. "
                     f"If which answers got coded depended on the answers (e.g. the hard ones were left), the "
                     f"intervals may be off.")
    wide = to_wide(frame[coded_rows], codebook, text_col, id_col, format=format, code_col=code_col, source=source)
    codes = wide.set_index(wide[id_col].astype(str).str.strip())[codebook.ids].astype(int)
    if codes.index.duplicated().any():
        raise DataError(f"{source}: ids repeated: {_few(codes.index[codes.index.duplicated()].unique())}. An audit "
                        f"holds each answer once; remove the repeated rows.")
    tagged_ids = tagged[id_col].astype(str).str.strip().to_numpy()
    overlap = [i for i in tagged_ids[np.asarray(reviewed, bool)] if i in coded_ids]
    if overlap:
        raise DataError(f"{source}: {len(overlap)} audit answer(s) were reviewed in {tagged_source} ({_few(overlap)}). "
                        f"An audit is drawn from the answers nobody reviewed; draw it again with 'opm-nlp review "
                        f"sample' from the wave as it is now.")
    if metadata is not None:
        _check_not_trained_on(metadata, list(codes.index), source)
    return Audit(codes=codes, design=design, source=source, n_rows=n_rows, notes=tuple(notes))


def _check_not_trained_on(metadata: dict, ids: list[str], source: str) -> None:
    """Refuse audit answers the model learned from (when the model folder records its training ids)."""
    from opm_nlp.model.training_ids import trained_on

    seen = np.asarray(trained_on(metadata, ids), dtype=bool)
    if seen.any():
        found = [i for i, s in zip(ids, seen) if s]
        raise DataError(f"{source}: the model was trained on {len(found)} of the audit's answers ({_few(found)}); an "
                        f"audit measures the model only on answers it has not seen. Train without them (a file "
                        f"marked as an audit is left out by 'opm-nlp train'), or draw a new audit.")
