"""Decision rules: chosen by cross-validation where the answer is known, stored in the model folder, and
applied by tagging with uncertain codes and review flags that keep their meaning."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from opm_nlp.classify.decision import MIN_ANSWERS, DecisionRule, choose_rule, suggest
from opm_nlp.classify.estimator import EmbeddingClassifier
from opm_nlp.classify.state import classifier_from_state, classifier_state
from opm_nlp.exceptions import ModelError
from tests.conftest import NEW_WAVE, ROOT

TEXTS = ["I will listen more carefully", "listen actively to my students", "more active listening",
         "be a better listener", "hear them out before answering", "listen without interrupting",
         "start using an IDP", "use individual development plans", "IDPs for everyone",
         "write a mentoring plan with each student", "a written development plan", "draft a mentoring compact"]
Y12 = np.array([[1, 0]] * 6 + [[0, 1]] * 6)


def _one_code_each(n: int = 400, k: int = 12, seed: int = 0):
    """Answers of one code each whose scores rank the code first, on a level that varies by answer:
    every code's own threshold lets through other codes of answers scored high (it over-suggests)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    Y = np.zeros((n, k), dtype=np.int8)
    Y[np.arange(n), truth] = 1
    level = rng.uniform(0.0, 0.8, n)[:, None]  # how strongly the answer speaks at all
    scores = level + rng.uniform(0.0, 0.3, (n, k))
    scores[np.arange(n), truth] = level[:, 0] + 0.3 + rng.uniform(0.0, 0.05, n)
    return Y, np.clip(scores, 0, 1)


def _plain_thresholds(Y, scores):
    from opm_nlp.classify.stacking import best_threshold

    return np.array([best_threshold(Y[:, j], scores[:, j]) for j in range(Y.shape[1])])


def test_over_suggesting_thresholds_give_way_to_a_cap_of_one_code():
    Y, scores = _one_code_each()
    thresholds = _plain_thresholds(Y, scores)
    assert suggest(DecisionRule(thresholds), scores)[0].sum(axis=1).mean() > 1.3  # the thresholds over-suggest
    rule = choose_rule(Y, scores, len(Y), np.arange(Y.shape[1]), thresholds)
    assert rule.cap == 1
    chosen, plain = rule.cv["chosen"], rule.cv["per_code_thresholds"]
    assert chosen["micro_f1"] > plain["micro_f1"] + 0.1 and chosen["macro_f1"] > plain["macro_f1"] + 0.1
    # fresh answers of the same kind: the rule chosen on the training answers holds
    Y_new, scores_new = _one_code_each(seed=1)
    capped = suggest(rule, scores_new)[0]
    assert (capped == Y_new.astype(bool)).mean() > (suggest(DecisionRule(thresholds), scores_new)[0] == Y_new).mean()


def test_thresholds_that_already_decide_well_are_kept_plain():
    rng = np.random.default_rng(3)
    Y = (rng.uniform(size=(300, 8)) < 0.3).astype(np.int8)  # 0 to 8 codes per answer
    scores = np.where(Y == 1, rng.uniform(0.6, 1.0, Y.shape), rng.uniform(0.0, 0.4, Y.shape))
    thresholds = _plain_thresholds(Y, scores)
    rule = choose_rule(Y, scores, len(Y), np.arange(8), thresholds)
    assert rule.is_plain and rule.name == "per-code thresholds"
    np.testing.assert_array_equal(rule.thresholds, thresholds)
    assert rule.cv["chosen"] == rule.cv["per_code_thresholds"] == {"micro_f1": 1.0, "macro_f1": 1.0}


def test_too_few_coded_answers_keep_per_code_thresholds():
    Y, scores = _one_code_each(n=MIN_ANSWERS - 1)
    thresholds = np.full(Y.shape[1], 0.5)
    rule = choose_rule(Y, scores, len(Y), np.arange(Y.shape[1]), thresholds)
    assert rule.is_plain and rule.cv is None


