"""Estimates per wave and group, and wave comparisons that never mix coder sources silently."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from opm_nlp.cli.main import cli
from opm_nlp.codebook.codes import parse_codebook
from opm_nlp.columns import AUDIT_COL, REVIEWED_COL
from opm_nlp.report.audit import read_audit
from opm_nlp.report.build import build_report
from opm_nlp.report.estimate import prediction_powered
from opm_nlp.report.strata import (
    ESTIMATE_INTERVAL,
    GROUP_ESTIMATE_COLUMNS,
    group_estimates,
)
from opm_nlp.report.tables import prepare_table
from opm_nlp.report.waves import MIX_TOLERANCE, NOT_COMPARABLE, wave_tests

CB_TEXT = """
name: two
version: "1"
codes:
  - {id: expectations, label: Aligning expectations, definition: d}
  - {id: relationship, label: Attention to the relationship, definition: d}
"""
CB = parse_codebook(CB_TEXT, source="two.yaml")
TRUE_SHARE = {"expectations": 0.3, "relationship": 0.1}  # the same in every wave: no real change


def _wave(name: str, n: int, rng: np.random.Generator, reviewed: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A wave tagged by a model that over-suggests both codes; all reviewed (true codes) or none."""
    truth = pd.DataFrame({code: (rng.random(n) < share).astype(int) for code, share in TRUE_SHARE.items()})
    frame = pd.DataFrame({"response_id": [f"{name}-{i:03d}" for i in range(n)],
                          "answer": [f"answer {i}" for i in range(n)], "wave": name})
    for code in CB.ids:
        score = np.clip(0.5 * truth[code] + 0.32 + 0.2 * rng.standard_normal(n), 0, 1)
        frame[code] = truth[code] if reviewed else (score >= 0.5).astype(int)
        frame[f"score_{code}"] = score.round(4)
    frame[REVIEWED_COL] = int(reviewed)
    return frame, truth


def _waves(seed: int = 0, spec=(("2021", 300, True), ("2022", 400, False))):
    rng = np.random.default_rng(seed)
    parts = [_wave(name, n, rng, reviewed) for name, n, reviewed in spec]
    return (pd.concat([p[0] for p in parts], ignore_index=True), pd.concat([p[1] for p in parts], ignore_index=True))


def _audit_frame(tagged, truth, per_wave: dict[str, int], seed: int = 1) -> pd.DataFrame:
    """A stratified audit: ``per_wave[w]`` answers drawn at random from wave w's unreviewed answers."""
    rng = np.random.default_rng(seed)
    rows = np.concatenate([rng.choice(np.flatnonzero((tagged["wave"] == w) & (tagged[REVIEWED_COL] == 0)), k,
                                      replace=False) for w, k in per_wave.items() if k])
    audit = tagged.loc[rows, ["response_id", "answer"]].reset_index(drop=True)
    for code in CB.ids:
        audit[code] = truth[code].to_numpy()[rows]
    audit[REVIEWED_COL] = 1
    audit[AUDIT_COL] = "stratified random sample by wave, proportional allocation, seed 1"
    return audit


def _read(audit, tagged):
    table = prepare_table(tagged, CB, "answer", "response_id")
    return read_audit(audit, CB, table, "answer", "response_id", reviewed=table[REVIEWED_COL].to_numpy() == 1,
                      source="audit.csv", tagged_source="tagged.csv")


def _tests(tagged, audit=None, trust=None):
    table = prepare_table(tagged, CB, "answer", "response_id")
    return wave_tests(table, CB, "answer", "wave", "response_id", audit=audit, trust=trust).set_index("code")


# -- a human-coded wave against a model-coded one --------------------------------------------------
def test_count_test_between_a_human_and_a_model_coded_wave_is_flagged_and_the_estimates_carry_it():
    tagged, truth = _waves()
    audit = _read(_audit_frame(tagged, truth, {"2022": 80}), tagged)
    tests = _tests(tagged, audit)
    row = tests.loc["expectations"]
    # the over-suggesting model makes the counts read a rise that is not there
    assert row["change_pp"] > 10
    assert row["test"] == NOT_COMPARABLE and np.isnan(row["p_value"]) and np.isnan(row["p_holm"])
    assert (row["human_from"], row["model_only_from"], row["human_to"], row["model_only_to"]) == (300, 0, 0, 400)
    assert row["coder_sources"] == "differ" and row["compared_on"] == "estimates"
    assert (row["method_from"], row["method_to"]) == ("human-coded", "prediction-powered")
    true_change = 100 * (truth["expectations"][300:].mean() - truth["expectations"][:300].mean())
    assert row["estimate_ci_low"] <= true_change <= row["estimate_ci_high"]
    assert abs(row["estimate_change_pp"] - true_change) < abs(row["change_pp"] - true_change)


