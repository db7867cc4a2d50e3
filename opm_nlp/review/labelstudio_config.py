"""The Label Studio labeling interface generated from a codebook, and the task fields it shows.

The interface is a multi-select list of the codes (values are code ids, shown with their label and
definition, children indented under their parent), a row of the same codes to mark spans of the answer
with (the evidence), and a collapsible panel with each code's include/exclude notes;
:func:`instructions_html` gives the codebook as the project's reviewer instructions,
:func:`codes_in_config` reads the code ids back from a project's interface and :func:`has_span_labels`
says whether it can mark spans (projects made before opm-nlp marked evidence cannot).

Examples
--------
>>> config = label_config(codebook)                  # doctest: +SKIP
>>> codes_in_config(config) == codebook.ids          # doctest: +SKIP
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET

from opm_nlp.codebook.codes import Code, Codebook

#: Name of the code list in the labeling interface (``from_name`` of every result).
CHOICES_NAME = "codes"
#: Name of the code labels that mark spans of the answer (``from_name`` of every span region).
SPANS_NAME = "evidence"
#: Name of the answer text in the labeling interface (``to_name``).
TEXT_NAME = "text"
#: Task data keys. The response id is the key that makes pushing idempotent.
DATA_TEXT = "text"
DATA_ID = "response_id"
DATA_ID_COL = "id_col"
DATA_TEXT_COL = "text_col"
DATA_NOTE = "review_note"
#: Task data key holding an audit sample's design (the ``audit_sample`` column of the pulled table).
DATA_AUDIT = "audit_sample"
#: Task data key holding how a batch to code next was picked (``opm-nlp review next``, coded blind).
DATA_BATCH = "next_batch"
#: Colours of the span labels, cycled over the codes in tree order (Label Studio's default is one colour for all).
SPAN_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                "#bcbd22", "#17becf")


def _literal(text: str) -> str:
    """Text safe as a literal in a labeling config: Label Studio reads ``$name`` as a task field."""
    return re.sub(r"\$(?=[\w{\[])", "\uff04", text)  # fullwidth dollar sign looks the same


def label_config(codebook: Codebook, blind: bool = False, batch: bool = False) -> str:
    """The Label Studio labeling interface (XML) for reviewing suggestions against ``codebook``.

    A multi-select ``<Choices>`` whose values are the code ids (what exports and pre-annotations
    use) and whose display shows the label in bold and the definition beside it; the definition is
    also the hover hint. Codes are listed parent first, children indented under their parent. A
    collapsible panel below holds each code's include/exclude notes and examples. Above the answer, a row
    of ``<Labels>`` (values the code ids, shown by label) marks spans of it: where each code is, the
    model's evidence pre-annotated there by ``review push``.

    ``blind``: the interface of an audit sample, coded without suggestions. It shows the audit's design
    (task field ``audit_sample``, which also marks the project as an audit: :func:`is_audit_config`)
    instead of the review note, and asks for the coder's own codes.

    ``batch``: the interface of answers picked to code next (``opm-nlp review next``), coded blind to
    train the model: it shows how they were picked (task field ``next_batch``, which marks the project:
    :func:`is_batch_config`) and asks for the coder's own codes.
    """
    view = ET.Element("View")
    ET.SubElement(view, "Header", value="Answer $" + DATA_ID, size="5")
    where = ("Where: pick a code, then select the words that carry it (optional)" if blind or batch else
             "Where: the highlighted words carried each suggested code; keep, change or delete them, or pick a "
             "code and select other words")
    ET.SubElement(view, "Header", value=where, size="6")
    labels = ET.SubElement(view, "Labels", name=SPANS_NAME, toName=TEXT_NAME)
    for i, (code, _) in enumerate(_tree_order(codebook)):
        ET.SubElement(labels, "Label", value=code.id, html=f"<b>{html.escape(_literal(code.label))}</b>",
                      hint=_literal(code.definition), background=SPAN_COLOURS[i % len(SPAN_COLOURS)])
    ET.SubElement(view, "Text", name=TEXT_NAME, value="$" + DATA_TEXT)
    if batch:
        ET.SubElement(view, "Header", value="Picked to code next: $" + DATA_BATCH, size="6")
        ET.SubElement(view, "Header", value="Codes: tick every code that applies, from your own reading (no "
                                             "suggestion is shown), then submit; submit with none ticked when "
                                             "no code applies", size="5")
    elif blind:
        ET.SubElement(view, "Header", value="Audit sample, coded blind: $" + DATA_AUDIT, size="6")
        ET.SubElement(view, "Header", value="Codes: tick every code that applies, from your own reading (no "
                                             "suggestion is shown), then submit; submit with none ticked when "
                                             "no code applies", size="5")
    else:
        ET.SubElement(view, "Header", value="$" + DATA_NOTE, size="6")
        ET.SubElement(view, "Header", value="Codes: tick every code that applies (the model's suggestion is "
                                             "pre-ticked; confirm or correct it, then submit)", size="5")
    choices = ET.SubElement(view, "Choices", name=CHOICES_NAME, toName=TEXT_NAME, choice="multiple")
    for code, depth in _tree_order(codebook):
        label = html.escape(_literal(code.label))
        definition = html.escape(_literal(code.definition))
        arrow = "&#8627; " if depth else ""
        attributes = {
            "value": code.id,
            "html": f"{arrow}<b>{label}</b> <span style=\"color:#666\">&#8212; {definition}</span>",
            "hint": _literal(code.definition),
        }
        if depth:
            attributes["style"] = f"margin-left: {1.75 * depth:g}em"
        ET.SubElement(choices, "Choice", attributes)
    panel = ET.SubElement(ET.SubElement(view, "Collapse"), "Panel",
                          value=f"Codebook notes: {_literal(codebook.name)} (include / exclude / examples)")
    for code, depth in _tree_order(codebook):
        ET.SubElement(panel, "Header", value=_literal(f"{code.label} ({code.id})"), size="6")
        ET.SubElement(panel, "Text", name=f"note_{code.id}", value=_literal(_notes(code)))
    return ET.tostring(view, encoding="unicode")


def _tree_order(codebook: Codebook) -> list:
    """Codes depth-first: each parent followed by its children, with their depth."""
    out = []

    def visit(parent, depth):
        for code in codebook.children(parent):
            out.append((code, depth))
            visit(code.id, depth + 1)

    visit(None, 0)
    return out


def _notes(code: Code) -> str:
    """A code's definition, include/exclude notes and examples as one line of text."""
    parts = [code.definition]
    if code.include:
        parts.append(f"Include: {code.include}")
    if code.exclude:
        parts.append(f"Exclude: {code.exclude}")
    if code.examples:
        parts.append("Examples: " + " | ".join(code.examples))
    return "  ".join(parts)


