"""The codebook as a REFI-QDA Codebook (``.qdc``), the file NVivo, ATLAS.ti, MAXQDA and QualCoder exchange.

A ``.qdc`` is one XML document, root ``<CodeBook>`` in the namespace ``urn:QDA-XML:codebook:1.0``,
with the codes nested by hierarchy. :func:`write_qdc` writes one and :func:`read_qdc` reads one back
(also the older 0.4 namespace); :func:`write_codebook_yaml` saves what was read as house YAML, and
:func:`schema_errors` checks a document against the standard's XSDs in ``opm_nlp/schemas``. A code's
GUID is derived from its id (:func:`code_guid`), so it keeps its identity across survey waves and
repeated exports, and the same codebook gives the same file byte for byte. The XML helpers here
(:func:`add_codes`, :func:`xml_text`, :func:`serialise`, :func:`origin_text`) also build the codebook
part of a REFI-QDA project (:mod:`opm_nlp.exchange.qdpx`).

A code's ``<Description>`` carries its definition, then labelled lines that :func:`read_qdc` reads
back: ``Include:``, ``Exclude:``, ``Examples:`` (one ``- example`` per line), ``Keywords:`` and
``opm-nlp id:``. A description written in a QDA tool without those lines becomes the definition.

Examples
--------
>>> from opm_nlp import load_codebook
>>> from opm_nlp.codebook.qdc import read_qdc, write_qdc
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
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path

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
from opm_nlp.exceptions import CodebookError
from opm_nlp.io.tables import atomic_output

logger = logging.getLogger(__name__)

CODEBOOK_NS = "urn:QDA-XML:codebook:1.0"
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
#: The REFI-QDA XSDs, shipped as package data.
SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"

_LABELS = (("include", "Include:"), ("exclude", "Exclude:"), ("examples", "Examples:"),
           ("keywords", "Keywords:"), ("id", "opm-nlp id:"))
_RGB6 = re.compile(r"^#[0-9a-fA-F]{6}$")
_RGB3 = re.compile(r"^#[0-9a-fA-F]{3}$")
# Characters XML 1.0 cannot carry at all; answers pasted from other programs sometimes hold them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


# -- GUIDs and XML helpers ------------------------------------------------------------------------
def code_guid(code_id: str) -> str:
    """GUID of a code: ``uuid5(GUID_NAMESPACE, code_id)``, the same in every export and wave."""
    return str(uuid.uuid5(GUID_NAMESPACE, code_id))


def origin_text() -> str:
    """What the ``origin`` attribute of a written document says: ``opm-nlp <version>``."""
    try:
        return f"opm-nlp {importlib_metadata.version('opm-nlp')}"
    except importlib_metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "opm-nlp"


def xml_text(value: object) -> str:
    """``value`` as text XML 1.0 can carry: characters it cannot (control characters) are dropped."""
    return _NOT_XML.sub("", str(value))


def serialise(root: etree._Element) -> bytes:
    """An XML document as UTF-8 bytes with a declaration, indented."""
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _write_atomic(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it over ``path``."""
    with atomic_output(path) as tmp:
        write(tmp)
    return Path(path)


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


def add_codes(parent: etree._Element, codebook: Codebook, ns: str, parent_id: str | None = None) -> None:
    """Append the codes under ``parent_id`` (all, from the top) to ``parent`` as nested ``<Code>`` elements.

    Each has its label as ``name``, a GUID from its id (:func:`code_guid`), its colour, and a
    ``<Description>`` from :func:`describe`; ``ns`` is the namespace of the codebook or project document.
    """
    for code in codebook.children(parent_id):
        element = etree.SubElement(parent, f"{{{ns}}}Code", guid=code_guid(code.id),
                                   name=xml_text(code.label), isCodable="true")
        if code.color:
            element.set("color", code.color)
        etree.SubElement(element, f"{{{ns}}}Description").text = xml_text(describe(code))
        add_codes(element, codebook, ns, code.id)


def codebook_to_qdc(codebook: Codebook) -> bytes:
    """The codebook as a REFI-QDA Codebook document (namespace ``urn:QDA-XML:codebook:1.0``).

    Codes are nested by ``parent``; each has its label as ``name``, a GUID from its id
    (:func:`code_guid`), its colour, and a ``<Description>`` from :func:`describe`.
    """
    root = etree.Element(f"{{{CODEBOOK_NS}}}CodeBook", nsmap={None: CODEBOOK_NS}, origin=origin_text())
    add_codes(etree.SubElement(root, f"{{{CODEBOOK_NS}}}Codes"), codebook, CODEBOOK_NS)
    return serialise(root)


def write_qdc(codebook: Codebook, path: str | Path) -> Path:
    """Write ``codebook`` as a REFI-QDA Codebook file (``.qdc``), atomically."""
    data = codebook_to_qdc(codebook)
    return _write_atomic(path, lambda tmp: tmp.write_bytes(data))


