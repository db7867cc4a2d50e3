"""A tagged or coded table as a REFI-QDA Project (``.qdpx``), for NVivo, ATLAS.ti, MAXQDA or QualCoder.

A ``.qdpx`` is a zip archive with ``project.qde`` (root ``<Project>`` in ``urn:QDA-XML:project:1.0``)
and the answers as plain-text files under ``sources/``. :func:`build_project` makes one text source
and one case per answer, the respondent's other columns as case variables, and each answer's codes
as codings by a human coder or by the model (:data:`HUMAN_USER`, :data:`MODEL_USER`);
:func:`write_qdpx` writes the archive and :func:`read_project_input` reads the table to export. Every
object gets a GUID derived from what it stands for (:func:`object_guid`, and
:func:`opm_nlp.codebook.qdc.code_guid` for codes), so the same input gives the same file byte for byte.

Examples
--------
>>> from opm_nlp.exchange.qdpx import read_project_input, write_qdpx
>>> frame, text_col, id_col = read_project_input("tagged.csv", codebook)   # doctest: +SKIP
>>> write_qdpx(frame, codebook, "wave.qdpx", text_col, id_col).sources    # doctest: +SKIP
"""

from __future__ import annotations

import logging
import re
import uuid
import warnings
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from lxml import etree

from opm_nlp.codebook.coded import default_columns, to_wide
from opm_nlp.codebook.codes import Codebook, first_few
from opm_nlp.codebook.qdc import GUID_NAMESPACE, add_codes, code_guid, origin_text, serialise, xml_text
from opm_nlp.columns import (
    CHANGED_COL,
    EVIDENCE_COL,
    EVIDENCE_SPANS_COL,
    MODEL_VERSION_COL,
    NEEDS_REVIEW_COL,
    REVIEWED_AT_COL,
    REVIEWED_COL,
    REVIEWED_SPANS_COL,
    REVIEWER_COL,
    SCORE_PREFIX,
    SUGGESTED_COL,
    UNCERTAIN_COL,
    human_coded_mask,
)
from opm_nlp.exceptions import DataError
from opm_nlp.io.spans import read_spans
from opm_nlp.io.tables import atomic_output, cell_text, read_table

logger = logging.getLogger(__name__)

PROJECT_NS = "urn:QDA-XML:project:1.0"
HUMAN_USER = "human coder"
MODEL_USER = "opm-nlp model suggestions"
NEEDS_REVIEW_SET = "opm-nlp: needs review"

_P = f"{{{PROJECT_NS}}}"
_INTEGER = re.compile(r"^-?(0|[1-9][0-9]*)$")


def object_guid(kind: str, key: str) -> str:
    """GUID of a project object: ``uuid5(GUID_NAMESPACE, f"{kind}:{key}")``.

    ``kind`` is ``source``, ``case``, ``selection``, ``coding``, ``user``, ``variable`` or ``set``;
    the colon keeps these apart from code GUIDs, since a code id has no colon.
    """
    return str(uuid.uuid5(GUID_NAMESPACE, f"{kind}:{key}"))


@dataclass
class ProjectSummary:
    """What :func:`write_qdpx` put in a project."""

    path: Path
    sources: int
    empty: int
    variables: list[str]
    human_codings: int
    model_codings: int
    needs_review: int = 0
    skipped_empty_codings: int = 0
    attributes: dict[str, str] = field(default_factory=dict)


def attribute_columns(frame: pd.DataFrame, codebook: Codebook, text_col: str, id_col: str) -> list[str]:
    """Columns of a tagged table that describe the respondent (wave, institution, role, ...).

    Everything except the id, the text, the code columns, the model's output columns and the
    review provenance columns.
    """
    skip = {id_col, text_col, *codebook.ids, SUGGESTED_COL, UNCERTAIN_COL, NEEDS_REVIEW_COL, REVIEWED_COL,
            REVIEWER_COL, REVIEWED_AT_COL, CHANGED_COL, MODEL_VERSION_COL, EVIDENCE_COL, EVIDENCE_SPANS_COL,
            REVIEWED_SPANS_COL}
    return [c for c in frame.columns if c not in skip and not str(c).startswith(SCORE_PREFIX)]


