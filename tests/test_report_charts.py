"""Tests of the report's charts and quotes as a paper needs them: readable, complete, on their scale, saved."""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from opm_nlp.cli.main import cli
from opm_nlp.report.build import build_report
from opm_nlp.report.plots import file_stems, plot_cooccurrence, plot_groups
from opm_nlp.report.prepost import parse_prepost_spec
from opm_nlp.report.quotes import example_quotes, is_non_answer
from opm_nlp.report.tables import cooccurrence, group_frequencies, prepare_table

from .conftest import CODEBOOK, CODED
from .test_report import CB, CHROMIUM, REQUIRE_CHROMIUM, SPEC, _chromium, small_table


def texts(figure) -> list[str]:
    """Every text a figure draws (titles, tick labels, annotations), lines joined by spaces."""
    from matplotlib.text import Text

    figure.canvas.draw()  # tick labels exist once drawn
    return [t.get_text().replace("\n", " ") for t in figure.findobj(Text) if t.get_visible() and t.get_text()]


# -- charts ---------------------------------------------------------------------------------------
def test_group_chart_is_one_panel_per_code_with_the_groups_on_its_axis():
    """No legend to match colours against: each code its own panel, the groups named on the axis."""
    from opm_nlp.codebook.codes import load_codebook

    codebook = load_codebook(CODEBOOK)
    coded = pd.read_csv(CODED)
    long = group_frequencies(prepare_table(coded, codebook, "answer", "response_id"), codebook, "answer",
                             "institution")
    figure = plot_groups(long, "institution", codebook)
    groups = list(dict.fromkeys(long["institution"]))
    visible = [ax for ax in figure.axes if ax.get_visible()]
    assert not figure.legends and not any(ax.get_legend() for ax in visible)
    assert len(visible) == len(codebook)
    assert [ax.get_title(loc="left").replace("\n", " ") for ax in visible] == [c.label for c in codebook.codes]
    labels = [t.get_text().replace("\n", " ") for t in visible[0].get_yticklabels()]
    assert [re.sub(r" \(n=\d+\)$", "", label) for label in labels] == groups
    assert all(len(ax.lines) + len(ax.collections) >= 1 for ax in visible)
    points = visible[0].lines[0].get_xydata()  # the dots of the first code, one per group
    assert len(points) == len(groups)


def test_heat_map_shows_every_label_in_full():
    from opm_nlp.codebook.codes import load_codebook

    codebook = load_codebook(CODEBOOK)
    table = prepare_table(pd.read_csv(CODED), codebook, "answer", "response_id")
    figure = plot_cooccurrence(cooccurrence(table, codebook, "answer"), codebook)
    ax = figure.axes[0]
    figure.canvas.draw()
    labels = [c.label for c in codebook.codes]
    assert [t.get_text() for t in ax.get_xticklabels()] == labels
    assert [t.get_text().replace("\n", " ") for t in ax.get_yticklabels()] == labels
    assert not [t for t in texts(figure) if t.endswith("…")]


def test_rating_chart_spans_the_declared_scale_not_the_means():
    frame = small_table()
    report = build_report(frame, CB, "answer", "response_id", quotes=0, prepost=parse_prepost_spec(SPEC, "s.yaml"))
    (figure,) = [f for section, _, f in report.charts() if section == "prepost"]
    low, high = figure.axes[0].get_xlim()
    assert low <= 1 < 1.2 and 4.8 < 5 <= high
    assert "mean rating (scale 1–5)" in texts(figure)
    # Without a declared scale, the axis spans the ratings given (1 to 5 in the small table), not the means.
    bare = SPEC.replace("scale: {min: 1, max: 5}\n", "")
    report = build_report(frame, CB, "answer", "response_id", quotes=0, prepost=parse_prepost_spec(bare, "s.yaml"))
    assert report.rating_scale == (1.0, 5.0)


