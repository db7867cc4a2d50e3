import pickle
import re

import numpy as np
import pytest

from opm_nlp.classify import finetune
from opm_nlp.classify.estimator import EmbeddingClassifier
from opm_nlp.exceptions import DataError, ModelError
from opm_nlp.classify.finetune import FineTunedHead, cross_fitted

X = ["I will listen more carefully", "listen actively to my students", "more active listening",
     "be a better listener", "hear them out before answering", "listen without interrupting",
     "start using an IDP", "use individual development plans", "IDPs for everyone",
     "write a mentoring plan with each student", "a written development plan", "draft a mentoring compact"]
Y = np.array([[1, 0]] * 6 + [[0, 1]] * 6)
NEW = ["listening to my mentee more", "an individual development plan"]


@pytest.fixture(scope="module")
def head():
    return FineTunedHead(epochs=3).fit(X, Y)


def test_fine_tuned_network_scores_new_answers_and_survives_pickling(head):
    scores = head.decision_function(NEW)
    assert scores.shape == (2, 2)
    assert scores[0, 0] > scores[0, 1] and scores[1, 1] > scores[1, 0]
    assert all(w.dtype == np.float16 for w in head.weights_.values())
    again = pickle.loads(pickle.dumps(head))
    assert np.allclose(again.decision_function(NEW), scores, atol=1e-5)


def float32(head: FineTunedHead) -> FineTunedHead:
    """The same fitted network, scoring through its float32 export (as heads saved before int8 do)."""
    copy = pickle.loads(pickle.dumps(head))
    copy.quantize = False
    return copy


def test_onnx_float32_export_of_the_fine_tuned_network_gives_the_torch_scores(head):
    head = float32(head)
    torch_scores = head.decision_function(NEW, backend="torch")
    onnx_scores = head.decision_function(NEW)
    assert head._embedder.backend == "onnx"
    assert np.allclose(onnx_scores, torch_scores, atol=1e-4)
    folder = head.network_folder()
    assert folder.name == head.weights_sha256[:16] and (folder / "model.safetensors").is_file()
    assert folder.stat().st_mode & 0o077 == 0, "weights learnt from answers must be owner-only"
    assert head._embedder.encoded_count == len(NEW)
    assert np.allclose(head.decision_function(NEW), onnx_scores) and head._embedder.encoded_count == len(NEW)
    assert head.decision_function([]).shape == (0, 2)


def test_new_networks_score_through_their_int8_export(head):
    assert head.quantize and FineTunedHead().quantize
    exact = float32(head)
    scores, exact_scores = head.decision_function(NEW, cache=False), exact.decision_function(NEW, cache=False)
    assert head._embedder.backend == "onnx-int8"
    assert head._embedder.cache_key != exact._embedder.cache_key, "int8 embeddings are cached apart"
    assert not np.allclose(scores, exact_scores, atol=1e-4), "int8 weights move the scores a little"
    assert np.abs(scores - exact_scores).max() < 0.1 * np.abs(exact_scores).max()
    # each answer alone: its scores whatever it is scored with
    assert np.array_equal(head.decision_function(NEW[::-1] + X[:3], cache=False)[[1, 0]], scores)


def test_cross_fitted_scores_come_from_networks_that_did_not_see_the_answer(monkeypatch):
    seen = []

    class Recorder:
        def __init__(self, **params):
            self.params = params

        def fit(self, texts, Y, progress=None):
            self.texts = list(texts)
            seen.append(self.texts)
            labels.append(progress)
            return self

        def decision_function(self, texts, cache=True, progress=None):
            assert not cache, "answers scored once need no cache"
            labels.append(progress)
            assert not set(texts) & set(self.texts), "a network scored an answer it was trained on"
            return np.full((len(texts), Y.shape[1]), float(len(seen)))

        def release(self):
            released.append(self.texts)

    released, labels = [], []
    monkeypatch.setattr(finetune, "FineTunedHead", Recorder)
    folds = np.array([0, 1] * 6)
    oof, final = cross_fitted(X, Y, folds, epochs=1)
    assert released == seen[:2], "the cross-fitting networks are removed from the cache once used"
    assert [len(s) for s in seen] == [6, 6, 12]
    assert final.texts == X and final.params == {"epochs": 1}
    assert (oof[folds == 0] == 1).all() and (oof[folds == 1] == 2).all()
    assert labels == [None] * 5, "no progress bars unless asked"
    labels.clear()
    cross_fitted(X, Y, folds, epochs=1, progress=True)
    assert labels == ["fine-tuning network 1 of 3", "scoring with network 1", "fine-tuning network 2 of 3",
                      "scoring with network 2", "fine-tuning network 3 of 3"]


