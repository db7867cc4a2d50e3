"""Spans of an answer's text, as the ``evidence_spans`` and ``reviewed_spans`` columns hold them.

Offsets count Unicode code points (Python's ``str`` indices) into the answer as written in the same
row, end exclusive. Label Studio 1.23 counts Text regions in code points too (its editor; measured in a
browser by ``tests/test_labelstudio_spans.py``), so its offsets pass unchanged
(:mod:`opm_nlp.review.labelstudio_spans`). :func:`utf16_offset` and :func:`code_point_offset` convert for
programs that count UTF-16 code units (JavaScript string indices, DOM ranges): an emoji is one code point
and two UTF-16 units.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Mapping, Sequence

Span = tuple[int, int]


def utf16_offset(text: str, index: int) -> int:
    """The UTF-16 code-unit offset of code point ``index`` of ``text``."""
    return index + sum(1 for ch in text[:index] if ord(ch) > 0xFFFF)


def code_point_offset(text: str, offset: int) -> int:
    """The code-point index of UTF-16 code-unit ``offset`` of ``text`` (inverse of :func:`utf16_offset`).

    An offset inside a surrogate pair moves to the end of that character.
    """
    units = 0
    for index, ch in enumerate(text):
        if units >= offset:
            return index
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(text)


def format_spans(spans: Mapping[str, Span | Sequence[Span]]) -> str:
    """A spans cell: compact JSON, codes in the order given; "" for no spans."""
    if not spans:
        return ""
    def plain(value):
        if len(value) == 2 and all(isinstance(v, int) for v in value):
            return [int(value[0]), int(value[1])]
        return [[int(s), int(e)] for s, e in value]
    return json.dumps({code: plain(v) for code, v in spans.items()}, separators=(",", ":"), ensure_ascii=False)


def _span(value, text: str, where: str) -> Span:
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise ValueError(f"{where}: expected [start, end] (two whole numbers), found {json.dumps(value)}")
    start, end = value
    if not 0 <= start <= end <= len(text):
        raise ValueError(f"{where}: span [{start}, {end}] lies outside the answer's {len(text)} characters "
                         f"(expected 0 <= start <= end <= {len(text)})")
    return start, end


def read_spans(cell, text: str, nested: bool = False) -> dict[str, Span] | dict[str, list[Span]]:
    """Parse a spans cell (see :func:`format_spans`) and check every span lies inside ``text``.

    ``nested=False`` reads ``{"code": [start, end]}`` (``evidence_spans``); ``nested=True`` reads
    ``{"code": [[start, end], ...]}`` (``reviewed_spans``). An empty or missing cell gives ``{}``.
    Raises ``ValueError`` naming what was expected and found.
    """
    if cell is None or (isinstance(cell, float) and cell != cell) or str(cell).strip() == "":
        return {}
    try:
        data = json.loads(str(cell))
    except json.JSONDecodeError as exc:
        raise ValueError(f"expected JSON such as {{\"code\": [0, 12]}}, found {str(cell)[:60]!r} ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object of code ids, found {str(cell)[:60]!r}")
    out: dict = {}
    for code, value in data.items():
        where = f"code {code!r}"
        if nested:
            if not isinstance(value, list):
                raise ValueError(f"{where}: expected a list of [start, end], found {json.dumps(value)}")
            out[code] = [_span(v, text, where) for v in value]
        else:
            out[code] = _span(value, text, where)
    return out


def spans_after_removal(cell, text: str, removed: re.Pattern) -> object:
    """A spans cell of ``text`` (either form, or a JSON list of spans such as the report's quote highlights),
    moved to ``text`` with the characters ``removed`` matches taken out (as writing XLSX takes out control
    characters); a cell that is not spans is returned as it is.

    Examples
    --------
    >>> spans_after_removal('{"a":[2,5]}', "x\\x01yz. w", re.compile("\\x01"))
    '{"a":[1,4]}'
    >>> spans_after_removal('[[2, 5]]', "x\\x01yz. w", re.compile("\\x01"))
    '[[1, 4]]'
    """
    gone = [i for m in removed.finditer(text) for i in range(m.start(), m.end())]
    if not gone or not isinstance(cell, str) or not cell.strip():
        return cell
    try:
        data = json.loads(cell)
    except json.JSONDecodeError:
        return cell
    if not isinstance(data, (dict, list)):
        return cell

    def move(value):
        if isinstance(value, list):
            return [move(v) for v in value]
        return value - bisect.bisect_left(gone, value) if isinstance(value, int) else value
    if isinstance(data, list):
        return json.dumps(move(data))
    return format_spans({code: move(value) for code, value in data.items()})


#: The spaces around an answer, which reading a table strips (:func:`~opm_nlp.io.tables.text_values`).
AROUND = re.compile(r"^\s+|\s+$")