def test_shrinkage_pulls_codes_with_few_positives_toward_the_shared_threshold():
    from opm_nlp.classify.decision import _fit, _rule

    Y = np.zeros((100, 2), dtype=np.int8)
    Y[:2, 0] = 1  # two positives
    Y[:50, 1] = 1  # fifty
    scores = np.where(Y == 1, 0.8, 0.2)
    fitted = {**_fit(Y, scores, np.arange(2)), "raw": np.array([0.1, 0.7])}
    rule = _rule(fitted, 10.0, None, False)
    shared = fitted["shared"]
    np.testing.assert_allclose(rule.thresholds, [(2 * 0.1 + 10 * shared) / 12, (50 * 0.7 + 10 * shared) / 60])


def test_suggest_without_cap_is_the_threshold_rule_of_before():
    scores = np.array([[0.9, 0.2, 0.55], [np.nan, np.nan, np.nan]])
    thresholds = np.array([0.5, 0.3, 0.6])
    suggested, distance = suggest(DecisionRule(thresholds), scores)
    np.testing.assert_array_equal(suggested, [[True, False, False], [False, False, False]])
    np.testing.assert_allclose(distance[0], np.abs(scores[0] - thresholds))
    assert np.isnan(distance[1]).all()


def test_under_a_cap_the_distance_is_how_far_a_score_is_from_changing_which_codes_are_kept():
    scores = np.array([[0.9, 0.8, 0.75, 0.1], [0.3, 0.6, 0.1, 0.1]])
    suggested, distance = suggest(DecisionRule(np.full(4, 0.5), cap=2), scores)
    np.testing.assert_array_equal(suggested, [[True, True, False, False], [False, True, False, False]])
    # first answer: code 2 is above its threshold but cut; code 1 keeps its place by 0.05 over it
    np.testing.assert_allclose(distance[0], [0.15, 0.05, 0.05, 0.7])
    # second answer: the cap does not bind, each code is as far as from its threshold
    np.testing.assert_allclose(distance[1], [0.2, 0.1, 0.4, 0.4])


def test_at_least_one_gives_the_best_plausible_code_and_counts_it_uncertain():
    scores = np.array([[0.3, 0.1], [0.2, 0.1], [0.7, 0.6]])
    suggested, distance = suggest(DecisionRule(np.array([0.5, 0.5]), at_least_one=True), scores)
    np.testing.assert_array_equal(suggested, [[True, False], [False, False], [True, True]])
    assert distance[0, 0] == 0.0 and distance[1, 0] == pytest.approx(0.3)


def _round_trip(clf):
    state, arrays = classifier_state(clf)
    return classifier_from_state(json.loads(json.dumps(state, allow_nan=False)), arrays), state, arrays


def test_a_decision_rule_round_trips_through_the_state():
    clf = EmbeddingClassifier(cv=3, sentences=False).fit(TEXTS, Y12)
    assert clf.decision == "auto" and clf.decision_.is_plain  # 12 answers: fewer than MIN_ANSWERS
    clf.decision_ = DecisionRule(np.array([0.4, 0.45]), shrink=10.0, shared=0.42, cap=1, at_least_one=True,
                                 cv={"objective": "mean of micro- and macro-F1", "folds": 5, "answers": 12})
    back, state, arrays = _round_trip(clf)
    assert state["decision"]["cap"] == 1 and "decision.thresholds" in arrays
    assert back.decision_ == clf.decision_ and back.decision_.cv == clf.decision_.cv
    new = ["listen to them", "a plan", "listen and plan"]
    np.testing.assert_array_equal(back.predict(new), clf.predict(new))
    assert back.predict(new).sum(axis=1).max() <= 1  # the cap applies after loading
    broken = json.loads(json.dumps(state))
    broken["decision"]["cap"] = 0
    with pytest.raises(ModelError, match="'cap' at least 1"):
        classifier_from_state(broken, arrays)
    broken["decision"] = {**state["decision"], "extra": 1}
    with pytest.raises(ModelError, match=r"decision: expected the fields"):
        classifier_from_state(broken, arrays)


