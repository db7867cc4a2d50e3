"""Tests of the theme report: figures against hand values, the HTML page in Chromium, the CLI."""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from opm_nlp.cli.main import cli
from opm_nlp.codebook.codes import parse_codebook
from opm_nlp.exceptions import DataError, SpecError
from opm_nlp.report.prepost import (
    load_prepost_spec,
    parse_prepost_spec,
    prepost_table,
    rank_biserial,
    theme_gains,
)
from opm_nlp.report.build import build_report
from opm_nlp.report.quotes import example_quotes
from opm_nlp.report.tables import (
    cooccurrence,
    frequency_table,
    group_frequencies,
    prepare_table,
    study_table,
    theme_frequencies,
)
from opm_nlp.report.waves import wave_tests

from .conftest import CODEBOOK, CODED

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE_CHROMIUM = os.environ.get("OPM_NLP_REQUIRE_CHROMIUM") == "1"
Z = 1.959963984540054  # standard normal quantile for 95%

CB = parse_codebook("""
name: small
version: "1"
codes:
  - {id: expectations, label: Aligning expectations, definition: d, color: "#1f77b4"}
  - {id: relationship, label: Attention to the relationship, definition: d}
  - {id: phases, label: Phases, definition: d, parent: relationship}
""", source="small.yaml")

# Ten respondents, one empty answer (r04); waves 2019-2021; sites A and B; pre/post ratings for 8.
ROWS = [
    # id, answer, wave, site, expectations, relationship, phases, q1_pre, q1_post
    ("r01", "Set clear expectations with mentees early", "2019", "A", 1, 0, 0, "2", "4"),
    ("r02", "Talk about expectations and goals", "2019", "A", 1, 1, 0, "3", "3"),
    ("r03", "Listen more to my mentee", "2019", "B", 0, 1, 0, "3", "4"),
    ("r04", "", "2019", "B", 0, 0, 0, "1", "3"),
    ("r05", "Plan the end of the mentoring relationship", "2020", "A", 0, 1, 1, "4", "3"),
    ("r06", "Write down expectations together", "2020", "B", 1, 0, 0, "2", "5"),
    ("r07", "-check in on the relationship each month", "2020", "B", 0, 1, 0, "3", "2"),
    ("r08", "Nothing will change", "2021", "A", 0, 0, 0, "5", "5"),
    ("r09", "Clarify expectations in the first meeting", "2021", "A", 1, 0, 1, "", "4"),
    ("r10", "Mark the closing phase with a conversation", "2021", "B", 0, 0, 1, "", ""),
]
COLUMNS = ["response_id", "answer", "wave", "site", "expectations", "relationship", "phases", "q1_pre", "q1_post"]
SPEC = "scale: {min: 1, max: 5}\nitems:\n  - {name: Listening, before: q1_pre, after: q1_post}\n"


def small_table() -> pd.DataFrame:
    frame = pd.DataFrame(ROWS, columns=COLUMNS)
    frame[["expectations", "relationship", "phases"]] = frame[["expectations", "relationship", "phases"]].astype(str)
    return frame


def wilson(x: int, n: int) -> tuple[float, float]:
    """Wilson score interval by its textbook formula."""
    p = x / n
    denominator = 1 + Z**2 / n
    centre = (p + Z**2 / (2 * n)) / denominator
    half = Z / denominator * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    return centre - half, centre + half


def holm_by_hand(p: list[float]) -> list[float]:
    order = np.argsort(p)
    adjusted = np.empty(len(p))
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return list(adjusted)


@pytest.fixture()
def table():
    return prepare_table(small_table(), CB, "answer", "response_id")


# -- frequencies ----------------------------------------------------------------------------------
def test_frequencies_match_hand_counts_and_wilson_bounds(table):
    freq = frequency_table(table, CB, "answer")
    assert list(freq.index) == ["expectations", "relationship", "phases"]
    assert freq["respondents"].tolist() == [4, 4, 3]
    assert set(freq["answered"]) == {9} and set(freq["all"]) == {10}
    assert freq.loc["expectations", "pct_of_answered"] == pytest.approx(100 * 4 / 9)
    assert freq.loc["phases", "pct_of_all"] == pytest.approx(30.0)
    for code, count in (("expectations", 4), ("phases", 3)):
        low, high = wilson(count, 9)
        assert freq.loc[code, "ci_low"] == pytest.approx(100 * low, abs=1e-4)
        assert freq.loc[code, "ci_high"] == pytest.approx(100 * high, abs=1e-4)
    # 4/9: Wilson 95% is 0.1888-0.7333 (to 4 decimals)
    assert round(freq.loc["expectations", "ci_low"] / 100, 4) == 0.1888
    assert round(freq.loc["expectations", "ci_high"] / 100, 4) == 0.7333
    assert freq["respondents_human"].tolist() == [4, 4, 3] and freq["respondents_model_only"].sum() == 0