def read_project_input(
    path: str | Path,
    codebook: Codebook,
    text_col: str | None = None,
    id_col: str | None = None,
    encoding: str | None = None,
    sheet: str | None = None,
) -> tuple[pd.DataFrame, str, str]:
    """Read a tagged or coded table (CSV, XLSX or Parquet; ``sheet`` of an XLSX) for :func:`write_qdpx`.

    ``opm-nlp tag`` writes the id first and the text second, so those are the defaults for
    ``id_col`` and ``text_col`` (:func:`opm_nlp.codebook.coded.default_columns`).

    Returns
    -------
    frame : DataFrame
    text_col, id_col : str
        The columns used.

    Raises
    ------
    DataError
        If the file cannot be read, has fewer than two columns when a default is needed, or the id
        or text column is a code or score column.
    """
    frame = read_table(path, encoding=encoding, sheet=sheet)
    text_col, id_col = default_columns(frame, codebook, text_col, id_col, source=str(path))
    return frame, text_col, id_col


def _variable_type(values: Iterable[str]) -> str:
    present = [v for v in values if v != ""]
    return "Integer" if present and all(_INTEGER.match(v) for v in present) else "Text"


def build_project(
    tagged: pd.DataFrame,
    codebook: Codebook,
    text_col: str,
    id_col: str,
    name: str | None = None,
    source: str = "the table",
) -> tuple[bytes, dict[str, bytes], ProjectSummary]:
    """Build the ``project.qde`` document and source files of a REFI-QDA project.

    Parameters
    ----------
    tagged : DataFrame
        One row per answer with one 0/1 column per code id (a table from ``opm-nlp tag``, a
        reviewed table, or coded data in the wide format).
    codebook : Codebook
        The codes of the 0/1 columns.
    text_col, id_col : str
        Columns with the answer text and the response id.
    name : str, optional
        Project name shown in the QDA tool (default: the codebook's name).
    source : str
        File name used in error messages.

    Returns
    -------
    qde : bytes
        The ``project.qde`` XML.
    files : dict
        Archive path (``sources/<guid>.txt``) to UTF-8 text of each answer.
    summary : ProjectSummary
        Counts for the report (``path`` is left empty).

    Notes
    -----
    One TextSource and one Case per answer, both named by the response id, the case holding the
    respondent's attributes (:func:`attribute_columns`) as variable values. An answer's codes are
    Codings of PlainTextSelections, created by the user ``"human coder"`` where
    :func:`opm_nlp.columns.human_coded_mask` says a person coded the row, otherwise by
    ``"opm-nlp model suggestions"``: a suggestion over its evidence (``evidence_spans``), a person's
    code over the spans marked for it (``reviewed_spans``), else over the whole answer
    (:func:`coded_spans`); ``startPosition`` and ``endPosition`` count characters (Unicode code points)
    of the source's text, from 0, end exclusive. Answers flagged ``needs_review`` form a set.
    """
    missing = [c for c in codebook.ids if c not in tagged.columns]
    if missing:
        what = "no code columns" if len(missing) == len(codebook) else f"code column(s) {first_few(missing)} missing"
        raise DataError(
            f"{source}: {what}. A project export needs one 0/1 column per code id of "
            f"{codebook.source or 'the codebook'}, as in a table from 'opm-nlp tag'; tag the answers first, "
            f"or use the codebook the table was tagged with."
        )
    human = human_coded_mask(tagged)
    table = to_wide(tagged, codebook, text_col, id_col, format="wide", source=source)
    attributes = attribute_columns(tagged, codebook, text_col, id_col)
    values = {column: [cell_text(v) for v in tagged[column]] for column in attributes}
    types = {column: _variable_type(values[column]) for column in attributes}
    review = (pd.to_numeric(tagged[NEEDS_REVIEW_COL], errors="coerce").fillna(0).to_numpy() == 1
              if NEEDS_REVIEW_COL in tagged.columns else np.zeros(len(table), dtype=bool))

    root = etree.Element(f"{_P}Project", nsmap={None: PROJECT_NS}, name=xml_text(name or codebook.name),
                         origin=origin_text())
    users = etree.SubElement(root, f"{_P}Users")
    user_guid = {HUMAN_USER: object_guid("user", HUMAN_USER), MODEL_USER: object_guid("user", MODEL_USER)}
    for user_name, guid in user_guid.items():
        etree.SubElement(users, f"{_P}User", guid=guid, name=user_name)
    add_codes(etree.SubElement(etree.SubElement(root, f"{_P}CodeBook"), f"{_P}Codes"), codebook, PROJECT_NS)
    if attributes:
        variables = etree.SubElement(root, f"{_P}Variables")
        for column in attributes:
            etree.SubElement(variables, f"{_P}Variable", guid=object_guid("variable", str(column)),
                             name=xml_text(column), typeOfVariable=types[column])

    response_ids = table[id_col].tolist()
    _add_cases(root, response_ids, values, types)
    summary = ProjectSummary(path=Path(), sources=len(table), empty=0, variables=list(map(str, attributes)),
                             human_codings=0, model_codings=0, needs_review=int(review.sum()),
                             attributes=types)
    files = _add_sources(root, table, codebook, text_col, id_col, human, review, user_guid, summary)
    if review.any():
        _add_review_set(root, [response_ids[row] for row in np.flatnonzero(review)])
    etree.SubElement(root, f"{_P}Description").text = xml_text(
        f"Survey answers from {source}, coded against the codebook '{codebook.name}' "
        f"(fingerprint {codebook.fingerprint}) and exported by {origin_text()}. Codings by the user "
        f"'{HUMAN_USER}' come from people; codings by '{MODEL_USER}' are the model's suggestions."
    )
    if summary.skipped_empty_codings:
        warnings.warn(
            f"{source}: {summary.skipped_empty_codings} code(s) on empty answers left out (an empty "
            f"answer has no text to code).", stacklevel=2)
    return serialise(root), files, summary


