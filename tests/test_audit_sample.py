"""Audit samples: the draw (random, stratified, repeatable, from unseen answers), the blind sheet, and
that an audit measures the model but never trains it (train leaves its rows out; training ids as salted hashes)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from opm_nlp.cli.main import cli
from opm_nlp.columns import (
    AUDIT_COL,
    REVIEWED_COL,
    REVIEWER_COL,
    SCORE_PREFIX,
    output_columns,
)
from opm_nlp.exceptions import DataError, ModelError
from opm_nlp.model.training_ids import hash_ids, trained_on, training_ids_record
from opm_nlp.review.audit import allocate, draw_audit_sample

from .conftest import CODEBOOK, CODED

COLS = ["--text-col", "answer", "--id-col", "response_id"]
DAY = dt.date(2026, 12, 1)


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture()
def tagged(codebook) -> pd.DataFrame:
    """A tagged table of 100 rows in two waves (70 / 30): rows 0-4 empty, rows 5-14 reviewed."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"response_id": [f"R{i:03d}" for i in range(100)],
                          "answer": [f"answer {i}" for i in range(100)],
                          "wave": ["2021"] * 70 + ["2022"] * 30})
    frame.loc[:4, "answer"] = ""
    for code_id in codebook.ids:
        frame[code_id] = rng.integers(0, 2, 100)
        frame[SCORE_PREFIX + code_id] = rng.random(100).round(3)
    frame["suggested_codes"] = ""
    frame["uncertain_codes"] = ""
    frame["needs_review"] = 0
    frame[REVIEWED_COL] = [0] * 5 + [1] * 10 + [0] * 85
    return frame


# -- allocation and the draw -----------------------------------------------------------------------
@pytest.mark.parametrize("sizes, n, expected", [([600, 300, 100], 10, [5, 3, 2]), ([50, 50, 1], 5, [2, 2, 1]),
                                                ([1, 1, 1, 997], 10, [1, 1, 1, 7]), ([70, 30], 100, [70, 30]),
                                                ([66, 34], 10, [7, 3])])
def test_allocation_is_proportional_with_two_per_group_where_it_has_them(sizes, n, expected):
    assert allocate(sizes, n).tolist() == expected


def test_allocation_always_sums_to_n_within_the_groups():
    rng = np.random.default_rng(1)
    for _ in range(300):
        sizes = rng.integers(1, 60, rng.integers(1, 8))
        n = int(rng.integers(min(2 * len(sizes), sizes.sum()), sizes.sum() + 1))
        if np.minimum(sizes, 2).sum() > n:
            continue
        counts = allocate(sizes, n)
        assert counts.sum() == n and (counts <= sizes).all() and (counts >= np.minimum(sizes, 2)).all()


def test_the_draw_takes_unreviewed_answers_at_random_and_the_seed_repeats_it(tagged, codebook):
    sample = draw_audit_sample(tagged, codebook, 20, seed=7, source="data/tagged.csv", today=DAY)
    ids = sample.frame["response_id"]
    assert len(ids) == 20 and ids.is_unique
    eligible = set(tagged["response_id"].iloc[15:])
    assert set(ids) <= eligible  # never empty, never reviewed
    assert sample.description == ("simple random sample of 20 of 85 answered answers of tagged.csv not yet reviewed; "
                                  "seed 7; drawn 2026-12-01")
    again = draw_audit_sample(tagged, codebook, 20, seed=7, source="data/tagged.csv", today=DAY)
    assert again.frame["response_id"].tolist() == ids.tolist()
    other = draw_audit_sample(tagged, codebook, 20, seed=8, source="data/tagged.csv", today=DAY)
    assert set(other.frame["response_id"]) != set(ids)
    # the coding order is random, not the file's
    assert ids.tolist() != sorted(ids)
    unseeded = draw_audit_sample(tagged, codebook, 20, source="x.csv")
    assert f"; seed {unseeded.seed}; drawn " in unseeded.description