def test_theme_frequencies_are_the_short_form_of_the_frequency_table(table):
    short = theme_frequencies(table, CB, "answer")
    assert list(short.columns) == ["label", "respondents", "pct_of_answered", "pct_of_all"]
    assert short.index.name == "code" and short["respondents"].tolist() == [4, 4, 3]
    assert short["pct_of_answered"].tolist() == [44.4, 44.4, 33.3]
    assert short["pct_of_all"].tolist() == [40.0, 40.0, 30.0]


def test_empty_answer_carries_no_code_even_if_marked():
    frame = small_table()
    frame.loc[3, "expectations"] = "1"  # r04 has no answer
    freq = frequency_table(prepare_table(frame, CB, "answer", "response_id"), CB, "answer")
    assert freq.loc["expectations", "respondents"] == 4


def test_study_table_counts_unique_respondents_in_codebook_order(table):
    study = study_table(table, CB, "answer", "response_id")
    assert list(study.index) == ["expectations", "relationship", "phases"]
    assert study["unique_respondents"].tolist() == [4, 4, 3]
    assert study.loc["relationship", "with_subcodes"] == 6  # r02 r03 r05 r07 r09 r10
    assert study.loc["phases", "parent"] == "relationship"


def test_groups_side_by_side_and_per_group_basis(table):
    long = group_frequencies(table, CB, "answer", "site")
    a = long[(long["site"] == "A") & (long["code"] == "expectations")].iloc[0]
    b = long[(long["site"] == "B") & (long["code"] == "expectations")].iloc[0]
    assert (a["respondents"], a["answered"], a["pct_of_answered"]) == (3, 5, 60.0)
    assert (b["respondents"], b["answered"], b["pct_of_answered"]) == (1, 4, 25.0)
    assert b["all"] == 5 and b["answered_human"] == 4 and b["answered_model_only"] == 0
    assert b["ci_low"] == pytest.approx(100 * wilson(1, 4)[0], abs=1e-4)


def test_cooccurrence_counts_pairs_among_answered(table):
    matrix = cooccurrence(table, CB, "answer")
    assert matrix.to_numpy().tolist() == [[4, 1, 1], [1, 4, 1], [1, 1, 3]]


def test_charts_draw_groups_at_0_and_100_percent():
    from opm_nlp.report.plots import (
        figure_to_svg,
        plot_frequencies,
        plot_groups,
        plot_wave_trend,
    )

    frame = small_table()
    frame["expectations"] = "1"   # every answer: 100% in each group
    frame["phases"] = "0"         # no answer: 0%
    table = prepare_table(frame, CB, "answer", "response_id")
    freq = frequency_table(table, CB, "answer")
    assert freq.loc["expectations", "ci_high"] == pytest.approx(100.0)
    assert freq.loc["phases", "ci_low"] == pytest.approx(0.0, abs=1e-12)
    long = group_frequencies(table, CB, "answer", "wave")
    for figure in (plot_frequencies(freq, CB), plot_groups(long, "wave", CB), plot_wave_trend(long, "wave", CB)):
        svg = figure_to_svg(figure, "t")
        assert svg.startswith("<svg ") and "<metadata>" not in svg


# -- waves ----------------------------------------------------------------------------------------
def test_wave_tests_small_counts_use_fisher_and_holm_within_family(table):
    from scipy.stats import chi2_contingency, fisher_exact

    tests = wave_tests(table, CB, "answer", "wave")
    row = tests[(tests["code"] == "expectations") & (tests["comparison"] == "2019 → 2020")].iloc[0]
    assert row["test"] == "Fisher's exact"
    assert (row["pct_from"], row["pct_to"]) == pytest.approx((200 / 3, 100 / 3))
    assert row["change_pp"] == pytest.approx(-100 / 3)
    assert row["p_value"] == pytest.approx(fisher_exact([[2, 1], [1, 2]])[1])
    assert row["statistic"] == pytest.approx((1 * 1) / (2 * 2))  # odds 1:2 in 2020 against 2:1 in 2019
    overall = tests[(tests["code"] == "expectations") & (tests["family"] == "across all waves")].iloc[0]
    assert overall["p_value"] == pytest.approx(chi2_contingency([[2, 1, 1], [1, 2, 2]], correction=False)[1])
    for family in ("consecutive", "across all waves"):
        part = tests[(tests["family"] == family) & tests["p_value"].notna()]
        assert part["p_holm"].tolist() == pytest.approx(holm_by_hand(part["p_value"].tolist()))


