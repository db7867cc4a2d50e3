"""The codebook: themes (codes) as data, read from YAML and checked.

A codebook file looks like::

    name: OPM behaviour change
    version: "1.0"
    description: Changes mentors report after the OPM module.
    codes:
      - id: aligning_expectations
        label: Aligning expectations
        definition: The mentor discusses and aligns expectations with the mentee.
        keywords: [expect]
      - id: relationship_phases
        label: Phases of the relationship
        parent: relationship_attention
        definition: ...

Examples
--------
>>> from opm_nlp import load_codebook
>>> cb = load_codebook("codebook/opm_behavior_change.yaml")  # doctest: +SKIP
>>> cb.ids[:2]  # doctest: +SKIP
['aligning_expectations', 'relationship_attention']
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from opm_nlp.exceptions import CodebookError
from opm_nlp.io.strict_yaml import compose_yaml, load_yaml

CODE_KEYS = ("id", "label", "definition", "include", "exclude", "examples", "keywords", "parent", "color")
TOP_KEYS = ("name", "version", "description", "codes")
ID_RE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class Code:
    """One theme of a codebook.

    Parameters
    ----------
    id : str
        Snake-case identifier; also the name of the code's 0/1 column in every table.
    label : str
        Name shown to people.
    definition : str
        What the code covers.
    include, exclude : str
        Notes for coders on borderline cases.
    examples : tuple of str
        Short example answers that carry the code.
    keywords : tuple of str
        Word stems (or phrases of stems) for the stem-word query method.
    parent : str or None
        Id of the parent code in the hierarchy.
    color : str or None
        ``#rrggbb`` colour used in review tools and charts.
    """

    id: str
    label: str
    definition: str
    include: str = ""
    exclude: str = ""
    examples: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    parent: str | None = None
    color: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the code as a plain dict, leaving out empty optional fields."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if value in ("", (), None) and key not in ("id", "label", "definition"):
                continue
            out[key] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True)
class Codebook:
    """An ordered set of codes with an optional hierarchy.

    Build one with :func:`load_codebook` or :meth:`Codebook.from_dict`, which validate it.
    """

    name: str
    codes: tuple[Code, ...]
    version: str = ""
    description: str = ""
    source: str = field(default="", compare=False)

    @property
    def ids(self) -> list[str]:
        """Code ids in codebook order: the order of the 0/1 columns everywhere."""
        return [code.id for code in self.codes]

    @property
    def labels(self) -> dict[str, str]:
        """Map from code id to label."""
        return {code.id: code.label for code in self.codes}

    def __getitem__(self, code_id: str) -> Code:
        for code in self.codes:
            if code.id == code_id:
                return code
        raise KeyError(code_id)

    def __contains__(self, code_id: object) -> bool:
        return any(code.id == code_id for code in self.codes)

    def __len__(self) -> int:
        return len(self.codes)

    def children(self, code_id: str | None) -> list[Code]:
        """Codes whose parent is ``code_id`` (``None`` gives the top-level codes)."""
        return [code for code in self.codes if code.parent == code_id]

    def ancestors(self, code_id: str) -> list[str]:
        """Ids of the parents of ``code_id``, nearest first."""
        out = []
        parent = self[code_id].parent
        while parent is not None:
            out.append(parent)
            parent = self[parent].parent
        return out

    def examples(self) -> list[tuple[str, str]]:
        """``(text, code id)`` pairs the codebook itself offers as examples of its codes.

        Each code's examples, and its label with its definition: what a coder reads before coding (the
        label alone where an importer left a placeholder for a missing definition).
        """
        pairs = []
        for code in self.codes:
            pairs += [(text, code.id) for text in code.examples if text.strip()]
            pairs.append((f"{code.label}. {code.definition}" if has_definition(code) else code.label, code.id))
        return pairs

    def to_dict(self) -> dict[str, Any]:
        """Return the codebook as the plain structure of its YAML file."""
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "codes": [code.to_dict() for code in self.codes],
        }

    @property
    def fingerprint(self) -> str:
        """A stable hash of the codebook's content (not its comments or formatting).

        A model records the fingerprint of the codebook it was trained with; a changed code id,
        definition, example or keyword gives a different fingerprint.
        """
        canonical = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    def to_yaml(self) -> str:
        """Serialise to YAML text that :func:`load_codebook` reads back to an equal codebook."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=100)

    @classmethod
    def from_dict(cls, data: Any, source: str = "codebook", lines: dict[int, int | str] | None = None) -> Codebook:
        """Validate a parsed codebook structure and build a :class:`Codebook`.

        Parameters
        ----------
        data : dict
            The parsed YAML.
        source : str
            File name used in error messages.
        lines : dict, optional
            Where each entry of ``codes`` is, by index, for error messages: a line number, or a text
            such as ``"row 4"``.
        """
        lines = lines or {}
        if not isinstance(data, dict):
            raise CodebookError(
                f"{source}: expected a mapping with keys {list(TOP_KEYS)}, found {type(data).__name__}."
            )
        unknown = sorted(set(data) - set(TOP_KEYS))
        if unknown:
            raise CodebookError(
                f"{source}: unknown top-level key(s) {unknown}. Allowed: {list(TOP_KEYS)}."
            )
        if not data.get("name"):
            raise CodebookError(f"{source}: the codebook needs a 'name'.")
        raw_codes = data.get("codes")
        if not isinstance(raw_codes, list) or not raw_codes:
            raise CodebookError(f"{source}: 'codes' must be a non-empty list of codes.")

        codes: list[Code] = []
        seen: dict[str, str] = {}
        for index, raw in enumerate(raw_codes):
            place = lines.get(index)
            where = f"{source}, code #{index + 1}" + (f" (line {place})" if isinstance(place, int)
                                                      else f" ({place})" if place else "")
            codes.append(_parse_code(raw, where))
            code_id = codes[-1].id
            if code_id in seen:
                raise CodebookError(f"{where}: duplicate code id '{code_id}' (first defined at {seen[code_id]}).")
            seen[code_id] = where

        ids = {code.id for code in codes}
        for index, code in enumerate(codes):
            if code.parent is not None and code.parent not in ids:
                raise CodebookError(
                    f"{seen[code.id]}: code '{code.id}' has unknown parent '{code.parent}'. "
                    f"Use one of the code ids, or remove 'parent'."
                )
        parents = {code.id: code.parent for code in codes}
        for code in codes:
            path = [code.id]
            parent = code.parent
            while parent is not None:
                if parent in path:
                    cycle = " -> ".join(path[path.index(parent):] + [parent])
                    raise CodebookError(f"{source}: the code hierarchy has a cycle: {cycle}.")
                path.append(parent)
                parent = parents[parent]

        return cls(
            name=str(data["name"]),
            version=str(data.get("version") or ""),
            description=str(data.get("description") or "").strip(),
            codes=tuple(codes),
            source=source,
        )


