"""Exchange with QDA software (NVivo, ATLAS.ti, MAXQDA, QualCoder) through the REFI-QDA standard.

Two files of the standard:

* a **REFI-QDA Codebook** (``.qdc``): one XML document, root ``<CodeBook>`` in the namespace
  ``urn:QDA-XML:codebook:1.0``, with the codes nested by hierarchy;
* a **REFI-QDA Project** (``.qdpx``): a zip archive with ``project.qde`` (root ``<Project>`` in
  ``urn:QDA-XML:project:1.0``) and the answers as plain-text files under ``sources/``.

Every object gets a GUID derived from what it stands for (:func:`code_guid`, :func:`object_guid`),
so a code, a response or a case keeps its identity across survey waves and repeated exports, and
the same input gives the same file byte for byte.

A code's ``<Description>`` carries its definition, then labelled lines that :func:`read_qdc` reads
back: ``Include:``, ``Exclude:``, ``Examples:`` (one ``- example`` per line), ``Keywords:`` and
``opm-nlp id:``. A description written in a QDA tool without those lines becomes the definition.

Examples
--------
>>> from opm_nlp import load_codebook
>>> from opm_nlp.exchange.refi import read_qdc, write_qdc
>>> cb = load_codebook("codebook/opm_behavior_change.yaml")   # doctest: +SKIP
>>> write_qdc(cb, "opm.qdc")                                  # doctest: +SKIP
>>> read_qdc("opm.qdc").ids == cb.ids                         # doctest: +SKIP
True
"""

from __future__ import annotations

import logging
import re
import uuid
import warnings
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np
import pandas as pd
from lxml import etree

from opm_nlp.codebook.codes import (
    ID_RE,
    Code,
    Codebook,
    first_few,
    no_definition,
    slugify,
    unique_id,
)
from opm_nlp.exceptions import CodebookError, DataError
from opm_nlp.io.tables import atomic_output, cell_text

logger = logging.getLogger(__name__)

CODEBOOK_NS = "urn:QDA-XML:codebook:1.0"
PROJECT_NS = "urn:QDA-XML:project:1.0"
#: Namespaces of codebooks that :func:`read_qdc` accepts, with the standard version each stands for.
#: 0.4 is what ATLAS.ti and the first drafts of the standard wrote (``0:4``; ``0.4`` also seen).
CODEBOOK_NAMESPACES = {
    CODEBOOK_NS: "1.0",
    "urn:QDA-XML:codebook:0:4": "0.4",
    "urn:QDA-XML:codebook:0.4": "0.4",
}
#: Namespace UUID of every GUID opm-nlp writes: ``uuid5(NAMESPACE_URL, "urn:opm-nlp:refi-qda")``.
#: Never change it: GUIDs identify codes, answers and cases across exports.
GUID_NAMESPACE = uuid.UUID("e76aa574-a025-5806-b178-2181b5807176")
HUMAN_USER = "human coder"
MODEL_USER = "opm-nlp model suggestions"
NEEDS_REVIEW_SET = "opm-nlp: needs review"
SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"

_LABELS = (("include", "Include:"), ("exclude", "Exclude:"), ("examples", "Examples:"),
           ("keywords", "Keywords:"), ("id", "opm-nlp id:"))
_RGB6 = re.compile(r"^#[0-9a-fA-F]{6}$")
_RGB3 = re.compile(r"^#[0-9a-fA-F]{3}$")
_INTEGER = re.compile(r"^-?(0|[1-9][0-9]*)$")
# Characters XML 1.0 cannot carry at all; answers pasted from other programs sometimes hold them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


# -- GUIDs ----------------------------------------------------------------------------------------
def code_guid(code_id: str) -> str:
    """GUID of a code: ``uuid5(GUID_NAMESPACE, code_id)``, the same in every export and wave."""
    return str(uuid.uuid5(GUID_NAMESPACE, code_id))