def test_wave_z_test_p_values_match_scipy_chi_square(codebook, coded):
    from scipy.stats import chi2_contingency

    tests = wave_tests(coded, codebook, "answer", "wave")
    long = group_frequencies(coded, codebook, "answer", "wave")
    checked = 0
    for _, row in tests[tests["test"] == "two-proportion z"].iterrows():
        counts = long[long["code"] == row["code"]].set_index("wave")
        a, b = counts.loc[row["wave_from"], "respondents"], counts.loc[row["wave_to"], "respondents"]
        n1, n2 = counts.loc[row["wave_from"], "answered"], counts.loc[row["wave_to"], "answered"]
        expected = chi2_contingency([[a, n1 - a], [b, n2 - b]], correction=False)[1]
        assert row["p_value"] == pytest.approx(expected, rel=1e-9)
        assert np.sign(row["statistic"]) == np.sign(b / n2 - a / n1)
        checked += 1
    assert checked >= 10
    assert set(tests["comparison"]) == {"2019 → 2020", "2020 → 2021", "all waves (2019–2021)"}


# -- quotes and provenance ------------------------------------------------------------------------
def tagged_table() -> pd.DataFrame:
    frame = small_table()
    extra = pd.DataFrame([("r11", "Set clear expectations with my mentees early", "2021", "B", "1", "0", "0", "", "")],
                         columns=COLUMNS)
    frame = pd.concat([frame, extra], ignore_index=True)
    scores = {"r01": 0.95, "r11": 0.93, "r06": 0.80, "r02": 0.70, "r09": 0.60}
    frame["score_expectations"] = [str(scores.get(i, 0.1)) for i in frame["response_id"]]
    frame["score_relationship"] = "0.5"
    frame["score_phases"] = "0.5"
    frame["reviewed"] = ["1" if i in ("r01", "r06") else "" for i in frame["response_id"]]
    return frame


def test_quotes_are_confident_and_not_near_copies():
    table = prepare_table(tagged_table(), CB, "answer", "response_id")
    quotes = example_quotes(table, CB, "answer", "response_id", n=2)
    chosen = quotes[quotes["code"] == "expectations"]
    # r11 nearly repeats r01 (6 of 7 words shared), so the next most confident answer, r06, comes instead
    assert chosen["response_id"].tolist() == ["r01", "r06"]
    assert chosen["score"].tolist() == [0.95, 0.80]
    assert chosen["coded_by"].tolist() == ["person", "person"]


def test_quotes_without_scores_prefer_focused_answers(table):
    quotes = example_quotes(table, CB, "answer", "response_id", n=3)
    assert quotes[quotes["code"] == "phases"]["response_id"].tolist() == ["r10", "r05", "r09"]
    assert set(quotes["coded_by"]) == {"person"} and quotes["score"].isna().all()


def test_quotes_highlight_the_evidence_and_escape_the_rest():
    from opm_nlp.report.build import ReportTable
    from opm_nlp.report.html import _table_html, display_frame

    person = "I will talk <b>more</b> & listen. Set clear expectations with mentees early."
    model = "  The lunch was good today. Write down expectations together with each mentee."
    frame = pd.DataFrame({"response_id": ["p", "m"], "answer": [person, model], "expectations": ["1", "1"],
                          "relationship": ["0", "0"], "phases": ["0", "0"], "score_expectations": ["0.9", "0.8"],
                          "score_relationship": "0.1", "score_phases": "0.1", "reviewed": ["1", ""]})
    mine, theirs = person.index("Set"), model.index("Write")
    frame["reviewed_spans"] = [f'{{"expectations":[[{mine},{len(person)}]]}}', ""]
    frame["evidence_spans"] = ["", f'{{"expectations":[{theirs},{len(model)}]}}']
    quotes = example_quotes(prepare_table(frame, CB, "answer", "response_id"), CB, "answer", "response_id", n=2)
    assert quotes["coded_by"].tolist() == ["person", "model"]
    for text, highlight, expected in zip(quotes["answer"], quotes["highlight"],
                                         ["Set clear expectations with mentees early.",
                                          "Write down expectations together with each mentee."]):
        (start, end), = json.loads(highlight)
        assert text[start:end] == expected
    html = _table_html(display_frame(ReportTable("quotes", "Quotes", quotes, index=False), CB, "answer"), "quotes")
    assert ("I will talk &lt;b&gt;more&lt;/b&gt; &amp; listen. <mark>Set clear expectations with mentees early."
            "</mark>") in html
    assert "The lunch was good today. <mark>Write down expectations together with each mentee.</mark>" in html
    assert "highlight" not in html and "<b>" not in html


