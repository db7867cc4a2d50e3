"""Spans of an answer in Label Studio: the model's evidence as pre-annotated regions, the reviewer's read back.

A span region is a result of type ``labels`` on the answer text: ``{"from_name": "evidence", "to_name":
"text", "type": "labels", "value": {"start", "end", "text", "labels": [code id]}}``.
:func:`evidence_regions` turns an ``evidence_spans`` cell (code points, :mod:`opm_nlp.io.spans`) into such
regions; :func:`reviewed_spans` reads a reviewer's regions back to code points, checked against the answer.

Label Studio 1.23 counts a Text region's ``start`` and ``end`` in Unicode code points, as Python does: its
editor keeps the text as ``[...text]`` (one entry per code point) and documents its global offsets "in
codepoints" (``web/libs/editor/src/tags/object/RichText/domManager.ts`` and ``model.js``). So the offsets
pass unchanged; :func:`ls_offset` and :func:`code_point` are where that would change (JavaScript string
indices would need :func:`opm_nlp.io.spans.utf16_offset`).
"""

from __future__ import annotations

import re

from opm_nlp.codebook.codes import Codebook
from opm_nlp.exceptions import ReviewError
from opm_nlp.io.spans import Span, read_spans
from opm_nlp.review.labelstudio_config import SPANS_NAME, TEXT_NAME


def ls_offset(text: str, index: int) -> int:
    """The Label Studio offset of code point ``index`` of ``text`` (Label Studio 1.23 counts code points)."""
    return index


def code_point(text: str, offset: int) -> int:
    """The code-point index of Label Studio offset ``offset`` of ``text`` (inverse of :func:`ls_offset`)."""
    return offset


def evidence_regions(text: str, cell, codes: list[str], where: str) -> list[dict]:
    """Span regions for the evidence of the suggested ``codes`` (an ``evidence_spans`` cell), in that order.

    Codes without a span in the cell get no region. Raises :class:`ReviewError` naming ``where`` (file, column,
    row) when the cell is not valid JSON spans inside ``text``.
    """
    try:
        spans = read_spans(cell, text)
    except ValueError as exc:
        raise ReviewError(f"{where}: {exc}. Tag the answers again with opm-nlp tag, or empty the cell.") from None
    regions = []
    for code in codes:
        if code not in spans:
            continue
        start, end = spans[code]
        regions.append({"id": f"evidence_{len(regions) + 1}", "from_name": SPANS_NAME, "to_name": TEXT_NAME,
                        "type": "labels", "value": {"start": ls_offset(text, start), "end": ls_offset(text, end),
                                                    "text": text[start:end], "labels": [code]}})
    return regions


def _squeeze(text: str) -> str:
    """Text without white space: Label Studio's region text leaves out line breaks it displays as breaks."""
    return re.sub(r"\s+", "", text)


def reviewed_spans(annotation: dict, text: str, codebook: Codebook, where: str) -> dict[str, list[Span]]:
    """Spans a reviewer marked in one annotation, per code id (codebook order), each list sorted, in code points.

    Raises :class:`ReviewError` naming ``where`` for a region labelled with a code the codebook lacks, or whose
    offsets do not fit the answer (outside it, or not the words the region says it holds).
    """
    found: dict[str, set[Span]] = {}
    for item in annotation.get("result") or []:
        if item.get("from_name") != SPANS_NAME or item.get("type") != "labels":
            continue
        value = item.get("value") or {}
        start, end, labels = value.get("start"), value.get("end"), value.get("labels") or []
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
            raise ReviewError(f"{where}: a span has start {start!r} and end {end!r}; expected whole numbers (a "
                              f"region on the answer text). Delete that region in Label Studio and mark it again.")
        start, end = code_point(text, start), code_point(text, end)
        if not 0 <= start <= end <= len(text):
            raise ReviewError(f"{where}: a span [{start}, {end}] lies outside the answer's {len(text)} characters. "
                              f"Delete that region in Label Studio and mark it again.")
        shown = value.get("text")
        if isinstance(shown, str) and _squeeze(shown) != _squeeze(text[start:end]):
            raise ReviewError(f"{where}: a span [{start}, {end}] says it holds {shown[:40]!r} but the answer has "
                              f"{text[start:end][:40]!r} there. Delete that region in Label Studio and mark it again.")
        for code in labels:
            if code not in codebook:
                raise ReviewError(f"{where}: a span is labelled '{code}', which is not a code id of the codebook "
                                  f"{codebook.ids}. Pass the codebook the project was made with.")
            found.setdefault(code, set()).add((start, end))
    return {code: sorted(found[code]) for code in codebook.ids if code in found}
