"""Reports with an audit sample: reading --audit, estimates per code, the CLI's report --audit/--model."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from opm_nlp.cli.main import cli
from opm_nlp.codebook.codes import parse_codebook
from opm_nlp.columns import AUDIT_COL, REVIEWED_COL
from opm_nlp.exceptions import DataError
from opm_nlp.report.audit import read_audit
from opm_nlp.report.prevalence import ESTIMATE_COLUMNS, estimate_table
from opm_nlp.report.tables import prepare_table

CB_TEXT = """
name: two
version: "1"
codes:
  - {id: expectations, label: Aligning expectations, definition: d}
  - {id: relationship, label: Attention to the relationship, definition: d}
"""
CB = parse_codebook(CB_TEXT, source="two.yaml")
N = 400


def _wave(seed: int = 0, n_reviewed: int = 40) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A tagged wave whose model over-suggests 'expectations', and the wave's true codes."""
    rng = np.random.default_rng(seed)
    truth = pd.DataFrame({"expectations": (rng.random(N) < 0.3).astype(int),
                          "relationship": (rng.random(N) < 0.1).astype(int)})
    tagged = pd.DataFrame({"response_id": [f"r{i:03d}" for i in range(N)], "answer": [f"answer {i}" for i in range(N)]})
    for code in CB.ids:
        score = np.clip(0.5 * truth[code] + 0.32 + 0.2 * rng.standard_normal(N), 0, 1)
        tagged[code] = (score >= 0.5).astype(int)
        tagged[f"score_{code}"] = score.round(4)
    tagged[REVIEWED_COL] = 0
    tagged.loc[: n_reviewed - 1, REVIEWED_COL] = 1
    tagged.loc[: n_reviewed - 1, CB.ids] = truth.loc[: n_reviewed - 1, CB.ids].to_numpy()
    return tagged, truth