def test_xlsx_quote_highlights_mark_the_same_words_as_the_html_when_control_characters_go(tmp_path):
    from openpyxl import load_workbook

    frame = tagged_table()
    model = "The lunch\x07 was good today.\x1b Write down expectations together with each mentee."
    person = "Bell\x07 rang. Set clear expectations with mentees early."
    frame.loc[10, "answer"], frame.loc[0, "answer"] = model, person  # r11 the model's, r01 a person's
    frame["evidence_spans"] = ""
    frame.loc[10, "evidence_spans"] = f'{{"expectations":[{model.index("Write")},{len(model)}]}}'
    frame["reviewed_spans"] = ""
    frame.loc[0, "reviewed_spans"] = f'{{"expectations":[[{person.index("Set")},{len(person)}]]}}'
    report = build_report(frame, CB, "answer", "response_id", quotes=3)
    with pytest.warns(UserWarning, match="removed control characters"):
        report.write(tmp_path / "rep")
    sheet = load_workbook(tmp_path / "rep" / "report.xlsx")["quotes"]
    header = [c.value for c in sheet[1]]
    rows = {row[header.index("response_id")]: row for row in sheet.iter_rows(min_row=2, values_only=True)}
    marked = {}
    for rid in ("r01", "r11"):
        text, highlight = rows[rid][header.index("answer")], rows[rid][header.index("highlight")]
        (start, end), = json.loads(highlight)
        marked[rid] = text[start:end]
    assert marked == {"r01": "Set clear expectations with mentees early.",
                      "r11": "Write down expectations together with each mentee."}
    html = (tmp_path / "rep" / "report.html").read_text(encoding="utf-8")
    assert "<mark>Write down expectations together with each mentee.</mark>" in html


def test_tagged_table_counts_model_only_answers():
    table = prepare_table(tagged_table(), CB, "answer", "response_id")
    freq = frequency_table(table, CB, "answer")
    assert freq.loc["expectations", "respondents"] == 5
    assert freq.loc["expectations", "respondents_human"] == 2  # r01, r06 reviewed
    assert freq.loc["expectations", "respondents_model_only"] == 3
    report = build_report(tagged_table(), CB, "answer", "response_id", quotes=1)
    assert report.basis == {"respondents": 11, "answered": 10, "human": 2, "model_only": 8}
    assert all(t.basis for t in report.tables.values())


def test_score_columns_must_be_numbers():
    frame = tagged_table()
    frame.loc[2, "score_phases"] = "high"
    with pytest.raises(DataError, match=r"t\.csv: column 'score_phases', row 4: expected a model score \(a number\), "
                                        r"found 'high'\."):
        prepare_table(frame, CB, "answer", "response_id", source="t.csv")
    frame.loc[5, "score_phases"] = "low"
    with pytest.raises(DataError, match=r"t\.csv: column 'score_phases', row 4 and 1 more: expected a model score"):
        prepare_table(frame, CB, "answer", "response_id", source="t.csv")


# -- pre/post -------------------------------------------------------------------------------------
def test_prepost_matches_hand_values(table):
    from scipy.stats import wilcoxon

    spec = parse_prepost_spec(SPEC, "spec.yaml")
    result = prepost_table(table, spec).loc["Listening"]
    before = [2, 3, 3, 1, 4, 2, 3, 5]
    after = [4, 3, 4, 3, 3, 5, 2, 5]
    # differences 2,0,1,2,-1,3,-1,0: non-zero |d| ranks 4.5,2,4.5,2,6,2 -> R+ = 17, R- = 4
    assert result["n"] == 8 and result["n_changed"] == 6
    assert result["mean_before"] == pytest.approx(23 / 8)
    assert result["mean_after"] == pytest.approx(29 / 8)
    assert result["mean_difference"] == pytest.approx(0.75)
    assert result["wilcoxon_w"] == 4
    assert result["rank_biserial"] == pytest.approx(13 / 21)
    assert rank_biserial(np.array(before), np.array(after)) == pytest.approx(13 / 21)
    assert result["p_value"] == pytest.approx(wilcoxon(after, before).pvalue)
    assert result["p_holm"] == pytest.approx(result["p_value"])  # one item: nothing to adjust
    assert -1 <= result["rb_ci_low"] <= result["rank_biserial"] <= result["rb_ci_high"] <= 1
    again = prepost_table(table, spec).loc["Listening"]
    assert (again["rb_ci_low"], again["rb_ci_high"]) == (result["rb_ci_low"], result["rb_ci_high"])