def test_a_state_from_before_decision_rules_loads_with_per_code_thresholds():
    clf = EmbeddingClassifier(cv=3, sentences=False).fit(TEXTS, Y12)
    state, arrays = classifier_state(clf)
    old = {k: v for k, v in json.loads(json.dumps(state)).items() if k != "decision"}
    old["params"].pop("decision")
    back = classifier_from_state(old, {k: v for k, v in arrays.items() if not k.startswith("decision.")})
    assert back.decision == "thresholds" and back.decision_.is_plain  # a refit decides as before too
    new = ["listen to them", "a plan", "listen and plan", "nothing relevant at all"]
    np.testing.assert_array_equal(back.predict(new), (back.predict_proba(new) >= back.thresholds_).astype(np.int8))


def test_a_folder_from_before_decision_rules_tags_exactly_as_before():
    """A model folder saved before decision rules (tests/data/model_before_rules, the shipped model as it
    was): suggestions are scores at or above the thresholds in its metadata, and uncertain codes those
    within the review margin of them."""
    from opm_nlp.columns import SCORE_PREFIX, UNCERTAIN_COL
    from opm_nlp.model.coding_model import CodingModel

    model = CodingModel.load(ROOT / "tests" / "data" / "model_before_rules")
    assert "decision" not in model.metadata and model.decision.is_plain
    frame = pd.read_csv(NEW_WAVE).head(40)
    tagged = model.tag(frame, "answer", "response_id")
    ids = model.codebook.ids
    thresholds = np.array([model.metadata["thresholds"][c] for c in ids])
    scores = model.predict_proba(frame["answer"].fillna("").tolist())
    answered = frame["answer"].fillna("").str.strip().ne("").to_numpy()
    np.testing.assert_array_equal(tagged[ids].to_numpy(), ((scores >= thresholds) & answered[:, None]).astype(int))
    near = np.abs(scores - thresholds) < model.review_margin
    assert tagged[UNCERTAIN_COL].tolist() == ["; ".join(ids[j] for j in np.flatnonzero(row) if answered[i])
                                             for i, row in enumerate(near)]
    assert np.allclose(tagged[[SCORE_PREFIX + c for c in ids]].to_numpy()[answered], scores[answered].round(4))


def test_tagging_under_a_cap_flags_codes_near_the_cap_border(trained_dir, monkeypatch):
    from opm_nlp.columns import NEEDS_REVIEW_COL, SUGGESTED_COL, UNCERTAIN_COL
    from opm_nlp.model.coding_model import CodingModel

    model = CodingModel.load(trained_dir)
    ids = model.codebook.ids
    k = len(ids)
    model.classifier.decision_ = DecisionRule(np.full(k, 0.5), cap=2)
    scores = np.full((3, k), 0.05)
    scores[0, :3] = [0.99, 0.9, 0.88]  # the third code is above its threshold but cut, close to the second
    scores[1, :3] = [0.99, 0.9, 0.2]  # clear
    scores[2, :3] = [0.99, 0.9, 0.6]  # cut, but far from the second (0.3 below it)
    spans = np.tile([0, 1], (3, k, 1))  # each one-letter answer is its own evidence
    monkeypatch.setattr(model, "predict_with_evidence",
                        lambda texts, contexts=None: (scores[:len(texts)], spans[:len(texts)]))
    frame = pd.DataFrame({"response_id": [1, 2, 3], "answer": ["a", "b", "c"]})
    tagged = model.tag(frame, "answer", "response_id", review_margin=0.1)
    assert tagged[SUGGESTED_COL].tolist() == [f"{ids[0]}; {ids[1]}"] * 3
    assert tagged[UNCERTAIN_COL].tolist() == [f"{ids[1]}; {ids[2]}", "", ""]
    assert tagged[NEEDS_REVIEW_COL].tolist() == [1, 0, 0]


def test_train_says_which_rule_it_chose_and_the_card_says_it(trained_dir):
    from opm_nlp.model.folder import read_model_info
    from opm_nlp.model.metadata import decision_sentence

    _, metadata = read_model_info(trained_dir)
    record = metadata["decision"]
    assert record["cv"]["answers"] == metadata["training"]["answers"] and record["cv"]["folds"] == 5
    sentence = decision_sentence(metadata)
    assert sentence.startswith(f"Decision rule: {record['rule']}, chosen by 5-fold cross-validation on ")
    assert f"micro-F1 {record['cv']['chosen']['micro_f1']:.3f}" in sentence
    assert sentence in (trained_dir / "README.md").read_text(encoding="utf-8")
