"""Held-out figures kept in the model folder, the figures to quote, and the agreement statistics."""

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from opm_nlp.classify.agreement import (confusion_counts, kappa_intervals, krippendorff_alpha, landis_koch_band,
                                        reading_sentence)
from opm_nlp.classify.metrics import agreement_table
from opm_nlp.exceptions import ModelError
from opm_nlp.model.metadata import trust_figures, trust_sentence

from .conftest import CODEBOOK, CODED, ROOT
from .test_cli import COLS, run

HELD_OUT = ROOT / "examples" / "opm_heldout_illustrative.csv"
COUNTS = ("tp", "fp", "fn", "tn")


def coded_pair(n, seed=0, k=5):
    rng = np.random.default_rng(seed)
    y_true = (rng.random((n, k)) < 0.25).astype(int)
    y_pred = np.where(rng.random(y_true.shape) < 0.85, y_true, 1 - y_true)
    return y_true, y_pred


@pytest.fixture()
def evaluated(tmp_path, trained_dir):
    """A copy of the session model with held-out figures saved by ``evaluate --save``, and its JSON."""
    folder = tmp_path / "model"
    shutil.copytree(trained_dir, folder)
    result = run("evaluate", folder, "--data", HELD_OUT, *COLS, "--save", "--json", tmp_path / "e.json", "--quiet")
    assert result.exit_code == 0, result.output
    return folder, json.loads((tmp_path / "e.json").read_text()), result.output


# -- statistics --------------------------------------------------------------------------------------
def test_confusion_counts_alpha_and_agreement_by_hand():
    human = np.array([[1, 0], [0, 0], [1, 1], [0, 1], [1, 0]])
    model = np.array([[1, 0], [1, 0], [1, 1], [0, 0], [0, 0]])
    assert confusion_counts(human, model) == [{"tp": 2, "fp": 1, "fn": 1, "tn": 1},
                                              {"tp": 1, "fp": 0, "fn": 1, "tn": 3}]
    # nominal alpha of two coders: 1 - (n - 1) * (disagreeing pairs, both ways) / (2 * n_0 * n_1)
    assert krippendorff_alpha(human[:, 0], model[:, 0]) == pytest.approx(1 - 9 * 4 / (2 * 4 * 6))
    assert np.isnan(krippendorff_alpha([0, 0, 0], [0, 0, 0]))
    table = agreement_table(human, model, ["a", "b"])
    assert table["agreement"].tolist()[:2] == [0.6, 0.8]
    assert table.loc["micro", "agreement"] == pytest.approx(0.7)
    assert table.loc["macro", "alpha"] == pytest.approx(table.loc[["a", "b"], "alpha"].mean())
    assert table.loc["micro", "alpha"] == pytest.approx(krippendorff_alpha(human.ravel(), model.ravel()))


def test_kappa_intervals_are_those_of_a_plain_bootstrap_with_the_same_draws():
    y_true, y_pred = coded_pair(80)
    got = kappa_intervals(y_true, y_pred, resamples=200, seed=3)
    draws = np.random.default_rng(3).integers(0, 80, size=(200, 80))
    for j in range(y_true.shape[1]):
        plain = [cohen_kappa_score(y_true[rows, j], y_pred[rows, j]) for rows in draws]
        assert got["per_code"][j] == pytest.approx(tuple(np.percentile(plain, [2.5, 97.5])))
        assert got["per_code"][j][0] < cohen_kappa_score(y_true[:, j], y_pred[:, j]) < got["per_code"][j][1]
    pooled = [cohen_kappa_score(y_true[rows].ravel(), y_pred[rows].ravel()) for rows in draws]
    assert got["micro"] == pytest.approx(tuple(np.percentile(pooled, [2.5, 97.5])))
    assert got == kappa_intervals(y_true, y_pred, resamples=200, seed=3), "a fixed seed gives the same interval"


def test_kappa_intervals_narrow_with_more_answers_and_are_undefined_without_them():
    y_true, y_pred = coded_pair(60)
    few = kappa_intervals(y_true, y_pred)["macro"]
    many = kappa_intervals(np.tile(y_true, (9, 1)), np.tile(y_pred, (9, 1)))["macro"]
    assert (many[1] - many[0]) < 0.5 * (few[1] - few[0])
    assert all(np.isnan(end) for end in kappa_intervals(y_true[:1], y_pred[:1])["micro"])
    unused = kappa_intervals(np.zeros((30, 1)), np.zeros((30, 1)))  # a code nobody used: kappa undefined
    assert all(np.isnan(end) for end in unused["per_code"][0])


@pytest.mark.parametrize("value, band", [(-0.1, "poor"), (0.0, "slight"), (0.2, "slight"), (0.35, "fair"),
                                         (0.53, "moderate"), (0.7, "substantial"), (0.91, "almost perfect"),
                                         (float("nan"), None)])
def test_landis_koch_bands(value, band):
    assert landis_koch_band(value) == band