def _add_cases(root: etree._Element, response_ids: list[str], values: dict[str, list[str]],
               types: dict[str, str]) -> None:
    """One ``<Case>`` per answer with its non-empty attribute values, pointing at its source."""
    cases = etree.SubElement(root, f"{_P}Cases")
    for row, response_id in enumerate(response_ids):
        case = etree.SubElement(cases, f"{_P}Case", guid=object_guid("case", response_id),
                                name=xml_text(response_id))
        for column, column_values in values.items():
            value = column_values[row]
            if value == "":
                continue
            variable_value = etree.SubElement(case, f"{_P}VariableValue")
            etree.SubElement(variable_value, f"{_P}VariableRef", targetGUID=object_guid("variable", str(column)))
            tag = "IntegerValue" if types[column] == "Integer" else "TextValue"
            etree.SubElement(variable_value, f"{_P}{tag}").text = xml_text(value)
        etree.SubElement(case, f"{_P}SourceRef", targetGUID=object_guid("source", response_id))


def _add_sources(root: etree._Element, table: pd.DataFrame, codebook: Codebook, text_col: str, id_col: str,
                 human: np.ndarray, review: np.ndarray, user_guid: dict[str, str],
                 summary: ProjectSummary) -> dict[str, bytes]:
    """One ``<TextSource>`` per answer with its codings; returns the source files, counts into ``summary``."""
    sources = etree.SubElement(root, f"{_P}Sources")
    codes = table[codebook.ids].to_numpy(dtype=int)
    files: dict[str, bytes] = {}
    for row, (response_id, text) in enumerate(zip(table[id_col].tolist(), table[text_col].tolist())):
        guid = object_guid("source", response_id)
        files[f"sources/{guid}.txt"] = text.encode("utf-8")
        text_source = etree.SubElement(sources, f"{_P}TextSource", guid=guid, name=xml_text(response_id),
                                       plainTextPath=f"internal://{guid}.txt")
        if review[row]:
            etree.SubElement(text_source, f"{_P}Description").text = "opm-nlp: needs review"
        code_ids = [codebook.ids[j] for j in np.flatnonzero(codes[row])]
        if not text:
            summary.empty += 1
            summary.skipped_empty_codings += len(code_ids)
            continue
        if not code_ids:
            continue
        user = HUMAN_USER if human[row] else MODEL_USER
        for (start, end), codes_here in coded_spans(table.iloc[row], text_col, code_ids, human[row]).items():
            whole = (start, end) == (0, len(text))  # keys of whole-answer selections as before spans existed
            where = "" if whole else f":{start}-{end}"
            selection = etree.SubElement(
                text_source, f"{_P}PlainTextSelection", guid=object_guid("selection", f"{response_id}:{user}{where}"),
                name=xml_text(response_id), startPosition=str(start), endPosition=str(end),
                creatingUser=user_guid[user],
            )
            for code_id in codes_here:
                coding = etree.SubElement(selection, f"{_P}Coding",
                                          guid=object_guid("coding", f"{response_id}:{code_id}:{user}{where}"),
                                          creatingUser=user_guid[user])
                etree.SubElement(coding, f"{_P}CodeRef", targetGUID=code_guid(code_id))
        if user == HUMAN_USER:
            summary.human_codings += len(code_ids)
        else:
            summary.model_codings += len(code_ids)
    return files