def test_the_estimated_change_covers_the_true_change_in_most_draws():
    covered = []
    for seed in range(30):
        tagged, truth = _waves(seed)
        audit = _read(_audit_frame(tagged, truth, {"2022": 80}, seed=seed + 100), tagged)
        row = _tests(tagged, audit).loc["expectations"]
        true_change = 100 * (truth["expectations"][300:].mean() - truth["expectations"][:300].mean())
        covered.append(row["estimate_ci_low"] <= true_change <= row["estimate_ci_high"])
    assert np.mean(covered) >= 0.85


def test_without_estimates_a_mixed_comparison_rests_on_nothing_comparable():
    tagged, _ = _waves()
    row = _tests(tagged).loc["expectations"]
    assert row["test"] == NOT_COMPARABLE and row["method_to"] == "model-only"
    assert row["compared_on"] == "nothing comparable"
    trust = {"kind": "held-out", "per_code": {c: {"tp": 80, "fp": 40, "fn": 10, "tn": 170} for c in CB.ids}}
    assert _tests(tagged, trust=trust).loc["expectations", "compared_on"] == "estimates"


def test_waves_with_the_same_mix_keep_their_count_test():
    tagged, truth = _waves(spec=(("2021", 300, False), ("2022", 400, False)))
    audit = _read(_audit_frame(tagged, truth, {"2021": 40, "2022": 60}), tagged)
    row = _tests(tagged, audit).loc["expectations"]
    assert row["coder_sources"] == "same" and row["test"] == "two-proportion z" and row["p_value"] > 0
    assert row["compared_on"] == "counts and estimates"


@pytest.mark.parametrize(("reviewed_2021", "sources"), [(30, "same"), (31, "differ")])
def test_coder_sources_differ_beyond_the_mix_tolerance(reviewed_2021, sources):
    tagged, truth = _waves(spec=(("2021", 300, False), ("2022", 400, False)))
    first = np.flatnonzero(tagged["wave"] == "2021")[:reviewed_2021]
    tagged.loc[first, REVIEWED_COL] = 1
    tagged.loc[first, CB.ids] = truth.loc[first, CB.ids].to_numpy()
    row = _tests(tagged).loc["expectations"]
    assert MIX_TOLERANCE == pytest.approx(30 / 300)  # 10% human-coded against none: at the tolerance
    assert row["coder_sources"] == sources
    assert (row["test"] == NOT_COMPARABLE) == (sources == "differ")


# -- estimates per group ----------------------------------------------------------------------------
def test_stratified_audit_gives_each_wave_its_own_prediction_powered_estimate():
    tagged, truth = _waves(spec=(("2021", 300, False), ("2022", 400, False)))
    audit_frame = _audit_frame(tagged, truth, {"2021": 40, "2022": 60})
    audit = _read(audit_frame, tagged)
    table = prepare_table(tagged, CB, "answer", "response_id")
    long = group_estimates(table, CB, "answer", "response_id", "wave", audit=audit)
    assert list(long.columns) == ["wave", *GROUP_ESTIMATE_COLUMNS]
    assert set(long["method"]) == {"prediction-powered"} and (long["note"] == "").all()
    for wave, n_audit in (("2021", 40), ("2022", 60)):
        rows = tagged["wave"] == wave
        in_audit = tagged.loc[rows, "response_id"].isin(audit_frame["response_id"]).to_numpy()
        labels = np.where(in_audit, truth.loc[rows, "expectations"], np.nan)
        expected = prediction_powered(tagged.loc[rows, "score_expectations"], labels, in_audit)
        got = long[(long["wave"] == wave) & (long["code"] == "expectations")].iloc[0]
        assert got["estimate_pct"] == pytest.approx(100 * expected.estimate)
        assert (got["ci_low"], got["ci_high"]) == pytest.approx((100 * expected.low, 100 * expected.high))
        assert (got["n_answered"], got["n_reviewed"], got["n_audit"]) == (int(rows.sum()), 0, n_audit)