def test_theme_gains_match_hand_values_and_mann_whitney(table):
    from scipy.stats import mannwhitneyu

    spec = parse_prepost_spec(SPEC, "spec.yaml")
    answered = table["answer"].ne("").to_numpy()
    gains = theme_gains(table, spec, CB, answered).set_index("code")
    row = gains.loc["expectations"]
    # with: r01 +2, r02 0, r06 +3 (r09 has no pre rating); without: r03 +1, r05 -1, r07 -1, r08 0 (r04 unanswered)
    assert (row["n_with"], row["n_without"]) == (3, 4)
    assert row["mean_gain_with"] == pytest.approx(5 / 3)
    assert row["mean_gain_without"] == pytest.approx(-1 / 4)
    assert row["p_value"] == pytest.approx(mannwhitneyu([2, 0, 3], [1, -1, -1, 0]).pvalue)


@pytest.mark.parametrize("text, message", [
    ("items: [{name: L, before: q1_pre}]",
     r"spec\.yaml, item #1: missing 'after'\. Every item needs a name, a before and an after column\."),
    ("items: []", r"spec\.yaml: 'items' must be a non-empty list of items"),
    ("items: [{name: L, before: a, after: b, scale: 5}]", r"spec\.yaml, item #1: unknown key\(s\) \['scale'\]"),
    ("scale: {min: 5, max: 1}\nitems: [{name: L, before: a, after: b}]", r"spec\.yaml: 'scale' min must be below max"),
    ("items: [{name: L, before: a, after: b}, {name: L, before: c, after: d}]",
     r"spec\.yaml: item name\(s\) \['L'\] appear more than once"),
    ("items: [oops", r"spec\.yaml: invalid YAML at line 1"),
])
def test_bad_spec_is_a_one_line_error(text, message):
    with pytest.raises(SpecError, match=message):
        parse_prepost_spec(text, "spec.yaml")


@pytest.mark.parametrize("text, message", [
    # 9 nested anchors of 9 aliases: 9**9 names in ~400 bytes, refused at the first anchor
    ("items:\n  - name: [&a0 [l, l, l, l, l, l, l, l, l], " + ", ".join(
        f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)) + "]\n    before: a\n    after: b\n",
     r"^spec\.yaml: invalid YAML at line 2: anchor '&a0' found; opm-nlp reads plain YAML without anchors"),
    ("items:\n  - {name: L, before: a, after: b}\n  - name: M\n    before: c\n    before: d\n    after: e\n",
     r"^spec\.yaml: invalid YAML at line 5: duplicate key 'before' \(first at line 4\); keep one of them\.$"),
])
def test_spec_yaml_refuses_aliases_and_repeated_keys(text, message):
    with pytest.raises(SpecError, match=message):
        parse_prepost_spec(text, "spec.yaml")


def test_spec_columns_and_values_are_checked(table, tmp_path):
    missing = parse_prepost_spec("items: [{name: L, before: q9_pre, after: q1_post}]", "spec.yaml")
    with pytest.raises(SpecError, match=r"spec\.yaml: item 'L' names column 'q9_pre' \(before\), which is not in "
                                        r"t\.csv\. Columns: \[.*\]\. Fix the column name in the spec\."):
        prepost_table(table, missing, source="t.csv")
    frame = small_table()
    frame.loc[4, "q1_post"] = "much better"
    with pytest.raises(DataError, match=r"t\.csv: column 'q1_post' \(item 'Listening', after\), row 6: expected a "
                                        r"number, found 'much better'\. Recode ratings as numbers"):
        prepost_table(frame, parse_prepost_spec(SPEC, "spec.yaml"), source="t.csv")
    frame.loc[4, "q1_post"] = "7"
    with pytest.raises(DataError, match=r"row 6: '7' is outside the scale 1-5 declared in spec\.yaml"):
        prepost_table(frame, parse_prepost_spec(SPEC, "spec.yaml"), source="t.csv")
    with pytest.raises(SpecError, match=r"Pre/post spec not found: .*nope\.yaml\."):
        load_prepost_spec(tmp_path / "nope.yaml")