def test_the_sheet_is_blind_and_every_row_holds_the_design(tagged, codebook):
    sample = draw_audit_sample(tagged, codebook, 12, by="wave", seed=3, source="tagged.csv", today=DAY)
    frame = sample.frame
    assert list(frame.columns) == ["response_id", "answer", REVIEWED_COL, REVIEWER_COL, *codebook.ids, "wave",
                                   AUDIT_COL]
    assert not set(frame.columns) & (set(output_columns(codebook)) - set(codebook.ids))  # no scores, suggestions
    assert frame[[REVIEWED_COL, REVIEWER_COL, *codebook.ids]].isna().all().all()
    assert set(frame[AUDIT_COL]) == {sample.description}
    assert sample.description.endswith("; stratified by wave (proportional); seed 3; drawn 2026-12-01")
    # 85 eligible: 55 of 2021, 30 of 2022 -> 12 * 55/85 = 7.8, 12 * 30/85 = 4.2
    assert sample.strata.to_dict("list") == {"wave": ["2021", "2022"], "eligible": [55, 30], "sampled": [8, 4]}
    assert frame["wave"].value_counts().to_dict() == {"2021": 8, "2022": 4}
    truth = tagged.set_index("response_id")
    assert (truth.loc[frame["response_id"], "wave"].to_numpy() == frame["wave"].to_numpy()).all()
    design = dict(zip(sample.design["item"], sample.design["value"]))
    assert design["seed"] == "3" and design["source file"] == "tagged.csv" and design["eligible answers"] == "85"
    assert design["source rows"] == "100 rows: 5 without an answer, 10 reviewed already"
    assert design["codebook"].startswith(f"{codebook.name} (version {codebook.version}")


def test_a_model_keeping_its_training_ids_is_not_audited_on_them(tagged, codebook):
    seen = tagged["response_id"].iloc[15:65].tolist()
    metadata = {"created": "2026-11-30T10:00:00+00:00", "training_ids": training_ids_record(seen)}
    sample = draw_audit_sample(tagged, codebook, 35, seed=1, metadata=metadata, source="t.csv", today=DAY)
    assert not set(sample.frame["response_id"]) & set(seen)
    assert "35 of 35 answered answers of t.csv not yet reviewed nor used to train the model" in sample.description
    with pytest.raises(DataError, match=r"^t\.csv: --n 36 is more than the 35 answers eligible for an audit \(of 100 "
                                        r"rows: 5 without an answer, 10 reviewed already, 50 the model was trained "
                                        r"on\)\. Pass --n 35 or less\.$"):
        draw_audit_sample(tagged, codebook, 36, metadata=metadata, source="t.csv")
    # a model folder without training ids cannot say: the design says so
    old = draw_audit_sample(tagged, codebook, 5, seed=1, metadata={"created": "x"}, source="t.csv")
    assert "nor used to train" not in old.description
    assert "keeps no training ids" in dict(zip(old.design["item"], old.design["value"]))["model"]


def test_bad_draws_are_one_clear_line(tagged, codebook):
    with pytest.raises(DataError, match=r"^t\.csv: --n 86 is more than the 85 answers eligible .* Pass --n 85 or less\.$"):
        draw_audit_sample(tagged, codebook, 86, source="t.csv")
    with pytest.raises(DataError, match=r"Column 'wav' not found in t\.csv\. .* Did you mean 'wave'\? Pass --by"):
        draw_audit_sample(tagged, codebook, 10, by="wav", source="t.csv")
    with pytest.raises(DataError, match=r"^t\.csv: column 'answer' has 85 groups among the eligible answers \(e\.g\. "
                                        r"'answer 15', .*\); a sample of 10 cannot give each at least 2 \(at most 50 "
                                        r"groups\)\. Stratify by a column with fewer groups"):
        draw_audit_sample(tagged.assign(other=tagged["answer"]).rename(columns={"answer": "a", "other": "answer"}),
                          codebook, 10, text_col="a", by="answer", source="t.csv")
    with pytest.raises(DataError, match=r"column 'band' has 5 groups .*; a sample of 8 cannot give each at least 2\. "):
        draw_audit_sample(tagged.assign(band=np.arange(100) % 5), codebook, 8, by="band", source="t.csv")
    with pytest.raises(DataError, match=r"cannot stratify by 'score_goal_setting': it holds the model's suggestions"):
        draw_audit_sample(tagged, codebook, 10, by="score_goal_setting", source="t.csv")
    with pytest.raises(DataError, match=r"response id 'R001' appears more than once"):
        draw_audit_sample(tagged.assign(response_id=["R001"] * 100), codebook, 10, id_col="response_id", source="t.csv")