def slugify(name: str) -> str:
    """A snake_case code id from a code name: ``"Goal-setting (SMART)"`` -> ``"goal_setting_smart"``."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")
    if not slug:
        return "code"
    return slug if slug[0].isalpha() else f"code_{slug}"


def unique_id(candidate: str, taken: set[str]) -> str:
    """``candidate``, or ``candidate_2``, ``candidate_3``, ... : the first not in ``taken``."""
    if candidate not in taken:
        return candidate
    number = 2
    while f"{candidate}_{number}" in taken:
        number += 1
    return f"{candidate}_{number}"


def no_definition(source_name: str) -> str:
    """The definition importers give a code that came without one: ``"(no definition in FILE)"``."""
    return f"(no definition in {source_name})"


def has_definition(code: Code) -> bool:
    """False for an empty definition or the placeholder of :func:`no_definition`."""
    return bool(code.definition.strip()) and not _NO_DEFINITION.match(code.definition)


_NO_DEFINITION = re.compile(r"^\(no definition in .+\)$")


def first_few(items: list[str], limit: int = 5) -> str:
    """``[a, b, c, d, e, ... 3 more]``: a list for a message, cut short."""
    shown = ", ".join(items[:limit])
    return f"[{shown}{f', ... {len(items) - limit} more' if len(items) > limit else ''}]"


def _as_text_list(value: Any, key: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise CodebookError(f"{where}: '{key}' must be a list of strings, found {value!r}.")
    return tuple(str(v).strip() for v in value if str(v).strip())


def _parse_code(raw: Any, where: str) -> Code:
    if not isinstance(raw, dict):
        raise CodebookError(f"{where}: expected a mapping with at least id, label, definition; found {raw!r}.")
    unknown = sorted(set(raw) - set(CODE_KEYS))
    if unknown:
        raise CodebookError(f"{where}: unknown key(s) {unknown}. Allowed: {list(CODE_KEYS)}.")
    code_id = raw.get("id")
    if not isinstance(code_id, str) or not code_id:
        raise CodebookError(f"{where}: missing 'id'.")
    if not ID_RE.match(code_id):
        raise CodebookError(
            f"{where}: code id '{code_id}' is not snake_case (lower-case letters, digits and underscores, "
            f"starting with a letter), e.g. 'aligning_expectations'."
        )
    where = f"{where} '{code_id}'"
    for key in ("label", "definition"):
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip():
            raise CodebookError(f"{where}: missing '{key}'. Every code needs a label and a definition.")
    color = raw.get("color")
    if color is not None and not (isinstance(color, str) and _COLOR_RE.match(color)):
        raise CodebookError(f"{where}: 'color' must look like '#1f77b4', found {color!r}.")
    parent = raw.get("parent")
    if parent is not None and not isinstance(parent, str):
        raise CodebookError(f"{where}: 'parent' must be a code id, found {parent!r}.")
    return Code(
        id=code_id,
        label=raw["label"].strip(),
        definition=" ".join(raw["definition"].split()),
        include=" ".join(str(raw.get("include") or "").split()),
        exclude=" ".join(str(raw.get("exclude") or "").split()),
        examples=_as_text_list(raw.get("examples"), "examples", where),
        keywords=tuple(k.lower() for k in _as_text_list(raw.get("keywords"), "keywords", where)),
        parent=parent or None,
        color=color,
    )


def _code_lines(text: str) -> dict[int, int]:
    """Line number (1-based) of each entry of the top-level ``codes`` list."""
    try:
        root = compose_yaml(text)
    except yaml.YAMLError:
        return {}
    if not isinstance(root, yaml.MappingNode):
        return {}
    for key, value in root.value:
        if key.value == "codes" and isinstance(value, yaml.SequenceNode):
            return {i: node.start_mark.line + 1 for i, node in enumerate(value.value)}
    return {}


def parse_codebook(text: str, source: str = "codebook") -> Codebook:
    """Parse and validate codebook YAML text.

    Plain YAML only: anchors, aliases, a key repeated in one mapping and deep nesting are refused
    (see :mod:`opm_nlp.io.strict_yaml`).
    """
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise CodebookError(f"{source}: invalid YAML{at}: {problem}.") from None
    return Codebook.from_dict(data, source=source, lines=_code_lines(text))


IMPORTABLE = {".qdc": "a REFI-QDA codebook", ".xlsx": "a spreadsheet", ".xlsm": "a spreadsheet",
              ".csv": "a table", ".tsv": "a table", ".parquet": "a table"}  # what 'opm-nlp codebook import' reads


def load_codebook(path: str | Path) -> Codebook:
    """Read and validate a codebook YAML file.

    Parameters
    ----------
    path : str or Path
        The YAML file.

    Returns
    -------
    Codebook

    Raises
    ------
    CodebookError
        If the file is missing, is not valid YAML, or breaks a rule of the schema; the message names
        the file, the line or code, and what to change.
    """
    path = Path(path)
    if path.suffix.lower() in IMPORTABLE:
        raise CodebookError(
            f"{path}: a codebook is read from YAML; this is {IMPORTABLE[path.suffix.lower()]}. Convert it once "
            f"with: opm-nlp codebook import {path} --out codebook/{slugify(path.stem)}.yaml, then use that file.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CodebookError(f"Codebook file not found: {path}.") from None
    except UnicodeDecodeError:
        raise CodebookError(f"{path}: not UTF-8 text; save the codebook as UTF-8 YAML.") from None
    except OSError as exc:
        raise CodebookError(f"Cannot read codebook {path}: {exc.strerror}.") from None
    return parse_codebook(text, source=str(path))
