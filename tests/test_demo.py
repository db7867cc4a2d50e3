"""``opm-nlp demo`` runs the illustrative chain end to end, and the shipped audit is what the docs say it is."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from opm_nlp.cli.main import cli

from .conftest import CODEBOOK, CODED, NEW_WAVE, ROOT

AUDIT = ROOT / "examples" / "opm_wave2022_audit_illustrative.csv"
MODEL = ROOT / "models" / "opm_default"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo_output"
    result = run("demo", "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    return out, result.output


def test_demo_estimates_come_from_the_shipped_audit(demo_run):
    out, output = demo_run
    frequencies = pd.read_csv(out / "theme_frequencies.csv")
    assert (frequencies["estimate_method"] == "prediction-powered").all()
    assert (frequencies["estimate_ci_low"] <= frequencies["estimate_pct"]).all()
    assert (frequencies["estimate_pct"] <= frequencies["estimate_ci_high"]).all()
    audit = pd.read_csv(AUDIT)
    expected_audit_only = 100 * audit[frequencies["code"]].mean()  # the audit alone: its share per code
    assert frequencies.set_index("code")["audit_only_pct"].round(4).to_dict() == \
        expected_audit_only.round(4).to_dict()
    assert "Audit: 40 answers of the wave drawn at random and coded blind" in output
    for _, row in frequencies.iterrows():
        assert (f"{row['label']}  " in output and f"{row['estimate_pct']:5.1f}%  "
                f"({row['estimate_ci_low']:.1f}–{row['estimate_ci_high']:.1f})" in output)
    assert "contains the share among this wave's respondents in about 95 of 100 audits" in output


def test_demo_figures_are_those_report_audit_writes(demo_run, tmp_path):
    out, _ = demo_run
    result = run("report", out / "tagged.csv", "--codebook", CODEBOOK, "--audit", AUDIT, "--model", MODEL,
                 "--out", tmp_path / "report", "--quotes", "0")
    assert result.exit_code == 0, result.output
    assert (out / "theme_frequencies.csv").read_bytes() == (tmp_path / "report" / "theme_frequencies.csv").read_bytes()


def test_shipped_audit_is_the_sample_review_sample_draws(demo_run, tmp_path):
    out, _ = demo_run
    result = run("review", "sample", out / "tagged.csv", "--n", "40", "--seed", "2022", "--model", MODEL,
                 "--out", tmp_path / "audit.csv")
    assert result.exit_code == 0, result.output
    drawn = pd.read_csv(tmp_path / "audit.csv", dtype=str, keep_default_na=False)
    shipped = pd.read_csv(AUDIT, dtype=str, keep_default_na=False)
    assert shipped["response_id"].tolist() == drawn["response_id"].tolist()
    assert shipped["answer"].tolist() == drawn["answer"].tolist()
    wave = pd.read_csv(NEW_WAVE, dtype=str, keep_default_na=False).set_index("response_id")
    assert shipped["response_id"].isin(wave.index).all()
    assert (wave.loc[shipped["response_id"], "answer"].to_numpy() == shipped["answer"].to_numpy()).all()
    # The design line, as the command wrote it, up to the date of the draw.
    design = drawn["audit_sample"].iloc[0].rsplit("; drawn ", 1)[0]
    assert shipped["audit_sample"].str.rsplit("; drawn ", n=1).str[0].eq(design).all()
    assert design.startswith("simple random sample of 40 of 172 answered answers of tagged.csv")


def test_shipped_audit_is_fully_coded_by_the_conventions(codebook):
    audit = pd.read_csv(AUDIT, dtype={"response_id": str})
    codes = audit[codebook.ids]
    assert set(pd.unique(codes.to_numpy().ravel())) <= {0, 1}
    assert (audit["reviewed"] == 1).all() and (audit["reviewer"] == "illustrative coder").all()
    substantive = codes.drop(columns=["no_change", "change_made", "change_intended"]).sum(axis=1) > 0
    tense = (codes["change_made"] + codes["change_intended"]) > 0
    assert (substantive == tense).all(), "an answer that names a change has change_made or change_intended"
    assert (codes.loc[codes["no_change"] == 1].drop(columns="no_change").sum(axis=1) == 0).all()
    coded = pd.read_csv(CODED, dtype=str, keep_default_na=False)
    assert not set(audit["answer"]) & set(coded["answer"]), "audit answers are new to the shipped model"
