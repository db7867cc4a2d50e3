"""Rendering a :class:`~opm_nlp.report.build.Report` as one self-contained HTML page.

The page carries its CSS inline and its charts as inline SVG; it links to nothing outside itself, so it
opens from a file, offline, and can be mailed or archived as is. All text from the data (answers, group
names, labels) is HTML-escaped.
"""

from __future__ import annotations

import json
import re
from importlib import metadata as importlib_metadata
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from opm_nlp.report.tables import basis_text

if TYPE_CHECKING:  # build imports this module; the types are for annotations only
    from opm_nlp.report.build import Report, ReportTable

HEADERS = {
    "label": "theme", "category": "category", "respondents": "respondents", "answered": "answered",
    "pct_of_answered": "% of answered", "ci": "95% CI (Wilson)", "all": "all respondents", "pct_of_all": "% of all",
    "respondents_human": "of whom coded by a person", "respondents_model_only": "of whom model only",
    "unique_respondents": "unique respondents", "with_subcodes": "with sub-codes", "comparison": "comparison",
    "answered_from": "answered (from)", "pct_from": "% (from)", "answered_to": "answered (to)", "pct_to": "% (to)",
    "change_pp": "change (points)", "min_expected": "min. expected", "p_value": "p", "p_holm": "p (Holm)",
    "coded_by": "coded by", "max_similarity": "overlap with earlier quotes", "mean_before": "mean before",
    "mean_after": "mean after", "mean_difference": "mean difference", "n_changed": "n changed",
    "wilcoxon_w": "Wilcoxon W", "rank_biserial": "rank-biserial r", "rb": "r 95% CI (bootstrap)",
    "mean_gain_with": "mean gain with theme", "mean_gain_without": "mean gain without",
    "mann_whitney_u": "Mann-Whitney U", "n_with": "n with theme", "n_without": "n without",
    "estimate_pct": "estimate %", "estimate_method": "method", "model_only_pct": "model only %",
    "audit_only_pct": "audit only %", "effective_audit_n": "audit answers the model was worth", "audit_n": "audit n",
    "estimate_ci": "95% CI", "audit_only_ci": "audit only 95% CI",
    "method": "method", "n_answered": "answered", "n_reviewed": "reviewed", "n_audit": "audit n",
    "human_from": "answers by person + model only (from / to)", "estimate_pct_from": "estimate % (from → to)",
    "estimate_change_pp": "estimated change (95% CI)", "compared_on": "compared on",
}
_ONE_DECIMAL = re.compile(r"^(pct_|ci_|change_pp|min_expected|estimate_|model_only_|audit_only_|effective_)")
# A group's interval goes on a second line of its cell, so six groups with three-digit counts fit the
# page (1,150 px). to_html escapes a newline, so a private-use character marks the break instead.
_BREAK = "\ue000"
# The same for <mark> around the part of a quote that carried its code (the rest of the text is escaped).
_MARK, _UNMARK = "\ue001", "\ue002"
_HIDDEN = {"family", "wave_from", "wave_to", "definition", "before", "after"}


def format_p(value: float) -> str:
    """A p-value for people: 3 significant digits, ``<0.0001`` below that."""
    if value is None or np.isnan(value):
        return "–"
    return "<0.0001" if value < 0.0001 else f"{value:.3g}" if value < 0.001 else f"{value:.3f}"