def test_a_group_without_audit_answers_falls_back_and_says_so():
    tagged, truth = _waves(spec=(("2021", 300, False), ("2022", 400, False)))
    audit = _read(_audit_frame(tagged, truth, {"2022": 60}), tagged)
    table = prepare_table(tagged, CB, "answer", "response_id")
    long = group_estimates(table, CB, "answer", "response_id", "wave", audit=audit).set_index(["wave", "code"])
    assert long.loc[("2022", "expectations"), "method"] == "prediction-powered"
    assert long.loc[("2021", "expectations"), "method"] == "model-only"
    assert long.loc[("2021", "expectations"), "note"] == ("no audit answers in this group (2 needed): not "
                                                          "prediction-powered; model-only")
    trust = {"kind": "held-out", "per_code": {c: {"tp": 80, "fp": 40, "fn": 10, "tn": 170} for c in CB.ids}}
    with_trust = group_estimates(table, CB, "answer", "response_id", "wave", audit=audit, trust=trust)
    assert set(with_trust.loc[with_trust["wave"] == "2021", "method"]) == {"adjusted"}
    report = build_report(tagged, CB, "answer", "response_id", wave="wave", quotes=0, audit=audit)
    assert any(note.startswith("By wave: 1 group(s) have fewer than 2 audit answers (2021)") and
               "review sample --by wave" in note for note in report.notes)


# -- in the report ----------------------------------------------------------------------------------
def test_report_has_estimate_tables_per_grouping_and_charts_them():
    tagged, truth = _waves()
    tagged["site"] = np.where(np.arange(len(tagged)) % 2, "North", "South")
    audit = _read(_audit_frame(tagged, truth, {"2022": 80}), tagged)
    report = build_report(tagged, CB, "answer", "response_id", by=["site"], wave="wave", quotes=0, audit=audit)
    names = list(report.tables)
    assert names.index("estimates_by_site") < names.index("by_site")
    assert names.index("estimates_by_wave") < names.index("waves") < names.index("wave_tests")
    assert report.tables["by_site"].title == "Themes by site (counts of suggestions)"
    charts = {section: caption for section, caption, _ in report.charts()}
    assert "by_site" not in charts and ESTIMATE_INTERVAL in charts["estimates_by_site"]
    assert "waves" not in charts and ESTIMATE_INTERVAL in charts["estimates_by_wave"]
    note = report.tables["wave_tests"].note
    assert "The tests compare counts of codes as they stand" in note and NOT_COMPARABLE in note
    page = report.to_html()
    assert "not comparable<br>(coder sources differ)" in page and "300 + 0<br>0 + 400" in page


def test_without_any_correction_charts_stay_on_the_counts():
    tagged, _ = _waves(spec=(("2021", 300, False), ("2022", 400, False)))
    report = build_report(tagged, CB, "answer", "response_id", wave="wave", quotes=0)
    assert set(report.tables["estimates_by_wave"].frame["method"]) == {"model-only"}
    assert "waves" in {section for section, _, _ in report.charts()}


def test_cli_report_writes_wave_estimates_to_the_workbook(tmp_path):
    tagged, truth = _waves()
    (tmp_path / "two.yaml").write_text(CB_TEXT, encoding="utf-8")
    tagged.to_csv(tmp_path / "tagged.csv", index=False)
    _audit_frame(tagged, truth, {"2022": 80}).to_csv(tmp_path / "audit.csv", index=False)
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "tagged.csv"), "--codebook", str(tmp_path / "two.yaml"),
                                      "--audit", str(tmp_path / "audit.csv"), "--wave", "wave", "--out", str(out),
                                      "--quotes", "0"])
    assert result.exit_code == 0, result.output
    sheets = pd.read_excel(out / "report.xlsx", sheet_name=None)
    by_wave = sheets["estimates_by_wave"]
    assert list(by_wave.columns) == ["wave", *GROUP_ESTIMATE_COLUMNS]
    assert set(by_wave["method"]) == {"human-coded", "prediction-powered"}
    tests = sheets["wave_tests"]
    assert set(tests["test"]) == {NOT_COMPARABLE} and tests["p_value"].isna().all()
    assert (out / "figures" / "estimates_by_wave.svg").is_file()