def test_cross_fitted_networks_learn_from_at_most_max_tokens(monkeypatch):
    seen = []

    class Recorder:
        def __init__(self, **params):
            pass

        def fit(self, texts, Y, progress=None):
            seen.append(list(texts))
            return self

        def decision_function(self, texts, cache=True, progress=None):
            return np.zeros((len(texts), Y.shape[1]))

        def release(self):
            pass

    monkeypatch.setattr(finetune, "FineTunedHead", Recorder)
    folds = np.array([0, 1] * 6)
    lengths = finetune.token_lengths(X)
    budget = int(lengths.sum() * 2 / 3)  # two thirds of all tokens: each half's network gets a third
    oof, _ = cross_fitted(X, Y, folds, max_tokens=budget, epochs=1)
    tokens = [finetune.token_lengths(s).sum() for s in seen]
    assert tokens[0] <= budget // 2 and tokens[1] <= budget // 2 and tokens[2] <= budget
    assert 0 < len(seen[0]) < 6 and 0 < len(seen[1]) < 6 and 6 < len(seen[2]) < 12 and oof.shape == Y.shape
    assert set(seen[0]) <= {x for x, f in zip(X, folds) if f == 1} and len(set(seen[2])) == len(seen[2])


def test_fine_tuning_shows_its_steps_when_asked(capsys):
    FineTunedHead(epochs=2, batch_size=8).fit(X, Y, progress="fine-tuning for a test")
    # 12 answers in batches of 8: two steps an epoch
    assert re.search(r"fine-tuning for a test: 100%.*\b4/4\b", capsys.readouterr().err)


def test_fine_tuning_needs_a_local_mean_pooling_model():
    with pytest.raises(ModelError, match="local mean-pooling model folder; 'no-such/model'"):
        FineTunedHead(model="no-such/model").fit(X, Y)


def test_classifier_stacks_the_fine_tuned_view(monkeypatch):
    from opm_nlp.embedding.cache import cache_root

    def cached():
        return {p.name for folder in ("fine-tuned", "onnx") if (cache_root() / folder).is_dir()
                for p in (cache_root() / folder).iterdir()}

    EmbeddingClassifier(cv=3)._embedder().encode(["the frozen network exported first"])
    before = cached()
    clf = EmbeddingClassifier(cv=3, fine_tune=1).fit(X, Y)
    assert cached() == before, "the cross-fitting networks left files in the cache"
    assert isinstance(clf.fine_tuned_, FineTunedHead) and clf.fine_tuned_.epochs == 1 and clf.fine_tuned_.quantize
    # lexical, embedding, best sentence, fine-tuned
    assert all(head[2].coef_.shape == (1, 4) for head in clf.heads_.values())
    assert clf.predict(NEW).tolist() == [[1, 0], [0, 1]]
    proba = clf.predict_proba(NEW)
    calls = []
    original = FineTunedHead.decision_function
    monkeypatch.setattr(FineTunedHead, "decision_function", lambda self, texts, **kw: calls.append(texts) or original(self, texts, **kw))
    assert np.allclose(pickle.loads(pickle.dumps(clf)).predict_proba(NEW), proba, atol=1e-6)
    assert calls == [NEW]
    assert EmbeddingClassifier(cv=3).fit(X, Y).fine_tuned_ is None


def test_fine_tune_must_be_a_count_of_epochs():
    with pytest.raises(DataError, match="'fine_tune' parameter of EmbeddingClassifier must be an int >= 0"):
        EmbeddingClassifier(fine_tune=-1).fit(X, Y)