def _number(column: str, value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if isinstance(value, (float, np.floating)):
        if column.startswith("p_"):
            return format_p(float(value))
        if _ONE_DECIMAL.match(column):
            return f"{value:.1f}"
        if np.isinf(value):
            return "∞"
        return f"{value:.2f}"
    return str(value)


def _interval(low: pd.Series, high: pd.Series, digits: int) -> pd.Series:
    return pd.Series([("–" if pd.isna(lo) or pd.isna(hi) else f"{lo:.{digits}f}–{hi:.{digits}f}")
                      for lo, hi in zip(low, high)], index=low.index)


def display_frame(table: ReportTable, codebook, text_col: str | None = None) -> pd.DataFrame:
    """A report table with numbers formatted and intervals joined, for the HTML page; in the quotes'
    ``text_col``, the part of each answer that carried its code is marked (``highlight``)."""
    frame = table.frame.reset_index() if table.index else table.frame.copy()
    if "highlight" in frame.columns and text_col in frame.columns:
        from opm_nlp.report.quotes import mark_spans

        plain = [re.sub(f"[{_BREAK}{_MARK}{_UNMARK}]", "", str(t)) for t in frame[text_col]]
        frame[text_col] = [mark_spans(t, json.loads(h), _MARK, _UNMARK) for t, h in zip(plain, frame["highlight"])]
    frame = frame.drop(columns=[c for c in ("highlight",) if c in frame.columns])
    if table.name == "cooccurrence":
        numbers = {code: str(i) for i, code in enumerate(frame["code"], start=1)}
        labels = [f"{numbers[c]}. {codebook[c].label}" for c in frame["code"]]
        frame = frame.drop(columns="code").rename(columns=numbers)
        frame.insert(0, "theme", labels)
        return frame.astype(str)
    if table.name == "frequencies":  # the estimates have their own table at the top of the page
        frame = frame.drop(columns=[c for c in frame.columns if str(c).startswith(("estimate_", "audit_only_"))
                                    or c in ("model_only_pct", "effective_audit_n")])
    group_columns = [c[: -len(": respondents")] for c in frame.columns if str(c).endswith(": respondents")]
    if group_columns:
        out = frame[["label"]].rename(columns={"label": "theme"})
        for group in group_columns:
            out[group] = [
                "–" if pd.isna(pct) else f"{int(n)} · {pct:.1f}%{_BREAK}({lo:.1f}–{hi:.1f})"
                for n, pct, lo, hi in zip(frame[f"{group}: respondents"], frame[f"{group}: % of answered"],
                                          frame[f"{group}: CI low"], frame[f"{group}: CI high"])]
        return out
    if {"ci_low", "ci_high"} <= set(frame.columns):  # an estimate's interval is not Wilson's
        frame.insert(frame.columns.get_loc("ci_low"), "estimate_ci" if "method" in frame.columns else "ci",
                     _interval(frame["ci_low"], frame["ci_high"], 1))
        frame = frame.drop(columns=["ci_low", "ci_high"])
    if {"human_from", "estimate_change_pp"} <= set(frame.columns):
        frame = _compact_wave_tests(frame)
    for stem in ("estimate_ci", "audit_only_ci"):
        if {f"{stem}_low", f"{stem}_high"} <= set(frame.columns):
            frame.insert(frame.columns.get_loc(f"{stem}_low"), stem, _interval(frame[f"{stem}_low"], frame[f"{stem}_high"], 1))
            frame = frame.drop(columns=[f"{stem}_low", f"{stem}_high"])
    if {"rb_ci_low", "rb_ci_high"} <= set(frame.columns):
        frame.insert(frame.columns.get_loc("rb_ci_low"), "rb", _interval(frame["rb_ci_low"], frame["rb_ci_high"], 2))
        frame = frame.drop(columns=["rb_ci_low", "rb_ci_high"])
    if "code" in frame.columns and "label" in frame.columns:
        frame = frame.drop(columns="code")
    frame = frame.drop(columns=[c for c in frame.columns if c in _HIDDEN])
    for column in frame.columns:
        frame[column] = [_number(str(column), v) for v in frame[column]]
    return frame.rename(columns={c: HEADERS.get(c, c) for c in frame.columns})


def _compact_wave_tests(frame: pd.DataFrame) -> pd.DataFrame:
    """Wave tests on a page: both waves' coder mix, estimates and estimated change each in one two-line cell.

    The file keeps every column; the methods stand in the estimates-by-wave table above.
    """
    def pair(a: object, b: object, sep: str) -> str:
        return "–" if pd.isna(a) or pd.isna(b) else f"{a:.1f}{sep}{b:.1f}"

    frame = frame.copy()
    frame["human_from"] = [f"{h1} + {m1}{_BREAK}{h2} + {m2}" for h1, m1, h2, m2 in
                           zip(frame["human_from"], frame["model_only_from"], frame["human_to"], frame["model_only_to"])]
    frame["estimate_pct_from"] = [pair(a, b, " → ") for a, b in zip(frame["estimate_pct_from"], frame["estimate_pct_to"])]
    frame["estimate_change_pp"] = ["–" if pd.isna(c) else f"{c:+.1f}{_BREAK}({pair(lo, hi, ' to ')})" for c, lo, hi in
                                   zip(frame["estimate_change_pp"], frame["estimate_ci_low"], frame["estimate_ci_high"])]
    for column in ("test", "comparison"):
        frame[column] = frame[column].str.replace(" (", f"{_BREAK}(", regex=False)
    frame["compared_on"] = frame["compared_on"].str.replace(" and ", f" and{_BREAK}", regex=False)
    return frame.drop(columns=["answered_from", "answered_to", "model_only_from", "human_to", "model_only_to",
                               "coder_sources", "method_from", "method_to", "estimate_pct_to", "estimate_ci_low",
                               "estimate_ci_high"])


def _table_html(frame: pd.DataFrame, name: str) -> str:
    html = frame.to_html(index=False, escape=True, border=0, classes=["data", f"t-{name}"], na_rep="–")
    return html.replace(_BREAK, "<br>").replace(_MARK, "<mark>").replace(_UNMARK, "</mark>")


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="opm-nlp {{ version }}">
<title>{{ title }}</title>
<style>
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #222;
       max-width: 1150px; margin: 1.5em auto; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
.meta { color: #555; font-size: .9em; }
.basis { background: #f3f6fa; border-left: 4px solid #4a78b0; padding: .5em .8em; margin: .6em 0; }
.warn { background: #fff6e5; border-left: 4px solid #e0a030; padding: .5em .8em; margin: .6em 0; }
.note { color: #444; font-size: .92em; } .rests { color: #335; font-size: .88em; font-style: italic; }
table.data { border-collapse: collapse; font-size: .85em; margin: .6em 0; }
table.data th, table.data td { border-bottom: 1px solid #e3e3e3; padding: .25em .55em; text-align: right; vertical-align: top; }
table.data th { background: #f4f4f4; }
table.data td:first-child, table.data th:first-child { text-align: left; }
table.data td:not(:first-child) { white-space: nowrap; }
table.t-quotes td, table.t-quotes th { text-align: left; } table.t-quotes td:nth-child(4) { min-width: 28em; }
table.data.t-quotes td:not(:first-child) { white-space: normal; } mark { background: #fff0a0; }
table.t-study_table td, table.t-study_table th { text-align: left; }
.scroll { overflow-x: auto; }
figure { margin: 1em 0; } figure svg { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: .88em; }
nav a { margin-right: .8em; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p class="meta">Codebook <b>{{ codebook.name }}</b>{% if codebook.version %} version {{ codebook.version }}{% endif %}
 (fingerprint {{ codebook.fingerprint }}) · {{ codes }} codes · created {{ created }} with opm-nlp {{ version }}</p>
{% if made %}<div class="basis" id="made"><b>How these numbers were made.</b><ul>{% for line in made %}<li>{{ line }}</li>{% endfor %}</ul></div>{% endif %}
<div class="basis" id="basis"><b>What the numbers rest on.</b> {{ basis_line }}</div>
{% if basis.model_only and corrected %}<div class="warn">{{ basis.model_only }} of the {{ basis.answered }} answers carry
model suggestions that no person has reviewed. The estimates (first table) correct for the model's errors, as their
method says; the counts in the other tables are counts of suggestions and carry those errors.</div>
{% elif basis.model_only %}<div class="warn">{{ basis.model_only }} of the {{ basis.answered }} answers carry model
suggestions that no person has reviewed; figures that include them carry the model's errors (see the model's held-out
figures). To report them, code a random sample blind ('opm-nlp review sample') and pass it with --audit: the
estimates' intervals then carry the model's error.</div>{% endif %}
{% for note in notes %}<div class="warn">{{ note }}</div>{% endfor %}
<nav>{% for section in sections %}<a href="#{{ section.id }}">{{ section.title }}</a>{% endfor %}</nav>
{% for section in sections %}
<section id="{{ section.id }}">
<h2>{{ section.title }}</h2>
{% if section.note %}<p class="note">{{ section.note }}</p>{% endif %}
{% if section.basis %}<p class="rests">{{ section.basis }}</p>{% endif %}
{% for figure in section.figures %}<figure>{{ figure.svg | safe }}<figcaption>{{ figure.caption }}</figcaption></figure>
{% endfor %}
<div class="scroll">{{ section.table | safe }}</div>
</section>
{% endfor %}
<h2 id="methods">Methods</h2>
<ul class="note">
<li>The unit counted is the respondent. A theme counts only for respondents who answered; "% of answered" divides by
them, "% of all" by every respondent in the file.</li>
<li>Intervals for percentages are 95% Wilson score intervals (statsmodels <code>proportion_confint</code>). They
cover sampling error only: where answers carry model suggestions, the model's coding errors come on top.</li>
<li>Estimates: "prediction-powered" combines the model's scores on every answer with the human codes of a random
audit sample coded blind (Angelopoulos et al., Science 2023), so its 95% interval holds whatever the model's errors;
"adjusted" corrects the model's share by its measured sensitivity and specificity (valid only if this wave's errors
look like those); "human-coded" counts people's codes; "model-only" counts suggestions as if true.</li>
<li>"Coded by a person" means the answer comes from a coded file (no model scores) or has <code>reviewed</code> = 1;
other answers carry only the model's suggestions.</li>
<li>Example answers coded by a person come first, then answers with model suggestions only, highest score first. Each
answer illustrates one theme at most; non-answers ("None", "n/a", "-", very short answers) are never quoted, and an
answer sharing more than half its words with a quote already chosen is skipped. Highlighted: the part of the answer
that carried the theme, as a person marked it or, for a model suggestion, the sentence the model rated highest.</li>
</ul>
</body>
</html>
"""


def render_html(report: Report, drawn: list[tuple[str, str, str]] | None = None) -> str:
    """The report as a self-contained HTML page; ``drawn`` is ``report.figures()`` when already drawn."""
    import jinja2

    figures: dict[str, list[dict[str, str]]] = {}
    for section, caption, svg in report.figures() if drawn is None else drawn:
        figures.setdefault(section, []).append({"caption": caption, "svg": svg})
    sections = []
    for table in report.tables.values():
        sections.append({
            "id": re.sub(r"[^A-Za-z0-9_-]+", "-", table.name), "title": table.title, "note": table.note, "basis": table.basis,
            "figures": figures.get(table.name, []),
            "table": _table_html(display_frame(table, report.codebook, report.text_col), table.name),
        })
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return environment.from_string(_TEMPLATE).render(
        source=report.source, title=report.heading, codebook=report.codebook, codes=len(report.codebook), created=report.created,
        version=_version(), basis=report.basis, basis_line=basis_text(report.basis), notes=report.notes,
        made=report.made, sections=sections, corrected=_corrected(report))


def _corrected(report: Report) -> bool:
    """True when some estimate corrects the model's suggestions for its errors."""
    from opm_nlp.report.prevalence import corrects

    estimates = report.tables.get("estimates")
    return estimates is not None and corrects(estimates.frame)


def _version() -> str:
    """The installed opm-nlp version, for the page's generator line."""
    try:
        return importlib_metadata.version("opm-nlp")
    except importlib_metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "(version unknown)"
