"""The one-pass sentence recipe: sentence vectors pooled from the answer's own forward pass."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from opm_nlp.embedding.encoder import Embedder
from opm_nlp.embedding.onepass import shift_spans, span_mask
from opm_nlp.embedding.segment import sentence_spans, sentences
from opm_nlp.exceptions import ModelError

ROOT = Path(__file__).resolve().parents[1]
#: A model folder saved before the one-pass recipe existed (the shipped model as it was then).
OLD_FOLDER = ROOT / "tests" / "data" / "model_before_rules"
#: Its scores (onnx backend) of a few illustrative answers, written by the code from before the one-pass
#: recipe existed: the folder must keep tagging exactly so.
SHIPPED_SCORES = Path(__file__).parent / "data" / "opm_default_scores_onnx.csv"
ANSWERS = ["Listen more. Interrupt less.", "Café talk 😀 with my mentees. Ça marche! I'll set goals — every month.",
           "  One sentence only, with leading spaces.", "I set goals. 👍🏽 Then we meet weekly. Ünïcödé wörds here."]


def _by_hand(embedder: Embedder, text: str, spans, layers: int) -> tuple[np.ndarray, np.ndarray]:
    """The answer's vector and its spans' vectors, mean-pooled by hand from the network's token outputs."""
    from tokenizers import Tokenizer
    from transformers import AutoModel

    tokenizer = Tokenizer.from_file(str(embedder.path / "tokenizer.json"))
    tokenizer.no_padding()
    encoding = tokenizer.encode(text)
    model = AutoModel.from_pretrained(str(embedder.path))
    import torch

    with torch.no_grad():
        ids = torch.tensor([encoding.ids])
        states = model(input_ids=ids, attention_mask=torch.ones_like(ids),
                       output_hidden_states=True).hidden_states[::-1][:layers]
    def pooled(rows):
        blocks = [s[0, rows].mean(dim=0).numpy() for s in states]
        return np.concatenate([b / np.linalg.norm(b) for b in blocks])
    answer = pooled(list(range(len(encoding.ids))))
    parts = []
    for start, end in spans:
        rows = [i for i, ((a, b), special) in enumerate(zip(encoding.offsets, encoding.special_tokens_mask))
                if not special and b > a and start <= a < end]
        parts.append(pooled(rows))
    return answer, np.stack(parts)


@pytest.mark.parametrize("backend, layers, atol", [("torch", 1, 1e-5), ("torch", 3, 1e-5), ("onnx", 3, 1e-4)])
def test_one_pass_sentence_vectors_are_the_mean_of_the_answers_token_outputs(backend, layers, atol):
    embedder = Embedder(backend=backend, layers=layers, cache=False)
    spans = sentence_spans(ANSWERS)
    answers, per_answer = embedder.encode_segments(ANSWERS, spans)
    np.testing.assert_array_equal(answers, Embedder(backend=backend, layers=layers, cache=False).encode(ANSWERS))
    for text, found, text_spans in zip(ANSWERS, per_answer, spans):
        answer, parts = _by_hand(embedder, text, text_spans, layers)
        assert found.shape == (len(text_spans), 384 * layers)
        np.testing.assert_allclose(found, parts, atol=atol)
        np.testing.assert_allclose(answers[ANSWERS.index(text)], answer, atol=atol)
    assert embedder.encoded_count == len(ANSWERS)  # one forward pass per answer


def test_sentence_spans_map_to_the_text_whatever_emoji_or_accents():
    texts = ANSWERS + ["", "   ", "Ça va? 😀😀 Très bien!\n\nMerci."]
    for text, spans, parts in zip(texts, sentence_spans(texts), sentences(texts)):
        assert [text[a:b] for a, b in spans] == parts
    # the tokens a span pools are the sentence's own words, after an emoji and accented letters
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Embedder(backend="onnx", cache=False).path / "tokenizer.json"))
    tokenizer.no_padding()
    encoding = tokenizer.encode(ANSWERS[1])
    mask = span_mask(encoding.offsets, encoding.special_tokens_mask, sentence_spans([ANSWERS[1]])[0])
    assert [[t for t, m in zip(encoding.tokens, row) if m] for row in mask] == [
        ["cafe", "talk", "[UNK]", "with", "my", "men", "##tees", "."], ["ca", "marche", "!"],
        ["i", "'", "ll", "set", "goals", "—", "every", "month", "."]]


def test_spans_follow_the_answer_behind_its_context():
    for context, text in [("What will you change?", "Listen more. Set goals."), (None, " Listen. Set goals."),
                          ("", "  Listen. Set goals. "), ("  Q1 ", "Listen. Set goals.")]:
        joined = text if context is None else f"{context} {text}".strip()
        spans = sentence_spans([text])[0]
        assert [joined[a:b] for a, b in shift_spans(spans, context, text)] == [text[a:b] for a, b in spans]


def test_a_sentence_past_the_models_length_is_embedded_alone():
    embedder = Embedder(backend="onnx-int8", cache=False)
    text = "word " * 300 + ". The last sentence."
    spans = sentence_spans([text])[0]
    _, (found,) = embedder.encode_segments([text], [spans])
    np.testing.assert_array_equal(found[-1], embedder.encode([text[slice(*spans[-1])]])[0])
    assert not np.isnan(found).any()