def test_plain_answers_are_all_eligible_and_coded_data_is_not(codebook, coded):
    answers = pd.DataFrame({"id": ["a", "b", "c"], "text": ["x", "y", "z"]})
    assert len(draw_audit_sample(answers, codebook, 3, seed=0).frame) == 3
    with pytest.raises(DataError, match=r"more than the 0 answers eligible for an audit \(of \d+ rows: \d+ without "
                                        r"an answer, \d+ reviewed already\)\. Pass --n 0 or less, or draw from a wave "
                                        r"nobody has reviewed yet\."):
        draw_audit_sample(coded, codebook, 5)


def test_blank_group_cells_form_a_group_of_their_own(tagged, codebook):
    frame = tagged.assign(wave=tagged["wave"].where(np.arange(100) % 10 != 9, ""))
    sample = draw_audit_sample(frame, codebook, 20, by="wave", seed=0)
    assert "(blank)" in sample.strata["wave"].tolist() and sample.strata["sampled"].sum() == 20


# -- training ids ----------------------------------------------------------------------------------
def test_training_ids_are_salted_hashes():
    record = training_ids_record(["R1", " R2 ", "R2"], salt="ab")
    assert record == {"salt": "ab", "sha256": sorted(hash_ids(["R1", "R2"], "ab"))}
    assert hash_ids(["R1"], "ab") != hash_ids(["R1"], "cd") and len(hash_ids(["R1"], "ab")[0]) == 64
    assert training_ids_record(["R1"])["salt"] != training_ids_record(["R1"])["salt"]
    assert trained_on({"training_ids": record}, ["R2", "R3", 7]).tolist() == [True, False, False]
    assert trained_on({}, ["R1"]).tolist() == [False]
    with pytest.raises(ModelError, match=r"malformed 'training_ids' entry .* retrain the model"):
        trained_on({"training_ids": {"salt": 1, "sha256": []}}, ["R1"])


@pytest.fixture(scope="module")
def keyword_model(tmp_path_factory) -> dict:
    """A keyword model trained by the command on 11 coded answers with ids R015-R025, R015's answer empty."""
    folder = tmp_path_factory.mktemp("keyword")
    coded = pd.read_csv(CODED, dtype=str, keep_default_na=False).head(11)
    coded["response_id"] = [f"R{i:03d}" for i in range(15, 26)]
    coded.loc[0, "answer"] = ""  # not learned from
    coded.to_csv(folder / "coded.csv", index=False)
    result = run("train", "--codebook", CODEBOOK, "--data", folder / "coded.csv", *COLS, "--method", "keyword",
                 "--out", folder / "model", "--quiet")
    assert result.exit_code == 0, result.output
    return {"dir": folder / "model", "ids": coded["response_id"].tolist()}


def test_train_records_hashes_of_the_ids_it_learned_from(keyword_model):
    from opm_nlp.model.folder import read_model_info

    _, metadata = read_model_info(keyword_model["dir"])
    assert len(metadata["training_ids"]["sha256"]) == 10
    assert trained_on(metadata, keyword_model["ids"]).tolist() == [False] + [True] * 10
    assert "R016" not in (keyword_model["dir"] / "metadata.json").read_text()


