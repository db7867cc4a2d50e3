import pickle
import re

import numpy as np
import pytest

from opm_nlp.classify.estimator import EmbeddingClassifier, FewExamplesWarning
from opm_nlp.classify.keyword import KeywordClassifier
from opm_nlp.classify.stacking import best_sentence, best_threshold
from opm_nlp.exceptions import DataError


def test_best_threshold_maximises_f1():
    y = np.array([0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.6, 0.5, 0.7, 0.9])
    # cutting between 0.5 and 0.1 keeps all three positives and one negative: F1 = 6/7
    assert best_threshold(y, scores) == pytest.approx(0.3)
    assert best_threshold(np.zeros(4), np.array([0.1, 0.2, 0.3, 0.4])) == 0.5


def test_keyword_classifier_matches_stems_lemmas_and_phrases():
    clf = KeywordClassifier([["expect"], ["idp", "development plan"], ["listen"]]).fit()
    got = clf.predict(["I will revisit Expectations.", "we now use IDPs", "a development plan", "planned development",
                       "Listened more", ""])
    assert got.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 0, 0], [0, 0, 1], [0, 0, 0]]


def test_embedding_classifier_learns_themes_from_few_examples():
    X = ["I will listen more carefully", "listen actively to my students", "more active listening",
         "be a better listener", "hear them out before answering", "listen without interrupting",
         "start using an IDP", "use individual development plans", "IDPs for everyone",
         "write a mentoring plan with each student", "a written development plan", "draft a mentoring compact"]
    Y = np.array([[1, 0]] * 6 + [[0, 1]] * 6)
    clf = EmbeddingClassifier(cv=3).fit(X, Y)
    assert clf.thresholds_.shape == (2,)
    assert clf.oof_scores_.shape == (12, 2)
    new = clf.predict(["listening to my mentee more", "an individual development plan"])
    assert new.tolist() == [[1, 0], [0, 1]]
    proba = clf.predict_proba(["listening to my mentee more"])
    assert proba.shape == (1, 2) and ((proba >= 0) & (proba <= 1)).all()


def test_codes_with_few_or_no_positives_train_with_a_warning():
    X = [f"answer number {i} about listening" for i in range(12)]
    Y = np.zeros((12, 3), dtype=int)
    Y[:6, 0] = 1
    Y[0, 1] = 1  # one positive only; column 2 has none
    with pytest.warns(FewExamplesWarning, match=r"Code #1 has 1 positive answers of 12") as caught:
        clf = EmbeddingClassifier(cv=3).fit(X, Y)
    few = [w for w in caught if w.category is FewExamplesWarning]
    assert [w.message.code_index for w in few] == [1, 2]  # the code's column, for callers that name it
    assert str(few[1].message) == ("Code #2 has 0 positive answers of 12; its suggestions will be unreliable. "
                                   "Code more answers with it.")
    assert all(w.filename == __file__ for w in few), "the warning points at the caller of fit"
    proba = clf.predict_proba(["something new", "answer number 0 about listening"])
    # codes with fewer than two positives cannot be learned: they score their (smoothed) prior and
    # are never suggested
    assert proba[0, 2] == pytest.approx(0.5 / 13)
    assert proba[1, 1] == pytest.approx(1.5 / 13)
    assert clf.thresholds_[1] > 1 and clf.thresholds_[2] > 1
    assert clf.predict(["answer number 0 about listening"])[0, 1:].tolist() == [0, 0]


def test_scores_are_probabilities_that_track_the_evidence():
    X = [f"I will listen more to student {i}" for i in range(15)] + [f"We now use a plan number {i}" for i in range(15)]
    Y = np.array([[1, 0]] * 15 + [[0, 1]] * 15)
    clf = EmbeddingClassifier(cv=3).fit(X, Y)
    oof = clf.oof_scores_
    assert oof[:15, 0].mean() > 0.8 and oof[15:, 0].mean() < 0.2


