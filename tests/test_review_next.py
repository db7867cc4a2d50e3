"""Which answers to code next (``opm-nlp review next``): the pick (uncertain, rare codes first, spread out,
repeatable), what it never picks (coded, trained on, audit answers), the blind and pre-filled sheets, the
first batch of a new codebook, and one-line errors. The Label Studio push is tested in test_review.py."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from opm_nlp.cli.main import cli
from opm_nlp.columns import (AUDIT_COL, EVIDENCE_COL, EVIDENCE_SPANS_COL, REVIEWED_COL, REVIEWER_COL, SCORE_PREFIX,
                             SUGGESTED_COL)
from opm_nlp.exceptions import DataError
from opm_nlp.review.next_batch import (
    cold_start_pick,
    informativeness,
    pick_next_batch,
    rarity_weights,
    spread_pick,
    unit_rows,
)

from .conftest import CODEBOOK, CODED

COLS = ["--text-col", "answer", "--id-col", "response_id"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


# -- the pick, on arrays -------------------------------------------------------------------------------
def clusters(rng, centres: int, each: int, dim: int = 16, spread: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors in tight clusters around random centres, and each row's cluster."""
    middle = unit_rows(rng.normal(size=(centres, dim)))
    owner = np.repeat(np.arange(centres), each)
    return unit_rows(middle[owner] + spread * rng.normal(size=(len(owner), dim))), owner


def test_a_batch_is_spread_over_the_answers_and_avoids_what_is_coded():
    rng = np.random.default_rng(0)
    vectors, owner = clusters(rng, 5, 40)
    for seed in range(20):
        picked = spread_pick(vectors, np.ones(len(vectors)), 5, np.random.default_rng(seed))
        assert sorted(owner[picked]) == [0, 1, 2, 3, 4]  # one per cluster, never two near-copies
        anchored = spread_pick(vectors, np.ones(len(vectors)), 3, np.random.default_rng(seed),
                               anchors=vectors[[0, 40]])  # clusters 0 and 1 are coded already
        assert sorted(owner[anchored]) == [2, 3, 4]


def test_uncertain_answers_are_picked_and_rare_codes_come_first():
    assert rarity_weights(np.array([0, 3, 99])).round(2).tolist() == [1.0, 0.5, 0.1]
    scores = np.array([[0.5, 0.0], [0.0, 0.5], [0.95, 0.02], [0.3, 0.3]])
    value = informativeness(scores, np.array([0.5, 0.5]), positives=np.array([100, 2]))
    # on the rare code's threshold beats near it, which beats on the common code's threshold
    assert value[1] > value[3] > value[0] > value[2]
    assert value[1] == pytest.approx(1.0)
    rng = np.random.default_rng(1)
    vectors = unit_rows(rng.normal(size=(200, 16)))
    weights = np.r_[np.ones(10), np.full(190, 0.01)]
    picked = spread_pick(vectors, weights, 10, np.random.default_rng(2), candidates=20)
    assert len(set(picked)) == 10 and set(picked) <= set(range(20))  # only the most uncertain are candidates
    assert (np.isin(picked, np.arange(10))).sum() >= 8  # and among them the uncertain weigh most


def test_informativeness_follows_the_models_decision_rule():
    from opm_nlp.classify.decision import DecisionRule

    # two codes well above their thresholds: sure under per-code thresholds, a close call when the rule
    # keeps one code per answer (the second is 0.05 behind the first)
    scores = np.array([[0.9, 0.85], [0.9, 0.1]])
    positives = np.array([10, 10])
    plain = informativeness(scores, np.array([0.5, 0.5]), positives)
    capped = informativeness(scores, DecisionRule(np.array([0.5, 0.5]), cap=1), positives)
    assert plain[0] == pytest.approx(0.3) and capped[0] == pytest.approx(0.9)
    assert capped[1] == pytest.approx(plain[1]), "an answer the cap does not touch keeps its value"
    # a code given only because an answer gets at least one is a close call
    one = informativeness(np.array([[0.3, 0.1]]), DecisionRule(np.array([0.5, 0.5]), at_least_one=True), positives)
    assert one[0] == pytest.approx(1.0)


def test_a_first_batch_takes_each_codes_nearest_answer_then_spreads():
    rng = np.random.default_rng(3)
    codes = unit_rows(rng.normal(size=(6, 32)))
    near = unit_rows(codes + 0.05 * rng.normal(size=codes.shape))  # one answer near each code
    vectors = np.vstack([unit_rows(rng.normal(size=(60, 32))), near])
    picked = cold_start_pick(vectors, codes, 8, np.random.default_rng(4))
    assert len(set(picked)) == 8
    assert sorted(picked[:4]) == sorted(set(picked[:4]) & set(range(60, 66)))  # half the batch: nearest a code
    others = cold_start_pick(vectors, codes, 8, np.random.default_rng(5))
    assert set(others[:4]) != set(picked[:4]) or list(others) != list(picked)