def object_guid(kind: str, key: str) -> str:
    """GUID of any other object: ``uuid5(GUID_NAMESPACE, f"{kind}:{key}")``.

    ``kind`` is ``source``, ``case``, ``selection``, ``coding``, ``user``, ``variable`` or ``set``;
    the colon keeps these apart from code GUIDs, since a code id has no colon.
    """
    return str(uuid.uuid5(GUID_NAMESPACE, f"{kind}:{key}"))


def _origin() -> str:
    try:
        return f"opm-nlp {importlib_metadata.version('opm-nlp')}"
    except importlib_metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "opm-nlp"


def _xml_text(value: object) -> str:
    return _NOT_XML.sub("", str(value))


# -- writing files --------------------------------------------------------------------------------
def _write_atomic(path: str | Path, write) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it over ``path``."""
    with atomic_output(path) as tmp:
        write(tmp)
    return Path(path)


def _serialise(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# -- codebook -> XML ------------------------------------------------------------------------------
def describe(code: Code) -> str:
    """The ``<Description>`` text of a code: definition, notes, examples, keywords and id.

    :func:`parse_description` reads it back to the same fields.
    """
    lines = [code.definition, ""]
    if code.include:
        lines.append(f"Include: {code.include}")
    if code.exclude:
        lines.append(f"Exclude: {code.exclude}")
    if code.examples:
        lines.append("Examples:")
        lines.extend(f"- {' '.join(example.split())}" for example in code.examples)
    if code.keywords:
        lines.append("Keywords: " + "; ".join(code.keywords))
    lines.append(f"opm-nlp id: {code.id}")
    return "\n".join(lines)


def parse_description(text: str) -> dict[str, object]:
    """Split a ``<Description>`` into definition, include, exclude, examples, keywords and id.

    Text before the first labelled line is the definition; a description with no labelled lines is
    all definition. Labels are matched at the start of a line, ignoring case.
    """
    parts: dict[str, list[str]] = {key: [] for key in ("definition", "include", "exclude", "examples",
                                                       "keywords", "id")}
    current = "definition"
    for raw in (text or "").splitlines():
        line = raw.strip()
        for key, label in _LABELS:
            if line.lower().startswith(label.lower()):
                current = key
                line = line[len(label):].strip()
                break
        else:
            if current == "examples" and line.startswith("-"):
                parts["examples"].append(line[1:].strip())
                continue
            if current == "examples" and line and parts["examples"]:
                parts["examples"][-1] += " " + line  # a wrapped example line
                continue
        if line:
            parts[current].append(line)
    keywords = [k.strip() for k in "; ".join(parts["keywords"]).replace(",", ";").split(";")]
    return {
        "definition": " ".join(" ".join(parts["definition"]).split()),
        "include": " ".join(parts["include"]),
        "exclude": " ".join(parts["exclude"]),
        "examples": [e for e in parts["examples"] if e],
        "keywords": [k for k in keywords if k],
        "id": parts["id"][0] if parts["id"] else "",
    }


def _add_codes(parent: etree._Element, codebook: Codebook, ns: str, parent_id: str | None = None) -> None:
    for code in codebook.children(parent_id):
        element = etree.SubElement(parent, f"{{{ns}}}Code", guid=code_guid(code.id),
                                   name=_xml_text(code.label), isCodable="true")
        if code.color:
            element.set("color", code.color)
        etree.SubElement(element, f"{{{ns}}}Description").text = _xml_text(describe(code))
        _add_codes(element, codebook, ns, code.id)


def codebook_to_qdc(codebook: Codebook) -> bytes:
    """The codebook as a REFI-QDA Codebook document (namespace ``urn:QDA-XML:codebook:1.0``).

    Codes are nested by ``parent``; each has its label as ``name``, a GUID from its id
    (:func:`code_guid`), its colour, and a ``<Description>`` from :func:`describe`.
    """
    root = etree.Element(f"{{{CODEBOOK_NS}}}CodeBook", nsmap={None: CODEBOOK_NS}, origin=_origin())
    _add_codes(etree.SubElement(root, f"{{{CODEBOOK_NS}}}Codes"), codebook, CODEBOOK_NS)
    return _serialise(root)


def write_qdc(codebook: Codebook, path: str | Path) -> Path:
    """Write ``codebook`` as a REFI-QDA Codebook file (``.qdc``), atomically."""
    data = codebook_to_qdc(codebook)
    return _write_atomic(path, lambda tmp: tmp.write_bytes(data))


# -- XML -> codebook ------------------------------------------------------------------------------
def _parse_xml(data: bytes, source: str, expected: str, error=CodebookError) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise error(f"{source}: not an XML file ({exc.msg}); expected {expected}.") from None
    if root is None:
        raise error(f"{source}: the file is empty; expected {expected}.")
    return root


def _local(tag: object) -> tuple[str, str]:
    qname = etree.QName(tag)
    return qname.namespace or "", qname.localname


def read_qdc(path: str | Path, name: str | None = None) -> Codebook:
    """Read a REFI-QDA Codebook (``.qdc``, namespace 1.0 or 0.4) into a :class:`Codebook`.

    Ids come from the ``opm-nlp id:`` line of a code's description when a file was written by
    opm-nlp, otherwise from its name as a snake_case slug, made unique (``other``, ``other_2``). The
    description gives the definition and notes (:func:`parse_description`). A code without a
    definition gets ``"(no definition in FILE)"`` and a warning, since opm-nlp needs one per code.

    Parameters
    ----------
    path : str or Path
        The ``.qdc`` file.
    name : str, optional
        Name of the codebook (default: the file name without extension); the format has none.

    Raises
    ------
    CodebookError
        If the file is missing, not XML, not a REFI-QDA codebook, or has no codes.
    """
    path = Path(path)
    expected = ("a REFI-QDA codebook (.qdc) exported from NVivo, ATLAS.ti, MAXQDA or QualCoder")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CodebookError(f"REFI-QDA codebook not found: {path}.") from None
    except IsADirectoryError:
        raise CodebookError(f"{path} is a folder; expected {expected}.") from None
    except OSError as exc:
        raise CodebookError(f"Cannot read {path}: {exc.strerror}.") from None
    root = _parse_xml(data, str(path), expected)
    namespace, local = _local(root.tag)
    if local != "CodeBook" or namespace not in CODEBOOK_NAMESPACES:
        found = f"<{local}> in namespace '{namespace}'" if namespace else f"<{local}> with no namespace"
        hint = (" That is a REFI-QDA project; export the codebook alone (.qdc) from your QDA tool."
                if local == "Project" else " Export the codebook from your QDA tool as 'REFI-QDA Codebook (.qdc)'.")
        raise CodebookError(
            f"{path}: expected a REFI-QDA codebook, root <CodeBook> in namespace '{CODEBOOK_NS}' "
            f"(or the older 'urn:QDA-XML:codebook:0:4'), found {found}.{hint}"
        )
    ns = namespace
    codes_element = root.find(f"{{{ns}}}Codes")
    top = [] if codes_element is None else codes_element.findall(f"{{{ns}}}Code")
    if not top:
        raise CodebookError(f"{path}: the codebook has no codes (no <Code> inside <Codes>); nothing to import.")

    placeholder = no_definition(path.name)
    taken: set[str] = set()
    raw_codes: list[dict] = []
    undefined: list[str] = []
    guid_mismatch: list[str] = []
    bad_colors: list[str] = []

    def visit(element: etree._Element, parent_id: str | None, number: list[int]) -> None:
        number[0] += 1
        label = " ".join((element.get("name") or "").split())
        if not label:
            raise CodebookError(
                f"{path}: code #{number[0]} (guid {element.get('guid') or '-'}) has no name; give it a "
                f"name in your QDA tool and export again."
            )
        fields = parse_description(element.findtext(f"{{{ns}}}Description") or "")
        code_id = claimed.get(element) or unique_id(slugify(label), taken | set(claimed.values()))
        taken.add(code_id)
        if (element.get("guid") or "").strip("{}").lower() != code_guid(code_id):
            guid_mismatch.append(code_id)
        definition = str(fields["definition"])
        if not definition:
            undefined.append(code_id)
            definition = placeholder
        raw = {"id": code_id, "label": label, "definition": definition}
        for key in ("include", "exclude", "examples", "keywords"):
            if fields[key]:
                raw[key] = fields[key]
        if parent_id is not None:
            raw["parent"] = parent_id
        color = (element.get("color") or "").strip()
        if _RGB3.match(color):
            color = "#" + "".join(ch * 2 for ch in color[1:])
        if _RGB6.match(color):
            raw["color"] = color
        elif color:
            bad_colors.append(f"{code_id} ({color})")
        raw_codes.append(raw)
        for child in element.findall(f"{{{ns}}}Code"):
            visit(child, code_id, number)

    # Ids opm-nlp wrote ("opm-nlp id:" lines) are reserved first, so that a code named like one of
    # them elsewhere in the file cannot take its id; a repeated id stays with its first code.
    claimed: dict[etree._Element, str] = {}
    for element in codes_element.iter(f"{{{ns}}}Code"):
        marked = str(parse_description(element.findtext(f"{{{ns}}}Description") or "")["id"])
        if ID_RE.match(marked) and marked not in claimed.values():
            claimed[element] = marked
    counter = [0]
    for element in top:
        visit(element, None, counter)

    origin = root.get("origin")
    codebook = Codebook.from_dict(
        {
            "name": name or path.stem,
            "version": "",
            "description": f"Imported from {path.name}" + (f" (exported by {origin})." if origin else "."),
            "codes": raw_codes,
        },
        source=str(path),
    )
    if undefined:
        warnings.warn(
            f"{path}: {len(undefined)} code(s) have no description {first_few(undefined)}; their definition "
            f"is '{placeholder}'. Write a definition for each before training or sharing the codebook.",
            stacklevel=2,
        )
    if bad_colors:
        warnings.warn(f"{path}: colour(s) not in #rrggbb form left out: {first_few(bad_colors)}.", stacklevel=2)
    if guid_mismatch:
        warnings.warn(
            f"{path}: {len(guid_mismatch)} of {len(raw_codes)} code GUIDs are not kept: opm-nlp derives a "
            f"code's GUID from its id, so codes exported from this codebook get new GUIDs in your QDA tool.",
            stacklevel=2,
        )
    sets = root.find(f"{{{ns}}}Sets")
    if sets is not None and len(sets):
        logger.info("%s: %d code sets are not imported (opm-nlp codebooks have no sets)", path, len(sets))
    return codebook


def write_codebook_yaml(codebook: Codebook, path: str | Path, comment: str = "") -> Path:
    """Write ``codebook`` as opm-nlp codebook YAML, atomically, with an optional ``#`` comment header."""
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    text = header + codebook.to_yaml()
    return _write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