# -- input checks ---------------------------------------------------------------------------------
def test_group_column_with_too_many_values_is_refused(table, monkeypatch):
    import opm_nlp.report.tables

    monkeypatch.setattr(opm_nlp.report.tables, "MAX_GROUPS", 5)
    with pytest.raises(DataError, match=r"t\.csv: column 'response_id' has 10 distinct values; --by expects a "
                                        r"grouping column with at most 5 groups"):
        build_report(table, CB, "answer", "response_id", by=["response_id"], source="t.csv")


# -- files ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A full report (groups, 3 waves, pre/post) of the small table, written once."""
    folder = tmp_path_factory.mktemp("report")
    spec = parse_prepost_spec(SPEC, "spec.yaml")
    report = build_report(small_table(), CB, "answer", "response_id", by=["site"], wave="wave", quotes=2,
                          prepost=spec, source="small.csv")
    paths = report.write(folder / "out")
    return report, paths


def test_report_writes_three_files_with_one_sheet_per_table(written):
    from openpyxl import load_workbook

    report, paths = written
    charts = ["frequencies", "by_site", "waves", "cooccurrence", "prepost"]
    assert list(paths) == ["report.html", "report.xlsx", "theme_frequencies.csv",
                           *(f"figures/{c}.{suffix}" for c in charts for suffix in ("svg", "png"))]
    assert all(path.is_file() for path in paths.values())
    assert not [p for p in paths["report.html"].parent.rglob("*") if p.name.endswith(".tmp")]
    workbook = load_workbook(paths["report.xlsx"])
    assert workbook.sheetnames == ["README", "estimates", "frequencies", "study_table", "by_site", "waves", "wave_tests",
                                   "cooccurrence", "quotes", "prepost", "prepost_by_theme"]
    readme = [row for row in workbook["README"].iter_rows(min_row=2, values_only=True)]
    tables = [row for row in readme if row[1] != "How these numbers were made"]
    assert all(row[3] for row in tables)  # every table says what it rests on
    assert any(row[1] == "How these numbers were made" and row[2] for row in readme)
    assert "9 answers (of 10 respondents): 9 coded or reviewed by a person, 0 with model suggestions only" in readme[0][3]
    cells = [c for row in workbook["quotes"].iter_rows(min_row=2) for c in row if c.value == "-check in on the "
             "relationship each month"]
    assert cells and all(c.data_type == "s" for c in cells)  # formula-like text stays text
    frequencies = pd.read_csv(paths["theme_frequencies.csv"])
    assert frequencies["code"].tolist() == ["expectations", "relationship", "phases"]
    assert frequencies["respondents"].tolist() == [4, 4, 3]
    assert frequencies.loc[0, "pct_of_answered"] == 44.4444
    assert frequencies.loc[0, "ci_low"] == pytest.approx(100 * wilson(4, 9)[0], abs=1e-4)


def test_html_is_self_contained_and_escaped(written):
    _, paths = written
    page = paths["report.html"].read_text(encoding="utf-8")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)
    assert "url(http" not in page and "@import" not in page and "<script" not in page
    assert page.count("<svg") == 5  # frequencies, by site, wave trend, co-occurrence, pre/post (no audit, no model)
    assert page.count("<table") == len(written[0].tables)
    assert "Fisher&#39;s exact" in page or "Fisher's exact" in page
    assert "p_holm is Holm-adjusted within each family" in page
    version = importlib.metadata.version("opm-nlp")
    assert f'<meta name="generator" content="opm-nlp {version}">' in page and f"with opm-nlp {version}</p>" in page


def test_failed_write_leaves_no_files(tmp_path, monkeypatch):
    import opm_nlp.io.tables

    report = build_report(small_table(), CB, "answer", "response_id", quotes=1)
    previous = tmp_path / "old"
    report.write(previous)
    before = {p.relative_to(previous): p.read_bytes() for p in previous.rglob("*") if p.is_file()}

    def broken(sheets, path):
        Path(path).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(opm_nlp.io.tables, "write_xlsx", broken)
    with pytest.raises(OSError, match="disk full"):
        report.write(tmp_path / "new")
    assert not (tmp_path / "new").exists()
    with pytest.raises(OSError, match="disk full"):
        report.write(previous)
    assert {p.relative_to(previous): p.read_bytes() for p in previous.rglob("*") if p.is_file()} == before


# -- the page in a browser ------------------------------------------------------------------------
def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120)