class WordEmbedder:
    """A stand-in embedding model: each distinct word a fixed random direction, an answer their sum."""

    def encode(self, texts):
        out = []
        for text in texts:
            vector = np.zeros(64)
            for word in str(text).lower().split():
                seed = int(hashlib.sha256(word.encode()).hexdigest()[:8], 16)
                vector += np.random.default_rng(seed).normal(size=64)
            out.append(vector)
        return np.array(out)


def test_without_a_model_the_first_batch_covers_the_codebook(codebook):
    definitions = [f"{code.label}. {code.definition}" for code in codebook.codes]
    pool = pd.DataFrame({"response_id": [f"D{i}" for i in range(len(definitions))] + [f"X{i}" for i in range(40)],
                         "answer": definitions + [f"filler answer number{i} about w{i % 7}" for i in range(40)]})
    batch = pick_next_batch(pool, codebook, 2 * len(codebook), embedder=WordEmbedder(), seed=1, source="pool.csv")
    picked = batch.frame["response_id"].tolist()
    assert sorted(picked[:len(codebook)]) == sorted(pool["response_id"][:len(codebook)])  # each code's definition
    assert len(set(picked)) == 2 * len(codebook)
    assert list(batch.frame.columns) == ["response_id", "answer", REVIEWED_COL, REVIEWER_COL, *codebook.ids]
    assert batch.frame[codebook.ids].isna().all().all()  # blind: nothing pre-filled
    with pytest.raises(DataError, match=r"--with-suggestions pre-fills the model's codes, so it needs --model"):
        pick_next_batch(pool, codebook, 3, embedder=WordEmbedder(), with_suggestions=True)