def _audit(tagged: pd.DataFrame, truth: pd.DataFrame, n: int = 60, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(tagged[REVIEWED_COL].to_numpy() == 0)
    rows = rng.choice(pool, n, replace=False)
    audit = pd.DataFrame({"response_id": tagged["response_id"].to_numpy()[rows],
                          "answer": tagged["answer"].to_numpy()[rows]})
    for code in CB.ids:
        audit[code] = truth[code].to_numpy()[rows]
    audit[REVIEWED_COL] = 1
    audit[AUDIT_COL] = f"simple random sample of {n} unreviewed answers, seed {seed}"
    return audit


def _read(audit, tagged, **kwargs):
    table = prepare_table(tagged, CB, "answer", "response_id")
    reviewed = table[REVIEWED_COL].to_numpy() == 1
    return read_audit(audit, CB, table, "answer", "response_id", reviewed=reviewed, source="audit.csv",
                      tagged_source="tagged.csv", **kwargs)


def test_read_audit_returns_codes_and_design():
    tagged, truth = _wave()
    audit = _audit(tagged, truth)
    result = _read(audit, tagged)
    assert len(result.codes) == 60 and list(result.codes.columns) == CB.ids
    assert result.design.startswith("simple random sample of 60")
    assert result.codes.loc[audit["response_id"].iloc[0], "expectations"] == audit["expectations"].iloc[0]


def test_audit_ids_must_be_in_the_wave():
    tagged, truth = _wave()
    audit = _audit(tagged, truth)
    audit.loc[0, "response_id"] = "zz1"
    with pytest.raises(DataError, match=r"audit.csv: 1 id\(s\) are not in tagged.csv: zz1\. An audit is drawn"):
        _read(audit, tagged)


def test_audit_may_not_hold_reviewed_answers():
    tagged, truth = _wave()
    audit = _audit(tagged, truth)
    audit.loc[0, "response_id"] = "r000"  # reviewed in the wave
    with pytest.raises(DataError, match=r"1 audit answer\(s\) were reviewed in tagged.csv \(r000\)"):
        _read(audit, tagged)


def test_partly_coded_audit_is_refused_with_the_count_unless_asked():
    tagged, truth = _wave()
    audit = _audit(tagged, truth)
    audit.loc[:9, REVIEWED_COL] = 0
    with pytest.raises(DataError, match=r"10 of its 60 answers are not coded yet.*--partial-audit to use the 50"):
        _read(audit, tagged)
    result = _read(audit, tagged, partial=True)
    assert len(result.codes) == 50 and "partly coded: 50 of 60" in result.notes[0]


def test_audit_needs_the_id_column():
    tagged, truth = _wave()
    audit = _audit(tagged, truth).rename(columns={"response_id": "rid"})
    with pytest.raises(DataError, match=r"audit.csv has no column 'response_id' \(the id column of tagged.csv\)"):
        _read(audit, tagged)


def test_audit_the_model_was_trained_on_is_refused():
    from opm_nlp.model.training_ids import TRAINING_IDS_KEY, training_ids_record

    tagged, truth = _wave()
    audit = _audit(tagged, truth)
    first = audit["response_id"].iloc[0]
    metadata = {TRAINING_IDS_KEY: training_ids_record(["x-1", first])}
    with pytest.raises(DataError, match=rf"the model was trained on 1 of the audit's answers \({first}\)"):
        _read(audit, tagged, metadata=metadata)
    metadata = {TRAINING_IDS_KEY: training_ids_record(["x-1", "x-2"])}
    assert len(_read(audit, tagged, metadata=metadata).codes) == 60


def test_estimates_with_an_audit_cover_the_truth_and_beat_the_model():
    tagged, truth = _wave()
    table = prepare_table(tagged, CB, "answer", "response_id")
    audit = _read(_audit(tagged, truth), tagged)
    estimates, notes = estimate_table(table, CB, "answer", "response_id", audit=audit)
    assert set(ESTIMATE_COLUMNS) <= set(estimates.columns)
    assert (estimates["estimate_method"] == "prediction-powered").all()
    true_pct = 100 * truth["expectations"].mean()
    row = estimates.loc["expectations"]
    assert row["estimate_ci_low"] <= true_pct <= row["estimate_ci_high"]
    assert abs(row["estimate_pct"] - true_pct) < abs(row["model_only_pct"] - true_pct)
    assert row["estimate_ci_high"] - row["estimate_ci_low"] < row["audit_only_ci_high"] - row["audit_only_ci_low"]
    assert row["effective_audit_n"] > 60 and row["audit_n"] == 60


def test_estimates_without_audit_are_adjusted_with_confusion_counts_else_model_only():
    tagged, truth = _wave()
    table = prepare_table(tagged, CB, "answer", "response_id")
    plain, _ = estimate_table(table, CB, "answer", "response_id")
    assert (plain["estimate_method"] == "model-only").all()
    trust = {"kind": "held-out", "answers": 300, "micro_f1": 0.7, "macro_f1": 0.6,
             "per_code": {"expectations": {"tp": 80, "fp": 30, "fn": 10, "tn": 180}}}
    estimates, notes = estimate_table(table, CB, "answer", "response_id", trust=trust)
    assert estimates["estimate_method"].tolist() == ["adjusted", "model-only"]
    assert "rest on the assumption that this wave's errors look like those" in notes[0]
    assert "A random audit of about" in notes[0]


def test_all_reviewed_is_human_coded():
    tagged, truth = _wave(n_reviewed=N)
    estimates, _ = estimate_table(prepare_table(tagged, CB, "answer", "response_id"), CB, "answer", "response_id")
    assert (estimates["estimate_method"] == "human-coded").all()
    assert estimates.loc["expectations", "estimate_pct"] == pytest.approx(100 * truth["expectations"].mean())


@pytest.fixture()
def files(tmp_path):
    tagged, truth = _wave()
    (tmp_path / "two.yaml").write_text(CB_TEXT, encoding="utf-8")
    tagged.to_csv(tmp_path / "tagged.csv", index=False)
    _audit(tagged, truth).to_csv(tmp_path / "audit.csv", index=False)
    return tmp_path


def test_cli_report_with_audit(files):
    out = files / "report"
    result = CliRunner().invoke(cli, ["report", str(files / "tagged.csv"), "--codebook", str(files / "two.yaml"),
                                      "--audit", str(files / "audit.csv"), "--out", str(out), "--quotes", "0"])
    assert result.exit_code == 0, result.output
    freq = pd.read_csv(out / "theme_frequencies.csv")
    assert set(ESTIMATE_COLUMNS) <= set(freq.columns)
    assert set(freq["estimate_method"]) == {"prediction-powered"}
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.index("How these numbers were made") < page.index("Theme frequencies")
    assert "simple random sample of 60" in page
    assert "estimates" in pd.ExcelFile(out / "report.xlsx").sheet_names
    readme = pd.read_excel(out / "report.xlsx", sheet_name="README")
    made = readme.loc[readme["table"] == "How these numbers were made", "what it shows"].tolist()
    assert any("simple random sample of 60" in line for line in made)  # the xlsx says it as the page does
    # the corrected estimates get their own chart, and the warning says the counts are not corrected
    assert (out / "figures" / "estimates.svg").is_file()
    assert "The estimates (first table) correct for the model's errors" in page


def test_cli_report_without_audit_says_how_to_get_reportable_estimates(files):
    out = files / "report"
    result = CliRunner().invoke(cli, ["report", str(files / "tagged.csv"), "--codebook", str(files / "two.yaml"),
                                      "--out", str(out), "--quotes", "0"])
    assert result.exit_code == 0, result.output
    assert set(pd.read_csv(out / "theme_frequencies.csv")["estimate_method"]) == {"model-only"}
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "code a random sample blind ('opm-nlp review sample') and pass it with --audit" in page
    assert not (out / "figures" / "estimates.svg").exists()  # model-only estimates repeat the counts' chart


def test_cli_report_refuses_a_bad_audit_in_one_line(files):
    audit = pd.read_csv(files / "audit.csv")
    audit.loc[0, "response_id"] = "nope"
    audit.to_csv(files / "audit.csv", index=False)
    out = files / "report"
    result = CliRunner().invoke(cli, ["report", str(files / "tagged.csv"), "--codebook", str(files / "two.yaml"),
                                      "--audit", str(files / "audit.csv"), "--out", str(out)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: audit.csv: 1 id(s) are not in tagged.csv: nope. An audit is drawn from the wave it measures; "
        "pass the audit of this wave."]
    assert not out.exists()


def test_cli_partial_audit_needs_audit(files):
    result = CliRunner().invoke(cli, ["report", str(files / "tagged.csv"), "--codebook", str(files / "two.yaml"),
                                      "--partial-audit", "--out", str(files / "r")])
    assert result.exit_code == 1 and "--partial-audit needs --audit" in result.output