@pytest.mark.parametrize("backend", ["onnx-int8", "torch"])
def test_an_answers_vectors_do_not_depend_on_its_batch_mates(backend, tmp_path, monkeypatch):
    monkeypatch.setenv("OPM_NLP_CACHE_DIR", str(tmp_path))
    others = ["Meet weekly. Write it down.", "none", "Ask what they need! Then listen."]
    alone = Embedder(backend=backend, layers=3, cache=False).encode_segments([ANSWERS[3]], sentence_spans([ANSWERS[3]]))
    texts = others[:2] + [ANSWERS[3]] + others[2:]
    cached = Embedder(backend=backend, layers=3)
    for _ in range(2):  # cold, then warm from the disk cache of a fresh embedder
        answers, per_answer = cached.encode_segments(texts, sentence_spans(texts))
        np.testing.assert_array_equal(answers[2], alone[0][0])
        np.testing.assert_array_equal(per_answer[2], alone[1][0])
        cached = Embedder(backend=backend, layers=3)
    assert cached.encoded_count == 0 or backend == "torch"


def test_spacy_sentence_splitting_does_not_import_torch():
    code = ("import sys; from opm_nlp.embedding.segment import sentence_spans, sentences, words; "
            "sentences(['A. B.']); sentence_spans(['A. B.']); words(['goals']); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- model folders ---------------------------------------------------------------------------------
def test_a_folder_from_before_one_pass_keeps_the_alone_recipe_and_its_scores():
    from opm_nlp.model.coding_model import CodingModel

    expected = pd.read_csv(SHIPPED_SCORES, keep_default_na=False)
    model = CodingModel.load(OLD_FOLDER, backend="onnx", cache=False)
    assert model.classifier.sentence_recipe_ == "alone" and model.classifier.sentence_view_
    scores = model.classifier.predict_proba(expected["answer"].tolist())
    np.testing.assert_allclose(scores, expected.drop(columns="answer").to_numpy(), rtol=0, atol=1e-6)
    assert (model.embedder.encoded_count > len(expected))  # sentences went through the network again


def _write_state(folder: Path, state: dict) -> None:
    """Replace a folder's classifier.json, recording its hash as a folder written so would."""
    from opm_nlp.model.folder import sha256

    (folder / "classifier.json").write_text(json.dumps(state))
    meta = json.loads((folder / "metadata.json").read_text())
    meta["files"]["classifier.json"] = sha256(folder / "classifier.json")
    (folder / "metadata.json").write_text(json.dumps(meta))


def test_new_models_record_one_pass_and_old_folders_load_as_alone(trained_dir, tmp_path):
    from opm_nlp.model.coding_model import CodingModel

    state = json.loads((trained_dir / "classifier.json").read_text())
    assert state["sentence_recipe"] == "one-pass" and state["params"]["sentence_recipe"] == "one-pass"
    texts = pd.read_csv(SHIPPED_SCORES, keep_default_na=False)["answer"].tolist()
    one_pass = CodingModel.load(trained_dir, cache=False)
    assert one_pass.classifier.sentence_recipe_ == "one-pass"
    scores = one_pass.classifier.predict_proba(texts)
    assert one_pass.embedder.encoded_count == len(set(texts))  # one pass per answer
    np.testing.assert_array_equal(np.vstack([one_pass.classifier.predict_proba([t]) for t in texts]), scores)

    old = tmp_path / "old"  # the same folder as written before the recipe was recorded
    shutil.copytree(trained_dir, old)
    del state["sentence_recipe"], state["params"]["sentence_recipe"]
    _write_state(old, state)
    as_old = CodingModel.load(old, cache=False)
    assert as_old.classifier.sentence_recipe_ == "alone" == as_old.classifier.sentence_recipe
    assert not np.array_equal(as_old.classifier.predict_proba(texts), scores)

    state["sentence_recipe"] = "twice"
    _write_state(old, state)
    with pytest.raises(ModelError, match="'sentence_recipe' is 'twice', expected one of"):
        CodingModel.load(old, cache=False)


def test_an_embedder_that_cannot_pool_fits_the_alone_recipe():
    from opm_nlp.classify.estimator import EmbeddingClassifier
    from opm_nlp.exceptions import DataError

    class Plain:
        def encode(self, texts):
            return np.stack([np.random.default_rng(len(t)).normal(size=8) for t in texts])

    texts = [f"Answer {i}. It has {'two' if i % 2 else 'some'} sentences." for i in range(40)]
    Y = np.column_stack([[i % 2 for i in range(40)], [i % 3 == 0 for i in range(40)]]).astype(int)
    assert EmbeddingClassifier(embedder=Plain(), n_jobs=1).fit(texts, Y).sentence_recipe_ == "alone"
    with pytest.raises(DataError, match="'sentence_recipe' parameter of EmbeddingClassifier must be one of"):
        EmbeddingClassifier(embedder=Plain(), sentence_recipe="twice").fit(texts, Y)