# -- the command -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    """A frozen embedding model trained by the command on R0001-R0120, and a pool of all 387 answers:
    R0121-R0150 coded in another file, R0151-R0160 an audit sample, R0161-R0165 reviewed in the pool."""
    folder = tmp_path_factory.mktemp("next")
    coded = pd.read_csv(CODED, dtype=str, keep_default_na=False)
    coded.head(120).to_csv(folder / "coded.csv", index=False)
    result = run("train", "--codebook", CODEBOOK, "--data", folder / "coded.csv", *COLS, "--no-fine-tune",
                 "--out", folder / "model", "--quiet")
    assert result.exit_code == 0, result.output
    coded.iloc[120:150].to_csv(folder / "other.csv", index=False)
    pool = coded[["response_id", "answer", "wave"]].copy()
    pool[AUDIT_COL] = ""
    pool.loc[150:159, AUDIT_COL] = "simple random sample of 10 ..."
    pool[REVIEWED_COL] = 0
    pool.loc[160:164, REVIEWED_COL] = 1
    pool.to_csv(folder / "pool.csv", index=False)
    return {"dir": folder, "model": folder / "model", "pool": folder / "pool.csv", "other": folder / "other.csv",
            "ids": pool["response_id"].tolist()}


def picked_ids(path) -> list[str]:
    return pd.read_excel(path, sheet_name="answers", dtype=str)["response_id"].tolist()


def test_review_next_picks_uncoded_answers_blind_and_repeatably(setup, codebook, tmp_path):
    from openpyxl import load_workbook

    base = ("review", "next", setup["pool"], "--n", 15, "--model", setup["model"], "--coded", setup["other"], *COLS)
    out = tmp_path / "next.xlsx"
    result = run(*base, "--seed", 7, "--out", out)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("Next batch: 15 of 222 answers of pool.csv nobody has coded, picked to teach the model "
                               "most; blind; seed 7; picked ")
    assert lines[1] == "Seed 7: pass --seed 7 to pick the same answers again."
    assert lines[2].startswith(f"Wrote 15 answers to {out}: code them blind (no suggestions shown)")
    ids = picked_ids(out)
    assert len(set(ids)) == 15 and set(ids) <= set(setup["ids"][165:])  # not trained, coded, audit or reviewed

    book = load_workbook(out)
    assert book.sheetnames == ["answers", "codebook", "batch", "instructions"]
    header = [c.value for c in book["answers"][1]]
    assert header == ["response_id", "answer", REVIEWED_COL, REVIEWER_COL, *codebook.ids]  # nothing of the model
    assert all(c.value is None for row in book["answers"].iter_rows(min_row=2, min_col=5) for c in row)
    design = dict((r[0].value, r[1].value) for r in book["batch"].iter_rows(min_row=2))
    assert design["source rows"] == ("387 rows: 0 without an answer, 35 coded already, 120 the model was trained on, "
                                     "10 in an audit sample")
    assert design["seed"] == 7 or design["seed"] == "7"

    again = tmp_path / "again.xlsx"
    assert run(*base, "--seed", 7, "--out", again).exit_code == 0
    assert picked_ids(again) == ids  # the same seed picks the same answers, in the same order
    other = tmp_path / "other.xlsx"
    assert run(*base, "--seed", 8, "--out", other).exit_code == 0
    assert picked_ids(other) != ids

    # the filled sheet is training data
    sheet = book["answers"]
    for r in range(2, 17):
        sheet.cell(row=r, column=3).value = 1
        sheet.cell(row=r, column=5).value = r % 2
    book.save(out)
    result = run("train", "--codebook", CODEBOOK, "--data", setup["dir"] / "coded.csv", "--data", out, *COLS,
                 "--method", "keyword", "--out", tmp_path / "kw", "--quiet")
    assert result.exit_code == 0, result.output
    import json

    assert json.loads((tmp_path / "kw" / "metadata.json").read_text())["training"]["answers"] == 135


def test_review_next_with_suggestions_prefills_the_same_pick(setup, codebook, tmp_path):
    base = ("review", "next", setup["pool"], "--n", 10, "--model", setup["model"], "--coded", setup["other"], *COLS,
            "--seed", 3)
    assert run(*base, "--out", tmp_path / "blind.csv").exit_code == 0
    result = run(*base, "--with-suggestions", "--out", tmp_path / "shown.xlsx")
    assert result.exit_code == 0, result.output
    assert "most; with the model's suggestions; seed 3;" in result.output
    assert "code them (the model's codes are pre-filled: correct them)" in result.output
    blind = pd.read_csv(tmp_path / "blind.csv", dtype=str, keep_default_na=False)
    shown = pd.read_excel(tmp_path / "shown.xlsx", sheet_name="answers")
    assert shown["response_id"].tolist() == blind["response_id"].tolist()
    assert {SUGGESTED_COL, "uncertainty", *(SCORE_PREFIX + c for c in codebook.ids)} <= set(shown.columns)
    assert list(shown.columns[:3]) == ["response_id", "answer", EVIDENCE_COL]  # the evidence beside the answer
    assert not {EVIDENCE_COL, EVIDENCE_SPANS_COL} & set(blind.columns)
    assert shown[codebook.ids].isin([0, 1]).all().all() and shown[codebook.ids].to_numpy().sum() > 0
    assert not any(c.startswith(SCORE_PREFIX) or c == SUGGESTED_COL for c in blind.columns)
    assert (blind[codebook.ids] == "").all().all()


def test_review_next_cold_start_with_a_codebook(setup, tmp_path):
    out = tmp_path / "first.csv"
    result = run("review", "next", setup["pool"], "--n", 24, "--codebook", CODEBOOK, "--coded", setup["dir"] /
                 "coded.csv", *COLS, "--seed", 1, "--out", out)
    assert result.exit_code == 0, result.output
    ids = pd.read_csv(out, dtype=str)["response_id"].tolist()
    assert len(set(ids)) == 24 and not set(ids) & set(setup["ids"][:120] + setup["ids"][150:165])


@pytest.mark.parametrize("args, message", [
    (("--n", 500), "Error: {pool}: --n 500 is more than the 252 answers nobody has coded (of 387 rows: 0 without an "
                   "answer, 5 coded already, 120 the model was trained on, 10 in an audit sample). Pass --n 252 or less."),
    (("--n", 5, "--coded", "{wave}"), "Error: Column 'response_id' not found in {wave}. Columns: ['id', 'answer']. A --coded file "
                                      "needs the pool's id column 'response_id'."),
])
def test_review_next_errors_are_one_line(setup, tmp_path, args, message):
    wave = tmp_path / "wave.csv"
    pd.DataFrame({"id": ["a"], "answer": ["x"]}).to_csv(wave, index=False)
    args = [str(a).format(wave=wave) for a in args]
    out = tmp_path / "next.xlsx"
    result = run("review", "next", setup["pool"], "--model", setup["model"], *COLS, *args, "--out", out)
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert result.output.startswith(message.format(pool=setup["pool"], wave=wave))
    assert not out.exists()


def test_review_next_usage_errors(setup, tmp_path):
    pool = setup["pool"]
    result = run("review", "next", pool, "--n", 5, "--model", setup["model"], *COLS)
    assert result.exit_code == 2 and "Pass --out next.xlsx (a sheet to code) or --project NAME" in result.output
    result = run("review", "next", pool, "--n", 5, *COLS, "--out", tmp_path / "n.xlsx")
    assert result.exit_code == 2 and "Pass --model MODEL_DIR (trained on the answers coded so far) or" in result.output
    result = run("review", "next", pool, "--n", 5, "--codebook", CODEBOOK, "--with-suggestions", *COLS,
                 "--out", tmp_path / "n.xlsx")
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "--with-suggestions pre-fills the model's codes, so it needs --model" in result.output
    kw = tmp_path / "kw"
    assert run("train", "--codebook", CODEBOOK, "--data", setup["dir"] / "coded.csv", *COLS, "--method", "keyword",
               "--out", kw, "--quiet").exit_code == 0
    result = run("review", "next", pool, "--n", 5, "--model", kw, *COLS, "--out", tmp_path / "n.xlsx")
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert f"{kw} is a keyword model, which learns nothing from coded answers" in result.output
    assert not (tmp_path / "n.xlsx").exists()