# -- the command, the sheet, and training ------------------------------------------------------------
def test_review_sample_writes_a_blind_workbook_and_train_leaves_it_out(tmp_path, tagged, codebook, keyword_model):
    from openpyxl import load_workbook

    tagged.to_csv(tmp_path / "tagged.csv", index=False)
    model = keyword_model["dir"]  # trained on R016-R025, which are not drawn
    out = tmp_path / "audit.xlsx"
    result = run("review", "sample", tmp_path / "tagged.csv", "--n", 12, "--by", "wave", "--seed", 5,
                 "--model", model, "--out", out)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("Audit sample: simple random sample of 12 of 75 answered answers of tagged.csv not "
                               "yet reviewed nor used to train the model; stratified by wave (proportional); seed 5;")
    assert lines[1] == "Allocation by wave (sampled of eligible): 2021: 7 of 45, 2022: 5 of 30."
    assert lines[2] == "Seed 5: pass --seed 5 to draw the same answers again."
    assert lines[3] == (f"Wrote 12 answers to {out}: code them blind (no suggestions shown), put 1 in 'reviewed' on "
                        f"each row coded.")

    book = load_workbook(out)
    assert book.sheetnames == ["answers", "codebook", "design", "instructions"]
    answers = book["answers"]
    header = [c.value for c in answers[1]]
    assert header == ["response_id", "answer", REVIEWED_COL, REVIEWER_COL, *codebook.ids, "wave", AUDIT_COL]
    validations = answers.data_validations.dataValidation
    assert len(validations) == 1 and validations[0].formula1 == '"0,1"'
    assert {"C2:C13", "E2:E13"} <= set(str(validations[0].sqref).split())
    assert answers["E1"].comment.text.startswith("Aligning expectations: ")
    assert answers["C1"].comment.text.startswith("Put 1 when you have coded this row")
    design = [[c.value for c in row] for row in book["design"].iter_rows()]
    assert design[0] == ["item", "value", None] and design[1][1] == answers.cell(row=2, column=len(header)).value
    assert ["wave", "eligible", "sampled"] in design and ["2022", 30, 5] in design
    instructions = " ".join(str(c.value) for c in book["instructions"]["A"])
    assert "BLIND" in instructions and "tend to accept it" in instructions

    # the same seed draws the same answers; CSV holds the same table
    result = run("review", "sample", tmp_path / "tagged.csv", "--n", 12, "--by", "wave", "--seed", 5, "--model",
                 model, "--out", tmp_path / "audit.csv")
    assert result.exit_code == 0, result.output
    csv = pd.read_csv(tmp_path / "audit.csv", dtype=str, keep_default_na=False)
    assert csv["response_id"].tolist() == [answers.cell(row=r, column=1).value for r in range(2, 14)]

    # A coder fills in the sheet; train leaves the audit out and says so; an audit alone trains nothing.
    for r in range(2, 14):
        answers.cell(row=r, column=3).value = 1
        answers.cell(row=r, column=5).value = r % 2
    book.save(out)
    result = run("train", "--codebook", CODEBOOK, "--data", CODED, "--data", out, *COLS, "--method", "keyword",
                 "--out", tmp_path / "kw", "--quiet")
    assert result.exit_code == 0, result.output
    assert (f"{out}: left out 12 answers of an audit sample (marked in 'audit_sample'): an audit measures the model, "
            f"so it is never trained on.") in result.output
    trained = json.loads((tmp_path / "kw" / "metadata.json").read_text())
    assert trained["training"]["answers"] + trained["training"]["empty_answers_skipped"] == len(pd.read_csv(CODED))
    result = run("train", "--codebook", CODEBOOK, "--data", out, *COLS, "--out", tmp_path / "kw2", "--quiet")
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert result.output.startswith(f"Error: No coded answers to train on ({out}: all its 12 rows are an audit sample")
    assert not (tmp_path / "kw2").exists()


def test_review_sample_errors_are_one_line(tmp_path, tagged):
    tagged.to_csv(tmp_path / "tagged.csv", index=False)
    result = run("review", "sample", tmp_path / "tagged.csv", "--n", 500, "--codebook", CODEBOOK,
                 "--out", tmp_path / "a.xlsx")
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "--n 500 is more than the 85 answers eligible" in result.output
    assert not (tmp_path / "a.xlsx").exists()
    result = run("review", "sample", tmp_path / "tagged.csv", "--n", 5, "--codebook", CODEBOOK)
    assert result.exit_code == 2 and "Pass --out audit.xlsx (a sheet to code) or --project NAME" in result.output
    result = run("review", "sample", tmp_path / "tagged.csv", "--n", 5, "--codebook", CODEBOOK,
                 "--out", tmp_path / "tagged.csv")
    assert result.exit_code == 1 and "writing it would replace the input" in result.output