def test_context_is_used_and_then_required():
    X = ["nothing", "nothing really", "nothing at all", "not much", "nothing", "nothing much"] * 3
    question = ["What was good?", "What could be better?"] * 9
    Y = np.array([[1] if q == "What was good?" else [0] for q in question])  # "nothing" is bad only here
    clf = EmbeddingClassifier(cv=3).fit(X, Y, contexts=question)
    proba = clf.predict_proba(["nothing", "nothing"], contexts=["What was good?", "What could be better?"])
    assert proba[0, 0] > 0.5 > proba[1, 0]
    with pytest.raises(DataError, match=r"trained with a context column .* pass the same column when tagging"):
        clf.predict_proba(["nothing"])


@pytest.mark.parametrize("kwargs, Y, message", [
    ({}, np.array([1, 0]), r"Y must be a 2-D 0/1 array"),
    ({}, np.array([[1], [0], [1]]), r"X has 2 answers but Y has 3 rows"),
    ({}, np.array([[2], [0]]), r"Y must contain only 0 and 1"),
    ({"C_lexical": -1}, np.array([[1], [0]]),
     r"The 'C_lexical' parameter of EmbeddingClassifier must be a float > 0\. Got -1 instead\."),
    ({"cv": 1}, np.array([[1], [0]]), r"The 'cv' parameter of EmbeddingClassifier must be an int >= 2\. Got 1"),
])
def test_bad_training_input_is_rejected(kwargs, Y, message):
    with pytest.raises(DataError, match=message):
        EmbeddingClassifier(**kwargs).fit(["a", "b"], Y)


def test_predict_before_fit_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        EmbeddingClassifier().predict(["x"])


class HashEmbedder:
    """Stand-in embedder: a fixed random vector per text (no model needed)."""

    def encode(self, texts):
        return np.stack([np.random.default_rng(abs(hash(t)) % 2**32).normal(size=384) for t in texts])


def test_fits_when_features_are_large_enough_to_be_shared_between_processes():
    # joblib hands arrays over 1 MB to worker processes as memory maps; liblinear needs them writeable
    rng = np.random.default_rng(0)
    X = [f"answer {i} about {'listening' if i % 3 else 'plans'} and more" for i in range(1500)]
    Y = np.column_stack([[i % 3 == 0 for i in range(1500)], rng.integers(0, 2, 1500)]).astype(int)
    clf = EmbeddingClassifier(embedder=HashEmbedder(), n_jobs=2).fit(X, Y)
    assert clf.oof_scores_[:, 0][Y[:, 0] == 1].mean() > 0.9


def test_progress_bars_only_when_asked(capsys):
    X = [f"answer {i} about {'listening' if i % 3 else 'plans'}" for i in range(60)]
    Y = np.column_stack([[i % 3 == 0 for i in range(60)], [i % 2 for i in range(60)], [i % 5 == 0 for i in range(60)]])
    EmbeddingClassifier(embedder=HashEmbedder(), n_jobs=1).fit(X, Y.astype(int))
    assert capsys.readouterr().err == ""
    EmbeddingClassifier(embedder=HashEmbedder(), n_jobs=1).fit(X, Y.astype(int), progress=True)
    assert re.search(r"learning codes: 100%.*\b3/3\b", capsys.readouterr().err)


def test_codebook_examples_carry_codes_that_have_no_coded_answers_yet():
    # two coded answers for code 0 only; code 1 is known from the codebook's examples alone
    X = ["I will listen more carefully", "listen actively to my students"]
    Y = np.array([[1, 0], [1, 0]])
    examples = (["be a better listener", "hear them out before answering", "start using an IDP",
                 "use individual development plans", "IDPs for everyone", "a written development plan"],
                np.array([[1, 0]] * 2 + [[0, 1]] * 4))
    clf = EmbeddingClassifier(cv=2).fit(X, Y, examples=examples)
    assert clf.n_positives_.tolist() == [2, 0]  # coded answers only
    assert clf.n_examples_ == 6
    assert clf.oof_scores_.shape == (2, 2)  # out-of-fold scores of the coded answers only
    assert clf.predict(["an individual development plan"])[0, 1] == 1
    with pytest.warns(FewExamplesWarning):
        without = EmbeddingClassifier(cv=2).fit(X + ["plans"], np.array([[1, 0], [1, 0], [0, 1]]))
    assert without.thresholds_[1] > 1  # one positive: never suggested