# -- quotes ---------------------------------------------------------------------------------------
def quote_table(reviewed: list[int], scores: list[float], answers: list[str], codes: list[tuple[int, int]],
                ) -> pd.DataFrame:
    return pd.DataFrame({
        "response_id": [f"q{i:02d}" for i in range(len(answers))], "answer": answers,
        "wave": ["2022"] * len(answers), "site": ["A", "B"] * (len(answers) // 2) + ["A"] * (len(answers) % 2),
        "expectations": [c[0] for c in codes], "relationship": [c[1] for c in codes], "phases": 0,
        "score_expectations": scores, "score_relationship": scores, "score_phases": 0.0, "reviewed": reviewed,
    })


@pytest.mark.parametrize("text", ["None", "None.", "n/a", "N/A", "-", "no", "Nope", "nothing", "IDP", "Listen!",
                                  "not sure yet", "", "   ", "No comment", "none at this time"])
def test_non_answers_are_never_quoted(text):
    assert is_non_answer(text)
    answers = [text, "Set clear expectations with each mentee in the first meeting."]
    table = quote_table([0, 0], [0.99, 0.60], answers, [(1, 0), (1, 0)])
    quotes = example_quotes(table, CB, "answer", "response_id", n=3)
    assert quotes["answer"].tolist() == [answers[1]]


def test_each_answer_is_quoted_for_one_theme_only():
    answers = ["Talk about expectations and the relationship at every meeting.",
               "Write down expectations with my mentee this term.",
               "Spend time on the relationship, not only on the project."]
    table = quote_table([1, 1, 1], [np.nan] * 3, answers, [(1, 1), (1, 0), (0, 1)])
    quotes = example_quotes(table, CB, "answer", "response_id", n=3)
    assert quotes["answer"].is_unique
    assert set(quotes["answer"]) == set(answers)
    assert quotes.groupby("code").size().to_dict() == {"expectations": 2, "relationship": 1} or \
        quotes.groupby("code").size().to_dict() == {"expectations": 1, "relationship": 2}


def test_quotes_prefer_human_coded_answers_then_high_scores_and_say_which():
    answers = ["Model says expectations with a very high score here.",
               "A person coded this answer about shared expectations.",
               "Model again on expectations, a lower score this time.",
               "Another person-coded answer on clear expectations early."]
    table = quote_table([0, 1, 0, 1], [0.99, 0.40, 0.80, 0.30], answers, [(1, 0)] * 4)
    quotes = example_quotes(table, CB, "answer", "response_id", n=4)
    assert quotes["coded_by"].tolist() == ["person", "person", "model", "model"]
    assert quotes["answer"].tolist()[2:] == [answers[0], answers[2]]


def test_quotes_show_the_wave_and_groups_beside_each_answer():
    report = build_report(small_table(), CB, "answer", "response_id", by=["site"], wave="wave", quotes=1)
    quotes = report.tables["quotes"].frame
    assert list(quotes.columns[:7]) == ["code", "label", "rank", "response_id", "answer", "wave", "site"]
    row = quotes[quotes["response_id"] == "r03"]
    assert row[["wave", "site"]].values.tolist() == [["2019", "B"]]
    page = report.to_html()
    assert re.search(r"<th>wave</th>\s*<th>site</th>", page)


# -- waves ----------------------------------------------------------------------------------------
def test_one_wave_has_no_wave_section_and_says_why():
    frame = small_table().assign(wave="2022")
    report = build_report(frame, CB, "answer", "response_id", wave="wave", quotes=0)
    assert "waves" not in report.tables and "wave_tests" not in report.tables
    assert "waves" not in [section for section, _, _ in report.charts()]
    assert report.notes == ["Column 'wave' holds one wave (2022): the report has no section by wave and no "
                            "change to test."]
    page = report.to_html()
    assert "Themes by wave" not in page and "no section by wave" in page


# -- files ----------------------------------------------------------------------------------------
def test_each_chart_is_saved_as_svg_and_png_named_after_its_table(tmp_path):
    from PIL import Image

    frame = small_table().rename(columns={"site": "site name"})
    report = build_report(frame, CB, "answer", "response_id", by=["site name"], wave="wave", quotes=0,
                          prepost=parse_prepost_spec(SPEC, "s.yaml"))
    written = report.write(tmp_path / "out")
    charts = [name for name in written if name.startswith("figures/")]
    assert charts == [f"figures/{t}.{s}" for t in ("frequencies", "by_site_name", "waves", "cooccurrence", "prepost")
                      for s in ("svg", "png")]
    for name in charts:
        path = written[name]
        if name.endswith(".svg"):
            root = ElementTree.parse(path).getroot()
            assert root.tag == "{http://www.w3.org/2000/svg}svg"
            assert "Date" not in path.read_text(encoding="utf-8")  # the same report gives the same file
        else:
            with Image.open(path) as image:
                assert image.format == "PNG" and round(image.info["dpi"][0]) == 300
    assert "Themes by site name" in written["figures/by_site_name.svg"].read_text(encoding="utf-8")
    assert file_stems(["by_a b", "by_a_b", "by_A_B", "../x", ""]) == ["by_a_b", "by_a_b_2", "by_A_B_3", "x", "chart"]


def test_a_file_where_the_figures_folder_goes_is_one_clear_error(tmp_path):
    from opm_nlp.exceptions import DataError

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "figures").write_text("not a folder")
    report = build_report(small_table(), CB, "answer", "response_id", quotes=0)
    with pytest.raises(DataError, match=r"out/figures exists and is not a folder; the report writes its charts "
                                        r"there\. Move it, or pass another --out\."):
        report.write(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["figures"]


def test_cli_title_names_the_page(tmp_path):
    path = tmp_path / "small.csv"
    small_table().to_csv(path, index=False)
    (tmp_path / "small.yaml").write_text(CB.to_yaml(), encoding="utf-8")
    out = tmp_path / "rep"
    result = CliRunner().invoke(cli, ["report", str(path), "--codebook", str(tmp_path / "small.yaml"), "--out",
                                      str(out), "--quotes", "0", "--title", "Mentor training <2022>"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<title>Mentor training &lt;2022&gt;</title>" in page and "<h1>Mentor training &lt;2022&gt;</h1>" in page
    assert result.output.endswith("charts in figures/ as SVG and PNG: frequencies, cooccurrence\n")


# -- the page at 1,400 px in Chromium ------------------------------------------------------------
_MEASURE = r"""<script>
(function () {
  var out = {page: document.documentElement.scrollWidth, viewport: window.innerWidth, overflow: [], cut: []};
  document.querySelectorAll('.scroll').forEach(function (el) {
    if (el.scrollWidth > el.clientWidth + 1) out.overflow.push(el.closest('section').id);
  });
  document.querySelectorAll('svg').forEach(function (svg) {
    var box = svg.getBoundingClientRect();
    svg.querySelectorAll('text').forEach(function (t) {
      var r = t.getBoundingClientRect();
      if (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1
          || /\u2026$/.test(t.textContent)) out.cut.push(t.textContent);
    });
  });
  var pre = document.createElement('pre'); pre.id = 'measure'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""


def test_illustrative_report_fits_1400_px_with_no_label_cut(tmp_path):
    """Seven institutions side by side, as in the coded answers plus a tagged wave: nothing overflows."""
    if not CHROMIUM.exists():
        reason = "Chromium not installed (/usr/bin/chromium); apt-get install -y chromium to run this test"
        if REQUIRE_CHROMIUM:
            pytest.fail(f"OPM_NLP_REQUIRE_CHROMIUM=1 but {reason}")
        pytest.skip(reason)
    from opm_nlp.codebook.codes import load_codebook

    codebook = load_codebook(CODEBOOK)
    coded = pd.read_csv(CODED)
    coded.loc[coded.index % 12 == 0, "institution"] = "Cedar Valley School of Public Health"
    report = build_report(coded, codebook, "answer", "response_id", by=["institution", "role"], wave="wave",
                          quotes=2, source="coded.csv")
    assert len(report.groups["institution"]["institution"].unique()) == 7
    page = report.to_html()
    assert "<script" not in page
    (tmp_path / "measure.html").write_text(page.replace("</body>", _MEASURE + "</body>"), encoding="utf-8")
    dom = _chromium(tmp_path, "--window-size=1400,1000", "--dump-dom", (tmp_path / "measure.html").as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'<pre id="measure">(.*?)</pre>', dom.stdout, flags=re.S)
    assert found, dom.stdout[-2000:]
    measured = json.loads(html.unescape(found.group(1)))
    assert measured["page"] <= measured["viewport"]
    assert measured["overflow"] == [] and measured["cut"] == []