def instructions_html(codebook: Codebook, blind: bool = False, batch: bool = False) -> str:
    """The codebook as HTML for the project's reviewer instructions (``blind``: for an audit sample;
    ``batch``: for a blind batch to code next)."""
    items = []
    for code, depth in _tree_order(codebook):
        notes = "".join(f"<br/><i>{name}:</i> {html.escape(text)}"
                        for name, text in (("Include", code.include), ("Exclude", code.exclude)) if text)
        items.append(f"<li style=\"margin-left:{1.5 * depth:g}em\"><b>{html.escape(code.label)}</b> "
                     f"(<code>{code.id}</code>): {html.escape(code.definition)}{notes}</li>")
    how = ("<p>This is an audit sample: answers drawn at random to measure the model, coded blind. No suggestion "
           "is shown, and please do not look the answers up where the model's suggestions are (the tagged file, a "
           "review sheet or project): people who see a suggestion tend to accept it. Tick every code that applies, "
           "then submit; submit with none ticked when no code applies.</p>" if blind and not batch else
           "<p>These answers were picked as the ones whose codes would teach the model most. No suggestion is "
           "shown: tick every code that applies from your own reading, then submit; submit with none ticked when no "
           "code applies. Your codes train the model.</p>" if batch else
           "<p>The model's suggested codes are pre-ticked, and the words that carried each one are highlighted in "
           "the answer, labelled with the code. Tick every code that applies, untick the ones that do not, then "
           "submit. Submitting unchanged confirms the suggestion. To mark where a code is, pick it above the "
           "answer and select the words; delete a highlight that is wrong.</p>")
    return f"<h3>{html.escape(codebook.name)}</h3><p>{html.escape(codebook.description)}</p>{how}<ul>{''.join(items)}</ul>"


def is_audit_config(config: str) -> bool:
    """True for the interface of an audit project (:func:`label_config` with ``blind``): it shows ``$audit_sample``."""
    return _shows(config, DATA_AUDIT)


def is_batch_config(config: str) -> bool:
    """True for the interface of a blind batch to code next (:func:`label_config` with ``batch``): it shows
    ``$next_batch``."""
    return _shows(config, DATA_BATCH)


def _shows(config: str, field: str) -> bool:
    """True when a header of the labeling config shows the task field ``field``."""
    try:
        root = ET.fromstring(config)
    except ET.ParseError:
        return False
    return any("$" + field in (element.get("value") or "") for element in root.iter("Header"))


def has_span_labels(config: str) -> bool:
    """True when a labeling config can mark spans of the answer with the codes (its ``<Labels name="evidence">``)."""
    try:
        root = ET.fromstring(config)
    except ET.ParseError:
        return False
    return any(element.get("name") == SPANS_NAME for element in root.iter("Labels"))


def codes_in_config(config: str) -> list[str]:
    """Code ids (``<Choice value>``) of the ``codes`` list in a labeling config, in order."""
    try:
        root = ET.fromstring(config)
    except ET.ParseError:
        return []
    for element in root.iter("Choices"):
        if element.get("name") == CHOICES_NAME:
            return [choice.get("alias") or choice.get("value") for choice in element.iter("Choice")]
    return []