def test_a_model_from_codebook_examples_alone():
    examples = (["listen more", "active listening", "be a better listener", "use an IDP", "development plans",
                 "IDPs for everyone"], np.array([[1, 0]] * 3 + [[0, 1]] * 3))
    clf = EmbeddingClassifier(cv=2).fit([], np.zeros((0, 2)), examples=examples)
    assert clf.oof_scores_.shape == (0, 2)
    proba = clf.predict_proba(["listening to my mentee", "an individual development plan"])
    assert proba[0, 0] > proba[1, 0] and proba[1, 1] > proba[0, 1]
    assert clf.predict(["an individual development plan"]).tolist() == [[0, 1]]


def test_other_codes_stage_sees_what_else_applies():
    X = (["I will listen more carefully", "listen actively", "more active listening", "be a better listener",
          "start using an IDP", "use development plans", "IDPs for everyone", "a written development plan",
          "all good thanks", "nothing to add, great course", "fine as it is", "thank you, all good"])
    Y = np.array([[1, 0, 0]] * 4 + [[0, 1, 0]] * 4 + [[0, 0, 1]] * 4)
    with_others = EmbeddingClassifier(cv=2).fit(X, Y)
    without = EmbeddingClassifier(cv=2, other_codes=False).fit(X, Y)
    assert all(len(head) == 4 for head in with_others.heads_.values())
    assert all(len(head) == 3 for head in without.heads_.values())
    new = ["listening to my mentee", "all fine, thanks"]
    for clf in (with_others, without):
        proba = clf.predict_proba(new)
        assert proba.shape == (2, 3) and ((proba >= 0) & (proba <= 1)).all()
        assert proba[0].argmax() == 0 and proba[1].argmax() == 2
    assert not np.allclose(with_others.predict_proba(new), without.predict_proba(new))


def test_fast_character_ngrams_give_sklearns_matrix():
    from sklearn.feature_extraction.text import TfidfVectorizer

    from opm_nlp.classify.features import transform

    train = ["I will listen more", "Use an IDP with each mentee", "café crème, naïve résumé", "listen, listen!"]
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True).fit(train)
    texts = ["Listen   more\tto them\n", "", "  ", "café", "I", "an IDP, an IDP", "unseen words only: xyzzy"] * 3
    expected = vectorizer.transform(texts).toarray()
    memo = {}
    assert np.array_equal(transform(vectorizer, texts, memo).toarray(), expected)
    assert "listen" in memo
    assert np.array_equal(transform(vectorizer, texts, memo).toarray(), expected)  # again, from the memo


def test_scores_do_not_depend_on_the_words_remembered_and_the_memo_is_not_pickled():
    X = ["I will listen more", "listen actively", "more active listening", "be a better listener", "hear them out",
         "Use an IDP with each mentee", "use development plans", "IDPs for everyone", "a written plan", "a compact"]
    Y = np.array([[1, 0]] * 5 + [[0, 1]] * 5)
    clf = EmbeddingClassifier(embedder=HashEmbedder(), cv=2).fit(X, Y)
    new = ["Listen   more\tto them\n", "", "an IDP, an IDP", "unseen words only: xyzzy"]
    first = clf.predict_proba(new)
    assert np.array_equal(clf.predict_proba(new), first)  # its words now remembered
    assert "_word_ngrams" not in clf.__getstate__()
    again = pickle.loads(pickle.dumps(clf))
    again.embedder = clf.embedder  # embedders are not pickled
    assert np.array_equal(again.predict_proba(new), first)