# -- tagged table -> project ----------------------------------------------------------------------
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
    from opm_nlp.columns import NEEDS_REVIEW_COL, SCORE_PREFIX, SUGGESTED_COL, UNCERTAIN_COL
    from opm_nlp.columns import (
        CHANGED_COL,
        MODEL_VERSION_COL,
        REVIEWED_AT_COL,
        REVIEWED_COL,
        REVIEWER_COL,
    )

    skip = {id_col, text_col, *codebook.ids, SUGGESTED_COL, UNCERTAIN_COL, NEEDS_REVIEW_COL, REVIEWED_COL,
            REVIEWER_COL, REVIEWED_AT_COL, CHANGED_COL, MODEL_VERSION_COL}
    return [c for c in frame.columns if c not in skip and not str(c).startswith(SCORE_PREFIX)]


def read_tagged(
    path: str | Path,
    text_col: str | None = None,
    id_col: str | None = None,
    encoding: str | None = None,
) -> tuple[pd.DataFrame, str, str]:
    """Read a tagged or coded table (CSV, XLSX or Parquet) for :func:`write_qdpx`.

    ``opm-nlp tag`` writes the id first and the text second, so those are the defaults for
    ``id_col`` and ``text_col``.

    Returns
    -------
    frame : DataFrame
    text_col, id_col : str
        The columns used.
    """
    from opm_nlp.io.tables import read_table

    frame = read_table(path, encoding=encoding)
    if (text_col is None or id_col is None) and len(frame.columns) < 2:
        raise DataError(
            f"{path}: expected at least an id and a text column, found {list(frame.columns)}. "
            f"Pass --id-col and --text-col."
        )
    return frame, text_col or str(frame.columns[1]), id_col or str(frame.columns[0])


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
    Codings of one PlainTextSelection over the whole answer, created by the user ``"human coder"``
    where :func:`opm_nlp.columns.human_coded_mask` says a person coded the row, otherwise by
    ``"opm-nlp model suggestions"``. Answers flagged ``needs_review`` form a set.
    """
    from opm_nlp.columns import NEEDS_REVIEW_COL
    from opm_nlp.columns import human_coded_mask
    from opm_nlp.codebook.coded import to_wide

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

    P = f"{{{PROJECT_NS}}}"
    root = etree.Element(f"{P}Project", nsmap={None: PROJECT_NS}, name=_xml_text(name or codebook.name),
                         origin=_origin())
    users = etree.SubElement(root, f"{P}Users")
    user_guid = {HUMAN_USER: object_guid("user", HUMAN_USER), MODEL_USER: object_guid("user", MODEL_USER)}
    for user_name, guid in user_guid.items():
        etree.SubElement(users, f"{P}User", guid=guid, name=user_name)
    _add_codes(etree.SubElement(etree.SubElement(root, f"{P}CodeBook"), f"{P}Codes"), codebook, PROJECT_NS)
    if attributes:
        variables = etree.SubElement(root, f"{P}Variables")
        for column in attributes:
            etree.SubElement(variables, f"{P}Variable", guid=object_guid("variable", str(column)),
                             name=_xml_text(column), typeOfVariable=types[column])

    response_ids = table[id_col].tolist()
    texts = table[text_col].tolist()
    codes = table[codebook.ids].to_numpy(dtype=int)
    review = (pd.to_numeric(tagged[NEEDS_REVIEW_COL], errors="coerce").fillna(0).to_numpy() == 1
              if NEEDS_REVIEW_COL in tagged.columns else np.zeros(len(table), dtype=bool))

    cases = etree.SubElement(root, f"{P}Cases")
    for row, response_id in enumerate(response_ids):
        case = etree.SubElement(cases, f"{P}Case", guid=object_guid("case", response_id),
                                name=_xml_text(response_id))
        for column in attributes:
            value = values[column][row]
            if value == "":
                continue
            variable_value = etree.SubElement(case, f"{P}VariableValue")
            etree.SubElement(variable_value, f"{P}VariableRef", targetGUID=object_guid("variable", str(column)))
            tag = "IntegerValue" if types[column] == "Integer" else "TextValue"
            etree.SubElement(variable_value, f"{P}{tag}").text = _xml_text(value)
        etree.SubElement(case, f"{P}SourceRef", targetGUID=object_guid("source", response_id))

    sources = etree.SubElement(root, f"{P}Sources")
    files: dict[str, bytes] = {}
    summary = ProjectSummary(path=Path(), sources=len(table), empty=0, variables=list(map(str, attributes)),
                             human_codings=0, model_codings=0, needs_review=int(review.sum()),
                             attributes=types)
    for row, (response_id, text) in enumerate(zip(response_ids, texts)):
        guid = object_guid("source", response_id)
        files[f"sources/{guid}.txt"] = text.encode("utf-8")
        text_source = etree.SubElement(sources, f"{P}TextSource", guid=guid, name=_xml_text(response_id),
                                       plainTextPath=f"internal://{guid}.txt")
        if review[row]:
            etree.SubElement(text_source, f"{P}Description").text = "opm-nlp: needs review"
        code_ids = [codebook.ids[j] for j in np.flatnonzero(codes[row])]
        if not text:
            summary.empty += 1
            summary.skipped_empty_codings += len(code_ids)
            continue
        if not code_ids:
            continue
        user = HUMAN_USER if human[row] else MODEL_USER
        selection = etree.SubElement(
            text_source, f"{P}PlainTextSelection", guid=object_guid("selection", f"{response_id}:{user}"),
            name=_xml_text(response_id), startPosition="0", endPosition=str(len(text)),
            creatingUser=user_guid[user],
        )
        for code_id in code_ids:
            coding = etree.SubElement(selection, f"{P}Coding",
                                      guid=object_guid("coding", f"{response_id}:{code_id}:{user}"),
                                      creatingUser=user_guid[user])
            etree.SubElement(coding, f"{P}CodeRef", targetGUID=code_guid(code_id))
        if user == HUMAN_USER:
            summary.human_codings += len(code_ids)
        else:
            summary.model_codings += len(code_ids)

    if review.any():
        sets = etree.SubElement(root, f"{P}Sets")
        review_set = etree.SubElement(sets, f"{P}Set", guid=object_guid("set", NEEDS_REVIEW_SET),
                                      name=NEEDS_REVIEW_SET)
        etree.SubElement(review_set, f"{P}Description").text = (
            "Answers with a code scored near its threshold, or empty: check the suggestions.")
        for row in np.flatnonzero(review):
            etree.SubElement(review_set, f"{P}MemberSource", targetGUID=object_guid("source", response_ids[row]))
    etree.SubElement(root, f"{P}Description").text = _xml_text(
        f"Survey answers from {source}, coded against the codebook '{codebook.name}' "
        f"(fingerprint {codebook.fingerprint}) and exported by {_origin()}. Codings by the user "
        f"'{HUMAN_USER}' come from people; codings by '{MODEL_USER}' are the model's suggestions."
    )
    if summary.skipped_empty_codings:
        warnings.warn(
            f"{source}: {summary.skipped_empty_codings} code(s) on empty answers left out (an empty "
            f"answer has no text to code).", stacklevel=2)
    return _serialise(root), files, summary


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

    def write(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for member, data in [("project.qde", qde), *files.items()]:
                info = zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, data)

    summary.path = _write_atomic(path, write)
    return summary


# -- checking against the standard's schemas ------------------------------------------------------
def schema_errors(document: bytes, kind: str) -> list[str]:
    """Check a document against the REFI-QDA XSD shipped in ``opm_nlp/schemas``.

    Parameters
    ----------
    document : bytes
        A ``.qdc`` document or a ``project.qde``.
    kind : {'codebook', 'project'}
        Which schema.

    Returns
    -------
    list of str
        One line per violation (``line N: message``); empty when the document is valid.
    """
    files = {"codebook": "Codebook.xsd", "project": "Project.xsd"}
    if kind not in files:
        raise ValueError(f"kind must be one of {list(files)}, got {kind!r}")
    schema = etree.XMLSchema(etree.parse(str(SCHEMA_DIR / files[kind])))
    tree = etree.fromstring(document, etree.XMLParser(resolve_entities=False, no_network=True))
    if schema.validate(tree):
        return []
    return [f"line {error.line}: {error.message}" for error in schema.error_log]