def test_report_renders_tables_and_charts_in_headless_chromium(written, tmp_path):
    if not CHROMIUM.exists():
        reason = "Chromium not installed (/usr/bin/chromium); apt-get install -y chromium to run this test"
        if REQUIRE_CHROMIUM:
            pytest.fail(f"OPM_NLP_REQUIRE_CHROMIUM=1 but {reason}")
        pytest.skip(reason)
    from PIL import Image, ImageStat

    url = written[1]["report.html"].resolve().as_uri()
    dom = _chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<table") == len(written[0].tables)
    assert dom.stdout.count("<svg") == 5
    assert "Aligning expectations" in dom.stdout and "Listening" in dom.stdout

    shot = tmp_path / "report.png"
    result = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,2000", url)
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    image = Image.open(shot).convert("L")
    assert image.size == (1200, 2000)
    stats = ImageStat.Stat(image)
    assert stats.stddev[0] > 20  # text, bars and tables, not a blank page
    dark = sum(image.histogram()[:128]) / (1200 * 2000)
    assert 0.005 < dark < 0.5


# -- command line ---------------------------------------------------------------------------------
def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture()
def small_csv(tmp_path):
    path = tmp_path / "small.csv"
    small_table().to_csv(path, index=False)
    (tmp_path / "small.yaml").write_text(CB.to_yaml(), encoding="utf-8")
    (tmp_path / "spec.yaml").write_text(SPEC, encoding="utf-8")
    return path


def test_cli_report_writes_the_report(small_csv, tmp_path):
    out = tmp_path / "rep"
    result = run("report", small_csv, "--codebook", tmp_path / "small.yaml", "--out", out, "--by", "site",
                 "--wave", "wave", "--quotes", "1", "--prepost", tmp_path / "spec.yaml")
    assert result.exit_code == 0, result.output
    assert result.output == (
        "small.csv: answers in 'answer', ids in 'response_id'. Rests on 9 answers (of 10 respondents): "
        "9 coded or reviewed by a person, 0 with model suggestions only.\n"
        f"Report written to {out}: report.html, report.xlsx, theme_frequencies.csv; charts in figures/ as SVG and "
        "PNG: frequencies, by_site, waves, cooccurrence, prepost\n")
    assert sorted(p.name for p in out.iterdir()) == ["figures", "report.html", "report.xlsx", "theme_frequencies.csv"]


@pytest.mark.parametrize("column, cell, row, fix", [
    ("evidence_spans", '{"expectations":[0,999]}', 12, "Tag the answers again with opm-nlp tag"),
    ("reviewed_spans", '{"expectations":[[5,3]]}', 12, "Pull the review again with opm-nlp review pull"),
])
def test_cli_report_refuses_a_spans_cell_that_does_not_fit_its_answer(tmp_path, column, cell, row, fix):
    frame = tagged_table()  # row 12 of the file: r11, the model's suggestion
    frame[column] = ""
    frame.loc[0, column] = '{"expectations":[0,3]}' if column == "evidence_spans" else '{"expectations":[[0,3]]}'
    (tmp_path / "cb.yaml").write_text(CB.to_yaml(), encoding="utf-8")
    out = tmp_path / "rep"
    frame.loc[10, column] = cell
    frame.to_csv(tmp_path / "tagged.csv", index=False)
    result = run("report", tmp_path / "tagged.csv", "--codebook", tmp_path / "cb.yaml", "--out", out)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {tmp_path / 'tagged.csv'}: column '{column}', row {row} "
                                    f"(response id 'r11'): code 'expectations': span ")
    assert result.output.endswith(f"{fix}, or clear the cell.\n") and result.output.count("\n") == 1
    assert "Traceback" not in result.output and not out.exists()
    frame.loc[10, column] = ""  # a file whose spans fit still makes its report
    frame.to_csv(tmp_path / "tagged.csv", index=False)
    result = run("report", tmp_path / "tagged.csv", "--codebook", tmp_path / "cb.yaml", "--out", out)
    assert result.exit_code == 0, result.output
    assert (out / "report.xlsx").exists()


def test_dollar_signs_in_chart_text_are_drawn_as_plain_text(tmp_path):
    """Paired $...$ would be a matplotlib formula and an odd $$ a parse error; chart text is plain text."""
    frame = small_table().rename(columns={"site": "site $"})
    frame["site $"] = frame["site $"].map({"A": "Grant $$ office", "B": "_$x$ lab"})  # "_": kept in legends
    frame["wave"] = frame["wave"].map({"2019": "W$1", "2020": "W$2$", "2021": "W3"})
    (tmp_path / "small.csv").write_text(frame.to_csv(index=False), encoding="utf-8")
    codebook = CB.to_yaml().replace("label: Phases", r"label: Phases \$x$ and $$")
    (tmp_path / "cb.yaml").write_text(codebook, encoding="utf-8")
    (tmp_path / "spec.yaml").write_text(SPEC.replace("name: Listening", "name: Listening $y$"), encoding="utf-8")
    out = tmp_path / "rep"
    result = run("report", tmp_path / "small.csv", "--codebook", tmp_path / "cb.yaml", "--out", out, "--by", "site $",
                 "--wave", "wave", "--quotes", "0", "--prepost", tmp_path / "spec.yaml")
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text(encoding="utf-8")
    svg = " ".join(re.findall(r"<svg .*?</svg>", html, flags=re.S))
    for text in ["Grant $$ office (n=5)", "_$x$ lab (n=4)", "W$1", "W$2$", r"Phases \$x$ and $$", "Listening $y$",
                 "Themes by site $"]:
        assert text in svg, text