# -- XML -> codebook ------------------------------------------------------------------------------
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
    root, ns, codes_element = _codebook_root(path)
    tree = _CodeTree(path, ns, _claimed_ids(codes_element, ns), no_definition(path.name))
    for element in codes_element.findall(f"{{{ns}}}Code"):
        tree.visit(element, None)

    origin = root.get("origin")
    codebook = Codebook.from_dict(
        {
            "name": name or path.stem,
            "version": "",
            "description": f"Imported from {path.name}" + (f" (exported by {origin})." if origin else "."),
            "codes": tree.codes,
        },
        source=str(path),
    )
    tree.warn()
    sets = root.find(f"{{{ns}}}Sets")
    if sets is not None and len(sets):
        logger.info("%s: %d code sets are not imported (opm-nlp codebooks have no sets)", path, len(sets))
    return codebook


def _codebook_root(path: Path) -> tuple[etree._Element, str, etree._Element]:
    """The root, namespace and ``<Codes>`` element of a REFI-QDA codebook file that has codes."""
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
    codes_element = root.find(f"{{{namespace}}}Codes")
    if codes_element is None or not codes_element.findall(f"{{{namespace}}}Code"):
        raise CodebookError(f"{path}: the codebook has no codes (no <Code> inside <Codes>); nothing to import.")
    return root, namespace, codes_element


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


def _claimed_ids(codes_element: etree._Element, ns: str) -> dict[etree._Element, str]:
    """Ids opm-nlp wrote (``opm-nlp id:`` lines), by element; a repeated id stays with its first code.

    They are reserved before any id is made from a name, so that a code named like one of them
    elsewhere in the file cannot take its id.
    """
    claimed: dict[etree._Element, str] = {}
    for element in codes_element.iter(f"{{{ns}}}Code"):
        marked = str(parse_description(element.findtext(f"{{{ns}}}Description") or "")["id"])
        if ID_RE.match(marked) and marked not in claimed.values():
            claimed[element] = marked
    return claimed


@dataclass
class _CodeTree:
    """The codes of a ``.qdc`` read depth-first into codebook dicts, and what the warnings report."""

    path: Path
    ns: str
    claimed: dict[etree._Element, str]
    placeholder: str
    codes: list[dict] = field(default_factory=list)
    taken: set[str] = field(default_factory=set)
    undefined: list[str] = field(default_factory=list)
    guid_mismatch: list[str] = field(default_factory=list)
    bad_colors: list[str] = field(default_factory=list)

    def visit(self, element: etree._Element, parent_id: str | None) -> None:
        """Read ``element`` (a ``<Code>``) as a code under ``parent_id``, then its children."""
        label = " ".join((element.get("name") or "").split())
        if not label:
            raise CodebookError(
                f"{self.path}: code #{len(self.codes) + 1} (guid {element.get('guid') or '-'}) has no name; "
                f"give it a name in your QDA tool and export again."
            )
        fields = parse_description(element.findtext(f"{{{self.ns}}}Description") or "")
        code_id = self.claimed.get(element) or unique_id(slugify(label), self.taken | set(self.claimed.values()))
        self.taken.add(code_id)
        if (element.get("guid") or "").strip("{}").lower() != code_guid(code_id):
            self.guid_mismatch.append(code_id)
        definition = str(fields["definition"])
        if not definition:
            self.undefined.append(code_id)
            definition = self.placeholder
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
            self.bad_colors.append(f"{code_id} ({color})")
        self.codes.append(raw)
        for child in element.findall(f"{{{self.ns}}}Code"):
            self.visit(child, code_id)

    def warn(self) -> None:
        """Warn (for the caller of :func:`read_qdc`) about missing definitions, colours and GUIDs."""
        path = self.path
        if self.undefined:
            warnings.warn(
                f"{path}: {len(self.undefined)} code(s) have no description {first_few(self.undefined)}; their "
                f"definition is '{self.placeholder}'. Write a definition for each before training or sharing the "
                f"codebook.",
                stacklevel=3,
            )
        if self.bad_colors:
            warnings.warn(f"{path}: colour(s) not in #rrggbb form left out: {first_few(self.bad_colors)}.",
                          stacklevel=3)
        if self.guid_mismatch:
            warnings.warn(
                f"{path}: {len(self.guid_mismatch)} of {len(self.codes)} code GUIDs are not kept: opm-nlp derives "
                f"a code's GUID from its id, so codes exported from this codebook get new GUIDs in your QDA tool.",
                stacklevel=3,
            )


def write_codebook_yaml(codebook: Codebook, path: str | Path, comment: str = "") -> Path:
    """Write ``codebook`` as opm-nlp codebook YAML, atomically, with an optional ``#`` comment header."""
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    text = header + codebook.to_yaml()
    return _write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


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