def test_reading_sentence_names_the_band_and_the_caveat():
    sentence = reading_sentence(0.53, (0.45, 0.6))
    assert 'mean kappa 0.53 (95% interval 0.45–0.60) is "moderate" on the bands of Landis & Koch (1977)' in sentence
    assert "arbitrary" in sentence and sentence.endswith(".") and not re.search(r"\.\s+[A-Z]", sentence)
    assert "moderate\"" not in reading_sentence() and "Landis & Koch" in reading_sentence()


# -- the figures to quote -------------------------------------------------------------------------------
def test_cross_validated_figures_carry_confusion_counts(trained_dir):
    metadata = json.loads((trained_dir / "metadata.json").read_text())
    training, cv = metadata["training"], metadata["cv_metrics"]
    for code, row in cv["per_code"].items():
        assert row["tp"] + row["fn"] == training["positives"][code]
        assert sum(row[k] for k in COUNTS) == training["answers"]
        assert row["f1"] == pytest.approx(2 * row["tp"] / (2 * row["tp"] + row["fp"] + row["fn"]), abs=1e-4)
    figures = trust_figures(metadata)
    assert figures["kind"] == "cross-validated" and figures["answers"] == training["answers"]
    assert figures["data"] == [CODED.name] and figures["macro_f1"] == cv["macro_f1"]
    assert set(figures["per_code"]["goal_setting"]) == set(COUNTS) | {"precision", "recall", "f1", "kappa"}
    assert trust_sentence(metadata).startswith(
        f"Cross-validated on the training answers (optimistic: the model was tuned on the same answers; no "
        f"held-out figures recorded): {training['answers']} answers, micro-F1 {cv['micro_f1']:.2f}")


def test_counts_missing_from_older_metadata_are_derived_exactly(trained_dir):
    metadata = json.loads((trained_dir / "metadata.json").read_text())
    recorded = {code: {k: row[k] for k in COUNTS} for code, row in metadata["cv_metrics"]["per_code"].items()}
    for row in metadata["cv_metrics"]["per_code"].values():
        for k in COUNTS:
            del row[k]
    derived = trust_figures(metadata)["per_code"]
    assert {code: {k: derived[code][k] for k in COUNTS} for code in recorded} == recorded
    metadata["cv_metrics"]["per_code"]["goal_setting"]["precision"] = 0.3333  # no longer consistent with F1
    assert trust_figures(metadata)["per_code"]["goal_setting"]["tp"] is None


def test_no_figures_without_coded_answers():
    metadata = {"cv_metrics": None, "training": {"answers": 0, "sources": []}}
    assert trust_figures(metadata) is None
    assert trust_sentence(metadata).startswith("No agreement figures")


# -- evaluate --save -------------------------------------------------------------------------------------
def test_evaluate_save_records_heldout_figures_the_model_then_quotes(evaluated):
    from opm_nlp.model.coding_model import CodingModel

    folder, report, output = evaluated
    assert f"Held-out figures recorded in {folder / 'metadata.json'} and its model card." in output
    metadata = json.loads((folder / "metadata.json").read_text())
    held = metadata["heldout_metrics"]
    assert held["data"] == [HELD_OUT.name] and held["answers"] == 120 == report["n_answers"]
    assert held["date"].endswith("+00:00")
    table = report["model_vs_human"]
    assert held["micro_f1"] == pytest.approx(table["micro"]["f1"], abs=1e-4)
    assert held["macro_kappa_interval"][0] < held["macro_kappa"] < held["macro_kappa_interval"][1]
    positives = pd.read_csv(HELD_OUT)
    for code, row in held["per_code"].items():
        assert row["tp"] + row["fn"] == positives[code].sum() == table[code]["support"]
        assert row["tp"] + row["fp"] == table[code]["predicted"]
        assert sum(row[k] for k in COUNTS) == 120
        assert {k: row[k] for k in COUNTS} == report["confusion"][code]
        assert row["alpha"] == pytest.approx(table[code]["alpha"], abs=1e-4)
    figures = trust_figures(metadata)
    assert figures["kind"] == "held-out" and figures["answers"] == 120 and figures["data"] == [HELD_OUT.name]
    assert trust_sentence(metadata) == (f"Held-out: 120 answers coded by people, micro-F1 {held['micro_f1']:.2f}, "
                                        f"macro-F1 {held['macro_f1']:.2f}.")
    card = (folder / "README.md").read_text()
    assert "| held-out precision | held-out recall | held-out F1 | held-out kappa |" in card
    assert f"**held-out** — measured on 120 answers coded by people" in card
    assert "slightly optimistic: quote the held-out figures above." in card
    model = CodingModel.load(folder)  # the hashed files are untouched: the folder still loads
    assert model.metadata["heldout_metrics"] == held