def test_refitting_forgets_the_words_remembered_from_the_last_vocabulary():
    X = ["I will listen more", "listen actively", "more active listening", "be a better listener", "hear them out",
         "Use an IDP with each mentee", "use development plans", "IDPs for everyone", "a written plan", "a compact"]
    Y = np.array([[1, 0]] * 5 + [[0, 1]] * 5)
    other = ["talk about goals", "goals first", "set goals together", "goal setting", "shared goals",
             "meet weekly", "regular meetings", "meet every week", "a weekly call", "meetings on Fridays"]
    new = ["listen to their goals", "a plan for weekly meetings", "xyzzy"]
    refitted = EmbeddingClassifier(embedder=HashEmbedder(), cv=2).fit(X, Y)
    refitted.predict_proba(new)  # remembers the words of new under the first vocabulary
    refitted.fit(other, Y)
    fresh = EmbeddingClassifier(embedder=HashEmbedder(), cv=2).fit(other, Y)
    assert np.array_equal(refitted.predict_proba(new), fresh.predict_proba(new))


class _Linear:
    """A fitted binary linear model, as scikit-learn's: weights and intercept."""

    def __init__(self, w):
        self.coef_ = np.asarray([w], dtype=float)
        self.intercept_ = np.zeros(1)


def test_best_sentence_scores_answers_of_several_sentences_by_their_best():
    model = _Linear([1.0, 0.0])
    S = np.array([[0.2, 0], [0.9, 0], [-1.0, 0], [-0.5, 0], [3.0, 0]])  # sentences of answers 1, 1, 2, 2, 4
    owner = np.array([1, 1, 2, 2, 4])
    answers = np.array([0.1, 0.4, -0.8, 0.0, 1.0])  # the model's scores of the whole answers
    assert best_sentence(model, answers, S, owner).tolist() == [0.1, 0.9, -0.5, 0.0, 3.0]
    rows = np.array([False, True, False, False, True])  # a fold: answers 1 and 4 only
    assert best_sentence(model, answers[rows], S, owner, rows=rows).tolist() == [0.9, 3.0]
    assert best_sentence(model, answers, S[:0], owner[:0]).tolist() == answers.tolist()


def test_linear_scores_of_an_answer_do_not_depend_on_the_rows_beside_it():
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression

    from opm_nlp.classify.rowwise import linear_scores, probability

    rng = np.random.default_rng(0)
    X = rng.normal(size=(97, 1152))
    model = LogisticRegression(max_iter=500).fit(X, (X[:, 0] + X[:, 1] > 0).astype(int))
    at_once = linear_scores(model, X)
    assert np.array_equal(at_once, np.concatenate([linear_scores(model, X[i:i + 7]) for i in range(0, 97, 7)]))
    assert np.array_equal(at_once[5:6], linear_scores(model, X[5:6]))
    np.testing.assert_allclose(at_once, model.decision_function(X), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(probability(model, X), model.predict_proba(X)[:, 1], rtol=1e-10, atol=1e-12)
    sparse = sp.csr_matrix(np.where(np.abs(X) > 1.5, X, 0))
    np.testing.assert_allclose(linear_scores(model, sparse), model.decision_function(sparse), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("sentences", [True, False])
def test_sentence_view_is_a_stacker_input_only_when_asked_for(sentences):
    X = ["I will listen more carefully. Also, the weather was nice.", "listen actively to my students",
         "more active listening", "be a better listener. I liked the videos.", "hear them out before answering",
         "listen without interrupting", "start using an IDP", "use individual development plans. Great course!",
         "IDPs for everyone", "write a mentoring plan with each student", "a written development plan",
         "draft a mentoring compact. It was long."]
    Y = np.array([[1, 0]] * 6 + [[0, 1]] * 6)
    clf = EmbeddingClassifier(cv=3, other_codes=False, sentences=sentences).fit(X, Y)
    assert clf.sentence_view_ is sentences
    assert all(head[2].coef_.shape == (1, 3 if sentences else 2) for head in clf.heads_.values())
    new = ["Lunch was fine. I will listen to my mentee more.", "an individual development plan"]
    assert clf.predict(new).tolist() == [[1, 0], [0, 1]]
    del clf.sentence_view_  # a model saved before the sentence view existed
    if not sentences:
        assert clf.predict(new).tolist() == [[1, 0], [0, 1]]