def test_cli_report_on_the_illustrative_coded_file(tmp_path):
    out = tmp_path / "rep"
    result = run("report", CODED, "--codebook", CODEBOOK, "--out", out, "--text-col", "answer",
                 "--id-col", "response_id", "--quotes", "0")
    assert result.exit_code == 0, result.output
    assert "Rests on 387 answers (of 387 respondents): 387 coded or reviewed by a person" in result.output
    frequencies = pd.read_csv(out / "theme_frequencies.csv").set_index("code")
    assert frequencies.loc["aligning_expectations", "respondents"] == 111  # examples/README.md


@pytest.mark.parametrize("extra, message", [
    (["--by", "campus"], "Error: Column 'campus' not found in {csv}. Columns: ['response_id', 'answer', 'wave', "
                         "'site', 'q1_pre', 'q1_post', 'expectations', 'relationship', 'phases']. Pass --by with a "
                         "column of the file that holds groups (e.g. wave, institution, role).\n"),
    (["--wave", "cohort"], "Error: Column 'cohort' not found in {csv}. Columns: ['response_id', 'answer', 'wave', "
                           "'site', 'q1_pre', 'q1_post', 'expectations', 'relationship', 'phases']. Pass --wave with a "
                           "column of the file that holds groups (e.g. wave, institution, role).\n"),
    (["--prepost", "{tmp}/bad_spec.yaml"],
     "Error: {tmp}/bad_spec.yaml: item 'Listening' names column 'q1_before' (before), which is not in {csv}. "
     "Columns: ['response_id', 'answer', 'wave', 'site', 'q1_pre', 'q1_post', 'expectations', 'relationship', "
     "'phases']. Fix the column name in the spec.\n"),
    (["--prepost", "{tmp}/text_spec.yaml"],
     "Error: {csv}: column 'site' (item 'Listening', after), row 2 and 9 more: expected a number, found 'A'. "
     "Recode ratings as numbers (e.g. 1-5) or leave the cell empty.\n"),
])
def test_cli_report_errors_are_one_line_and_write_nothing(small_csv, tmp_path, extra, message):
    (tmp_path / "bad_spec.yaml").write_text("items:\n  - {name: Listening, before: q1_before, after: q1_post}\n")
    (tmp_path / "text_spec.yaml").write_text("items:\n  - {name: Listening, before: q1_pre, after: site}\n")
    fill = {"csv": small_csv, "tmp": tmp_path}
    out = tmp_path / "rep"
    result = run("report", small_csv, "--codebook", tmp_path / "small.yaml", "--out", out,
                 *[a.format(**fill) for a in extra])
    assert result.exit_code == 1
    assert result.output.startswith(message.format(**fill))
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert not out.exists()


def test_cli_report_file_without_code_columns(tmp_path):
    path = tmp_path / "answers.csv"
    small_table()[["response_id", "answer", "wave"]].to_csv(path, index=False)
    (tmp_path / "small.yaml").write_text(CB.to_yaml(), encoding="utf-8")
    result = run("report", path, "--codebook", tmp_path / "small.yaml", "--out", tmp_path / "rep")
    assert result.exit_code == 1
    assert result.output.startswith(
        f"Error: {path}: no code columns found. Expected one 0/1 column per code, named by its id ['expectations', "
        f"'relationship', 'phases'] or label (wide format)")
    assert not (tmp_path / "rep").exists()


def test_report_help_has_an_example_and_start_up_stays_light():
    result = run("report", "--help")
    assert "Example:" in result.output and "opm-nlp report tagged.csv" in result.output
    code = ("import sys; from opm_nlp.cli.main import main; sys.argv=['opm-nlp','report','--help'];\n"
            "try: main()\nexcept SystemExit: pass\n"
            "heavy = [m for m in ('matplotlib', 'statsmodels', 'scipy', 'jinja2') if m in sys.modules]\n"
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