def test_evaluate_shows_alpha_agreement_kappa_interval_and_how_to_read_them(evaluated):
    _, report, output = evaluated
    header = next(line for line in output.splitlines() if line.lstrip().startswith("label"))
    assert header.split() == ["label", "precision", "recall", "f1", "support", "predicted", "kappa", "kappa_low",
                              "kappa_high", "alpha", "agreement"]
    assert "How to read these: kappa and alpha are 1 for perfect agreement" in output
    assert report["reading"] in output
    assert set(report["confusion"]["goal_setting"]) == set(COUNTS)
    assert {"kappa_low", "kappa_high", "alpha", "agreement"} <= set(report["model_vs_human"]["macro"])


def test_evaluate_save_refuses_the_training_answers(tmp_path, trained_dir):
    folder = tmp_path / "model"
    shutil.copytree(trained_dir, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    result = run("evaluate", folder, "--data", CODED, *COLS, "--save", "--quiet")
    assert result.exit_code == 1
    assert result.output == (f"Error: {CODED}: the model in {folder} was trained on a file of this name, so its "
                             f"figures would not be held-out ones. Evaluate on answers the model has not seen, or "
                             f"leave out --save to see the figures without recording them.\n")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_evaluate_save_refuses_answers_the_training_ids_name(tmp_path, trained_dir):
    """With salted hashes of the training ids in the folder, the ids are what is checked, not file names."""
    from opm_nlp.model.training_ids import TRAINING_IDS_KEY, training_ids_record

    folder = tmp_path / "model"
    shutil.copytree(trained_dir, folder)
    held_out = pd.read_csv(HELD_OUT, dtype=str)

    def record(ids) -> None:
        metadata = json.loads((folder / "metadata.json").read_text())
        metadata[TRAINING_IDS_KEY] = training_ids_record(ids)
        (folder / "metadata.json").write_text(json.dumps(metadata))

    record(["R0001", *held_out["response_id"][:7]])
    result = run("evaluate", folder, "--data", HELD_OUT, *COLS, "--save", "--quiet")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {HELD_OUT}: 7 of its 120 answers are among those the model in {folder} "
                                    f"was trained on")
    assert "heldout_metrics" not in json.loads((folder / "metadata.json").read_text())
    record(["R0001", "R0002"])
    assert run("evaluate", folder, "--data", HELD_OUT, *COLS, "--save", "--quiet").exit_code == 0


def test_saving_refuses_a_folder_changed_since_loading_and_writes_nothing_on_failure(tmp_path, trained_dir,
                                                                                      monkeypatch):
    from opm_nlp.model import card
    from opm_nlp.model.coding_model import CodingModel
    from opm_nlp.model.heldout import save_heldout_metrics

    folder = tmp_path / "model"
    shutil.copytree(trained_dir, folder)
    model = CodingModel.load(folder)
    figures = {"data": ["h.csv"], "answers": 3, "per_code": {}}
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    monkeypatch.setattr(card, "_heldout_paragraph", lambda held: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        save_heldout_metrics(model, folder, {**figures, "per_code": {"goal_setting": {"f1": 1.0}}})
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before, "a failed write leaves the folder as it was"
    assert "heldout_metrics" not in model.metadata
    (folder / "codebook.yaml").write_text((folder / "codebook.yaml").read_text() + "\n# edited\n")
    with pytest.raises(ModelError, match=r"codebook\.yaml differs from the file saved with this model \(sha256 "
                                         r"mismatch\); refusing to record figures for it"):
        save_heldout_metrics(model, folder, figures)


def test_training_over_a_model_with_heldout_figures_says_they_are_dropped(evaluated):
    folder, _, _ = evaluated
    result = run("train", "--codebook", CODEBOOK, "--method", "keyword", "--out", folder, "--quiet")
    assert result.exit_code == 0, result.output
    assert (f"The held-out figures of the model {folder} held are not carried over (they measured that model): "
            f"evaluate this one with --save.") in result.output
    assert "heldout_metrics" not in json.loads((folder / "metadata.json").read_text())


def test_shipped_model_and_demo_quote_held_out_figures(tmp_path):
    from opm_nlp.model.folder import read_model_info

    _, metadata = read_model_info(ROOT / "models" / "opm_default")
    assert trust_figures(metadata)["kind"] == "held-out"
    assert metadata["heldout_metrics"]["data"] == [HELD_OUT.name]
    result = run("demo", "--out", tmp_path / "d", "--quiet")
    assert result.exit_code == 0, result.output
    assert f"trained on 387 coded answers. {trust_sentence(metadata)}" in result.output
    assert "Held-out: 120 answers coded by people, micro-F1 0." in result.output


def test_figures_edited_out_of_shape_count_as_absent(trained_dir):
    metadata = json.loads((trained_dir / "metadata.json").read_text())
    assert trust_figures({**metadata, "heldout_metrics": {"per_code": ["not", "a", "table"]}})["kind"] == \
        "cross-validated"
    assert trust_figures({**metadata, "heldout_metrics": "edited"})["kind"] == "cross-validated"
    assert trust_figures({**metadata, "cv_metrics": {"per_code": "x"}}) is None