def coded_spans(row: pd.Series, text_col: str, code_ids: list[str], human: bool) -> dict[tuple[int, int], list[str]]:
    """Where each of a row's codes is coded: ``{(start, end): [code ids]}``, ordered by position.

    A model's suggestion is coded over its evidence (``evidence_spans``); a person's code over the spans
    marked for it (``reviewed_spans``); a code with neither over the whole answer. Positions count
    characters (code points) of the answer, end exclusive. ``row`` is a row of a checked table
    (:func:`~opm_nlp.io.responses.check_responses`, which refuses a spans cell that does not fit its answer).
    """
    text = row[text_col]
    column, nested = (REVIEWED_SPANS_COL, True) if human else (EVIDENCE_SPANS_COL, False)
    marked = read_spans(row[column], text, nested=nested) if column in row.index else {}
    out: dict[tuple[int, int], list[str]] = {}
    for code_id in code_ids:
        spans = marked.get(code_id) or [(0, len(text))]
        for span in ([spans] if isinstance(spans, tuple) else spans):
            if span[1] > span[0]:
                out.setdefault(tuple(span), []).append(code_id)
    return dict(sorted(out.items()))


def _add_review_set(root: etree._Element, response_ids: list[str]) -> None:
    """The set of answers flagged for review, by their sources."""
    sets = etree.SubElement(root, f"{_P}Sets")
    review_set = etree.SubElement(sets, f"{_P}Set", guid=object_guid("set", NEEDS_REVIEW_SET), name=NEEDS_REVIEW_SET)
    etree.SubElement(review_set, f"{_P}Description").text = (
        "Answers with a code scored near its threshold, or empty: check the suggestions.")
    for response_id in response_ids:
        etree.SubElement(review_set, f"{_P}MemberSource", targetGUID=object_guid("source", response_id))


def write_qdpx(
    tagged: pd.DataFrame,
    codebook: Codebook,
    path: str | Path,
    text_col: str,
    id_col: str,
    name: str | None = None,
    source: str = "the table",
) -> ProjectSummary:
    """Write a tagged or coded table as a REFI-QDA project (``.qdpx``), atomically.

    The archive holds ``project.qde`` and one UTF-8 text file per answer in ``sources/``; see
    :func:`build_project` for what goes in. Entries carry a fixed date, so the same table and
    codebook give the same file.
    """
    qde, files, summary = build_project(tagged, codebook, text_col, id_col, name=name, source=source)
    with atomic_output(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for member, data in [("project.qde", qde), *files.items()]:
                info = zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, data)
    summary.path = Path(path)
    return summary
