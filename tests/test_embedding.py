import os
import re
import stat

import numpy as np
import pytest

from opm_nlp.embedding import encoder as embedding
from opm_nlp.embedding.cache import cache_root
from opm_nlp.embedding.encoder import Embedder
from opm_nlp.exceptions import ModelError

TEXTS = ["I will listen more.", "Start using IDPs with every student this year, and revisit them.",
         "none", "mtgs w/ agenda every 2 wks", "I will listen more."]


@pytest.fixture(scope="module")
def reference():
    return Embedder(backend="torch", cache=False).encode(TEXTS)


def test_torch_embeddings_are_normalised_and_deduplicated(reference):
    assert reference.shape == (5, 384)
    np.testing.assert_allclose(np.linalg.norm(reference, axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(reference[0], reference[4])


@pytest.mark.parametrize("backend, min_cosine, mean_cosine", [("onnx", 0.9999, 0.9999), ("onnx-int8", 0.95, 0.98)])
def test_onnx_backends_agree_with_torch(reference, backend, min_cosine, mean_cosine):
    vectors = Embedder(backend=backend, cache=False).encode(TEXTS)
    cosine = (vectors * reference).sum(axis=1)
    assert cosine.min() >= min_cosine
    assert cosine.mean() >= mean_cosine
    assert (cache_root() / "onnx").is_dir()  # the export is cached, not redone per run


def test_onnx_export_is_fused():
    import onnx

    embedder = Embedder(backend="onnx-int8", cache=False)
    embedder.encode(["warm up"])
    folder = cache_root() / "onnx" / embedder.cache_key_base()
    ops = {node.op_type for node in onnx.load(str(folder / "model.onnx")).graph.node}
    assert {"Attention", "SkipLayerNormalization"} <= ops
    quantised = {node.op_type for node in onnx.load(str(folder / "model.int8.onnx")).graph.node}
    assert "QAttention" in quantised


def test_a_new_export_recipe_changes_the_onnx_cache_keys(monkeypatch):
    torch_emb, int8 = Embedder(backend="torch"), Embedder(backend="onnx-int8")
    before = (torch_emb.cache_key, int8.cache_key, int8.cache_key_base())
    monkeypatch.setattr(embedding, "ONNX_RECIPE", embedding.ONNX_RECIPE + 1)
    assert torch_emb.cache_key == before[0]  # torch embeddings do not depend on the export
    assert int8.cache_key != before[1]
    assert int8.cache_key_base() != before[2]


def test_a_new_run_recipe_changes_every_embedding_cache_key_but_not_the_export(monkeypatch):
    embedders = [Embedder(backend=b) for b in embedding.BACKENDS]
    before = [e.cache_key for e in embedders]
    export = embedders[-1].cache_key_base()
    monkeypatch.setattr(embedding, "RUN_RECIPE", embedding.RUN_RECIPE + 1)
    assert all(e.cache_key != key for e, key in zip(embedders, before))
    assert embedders[-1].cache_key_base() == export  # the export is the same network: it is reused


#: Answers of many lengths (so a batch would pad most of them), several with the same number of tokens.
VARIED = [" ".join(["Meet every week", "set goals together", "write a plan and revisit it",
                    "listen before advising, then ask what they need from me"][:k % 4 + 1]) + f" (note {k})."
          for k in range(24)] + ["ok", "no", "More structure.", "Less talking, more listening!"]


def _pieces(embedder_args, texts, size):
    return np.concatenate([Embedder(**embedder_args).encode(texts[i:i + size]) for i in range(0, len(texts), size)])


@pytest.mark.parametrize("backend", embedding.BACKENDS)
def test_an_answer_gets_the_same_vector_whatever_is_embedded_with_it(backend):
    args = dict(backend=backend, cache=False, layers=3)
    together = Embedder(**args).encode(VARIED)
    assert np.array_equal(together, Embedder(**args, threads=1).encode(VARIED[::-1])[::-1])
    assert np.array_equal(together, _pieces(args, VARIED, 5))
    assert np.array_equal(together[:6], _pieces(args, VARIED[:6], 1))  # each answer alone


@pytest.mark.parametrize("layers", [1, 3])
def test_torch_vectors_do_not_depend_on_the_thread_count(layers):
    """Dask's workers run with OMP_NUM_THREADS=1: the same answers must get the same vectors there."""
    import torch

    before = torch.get_num_threads()
    try:
        vectors = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            vectors.append(Embedder(backend="torch", cache=False, layers=layers).encode(VARIED))
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(*vectors)
    assert torch.get_num_threads() == before  # embedding leaves the process's setting alone


def test_disk_cache_skips_the_encoder_and_is_private(reference):
    first = Embedder(backend="torch")
    first.encode(TEXTS)
    second = Embedder(backend="torch")
    again = second.encode(TEXTS)
    assert second.encoded_count == 0
    np.testing.assert_allclose(again, reference, atol=1e-6)
    files = list((cache_root() / "embeddings").glob("*.sqlite"))
    assert files and all(stat.S_IMODE(os.stat(f).st_mode) == 0o600 for f in files)
    # the cache stores hashes of the answers, never their text
    assert not any(b"IDPs" in f.read_bytes() for f in files)


@pytest.mark.parametrize("backend", ["onnx-int8", "torch"])
def test_progress_bar_is_labelled_and_counts_answers(backend, capsys):
    texts = [f"answer number {i}" for i in range(70)]  # more than a batch of 64
    Embedder(backend=backend, cache=False, layers=3, show_progress="embedding for a test").encode(texts)
    assert re.search(r"embedding for a test: 100%.*\b70/70\b", capsys.readouterr().err)
    Embedder(backend=backend, cache=False, layers=3).encode(texts)
    assert capsys.readouterr().err == ""


def test_unknown_backend_and_missing_model_are_clear_errors(tmp_path):
    with pytest.raises(ModelError, match=r"Unknown embedding backend 'gpu'\. Use one of \['torch', 'onnx', 'onnx-int8'\]"):
        Embedder(backend="gpu")
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(ModelError, match=r"is not a sentence-transformers model folder"):
        Embedder(str(tmp_path))


@pytest.fixture(scope="module")
def three_layers():
    return Embedder(backend="torch", cache=False, layers=3).encode(TEXTS)


def test_several_layers_are_pooled_side_by_side(reference, three_layers):
    assert three_layers.shape == (5, 3 * 384)
    blocks = three_layers.reshape(5, 3, 384)
    np.testing.assert_allclose(np.linalg.norm(blocks, axis=2), 1, atol=1e-5)
    # the top block is the sentence embedding; the lower layers say something else
    np.testing.assert_allclose(blocks[:, 0], reference, atol=1e-5)
    assert (blocks[:, 2] * reference).sum(axis=1).max() < 0.9
    np.testing.assert_array_equal(three_layers[0], three_layers[4])


@pytest.mark.parametrize("backend, min_cosine", [("onnx", 0.9999), ("onnx-int8", 0.95)])
def test_onnx_backends_pool_the_same_layers_as_torch(three_layers, backend, min_cosine):
    vectors = Embedder(backend=backend, cache=False, layers=3).encode(TEXTS)
    cosine = (vectors.reshape(5, 3, 384) * three_layers.reshape(5, 3, 384)).sum(axis=2)
    assert cosine.min() >= min_cosine


def test_layers_are_part_of_the_cache_keys():
    one, three = Embedder(backend="onnx-int8"), Embedder(backend="onnx-int8", layers=3)
    assert one.cache_key != three.cache_key and one.cache_key_base() != three.cache_key_base()
    assert Embedder(backend="torch").cache_key != Embedder(backend="torch", layers=3).cache_key


def test_layers_beyond_the_model_or_with_other_pooling_are_refused(tmp_path):
    with pytest.raises(ModelError, match=r"layers=7, but the embedding model 'all-MiniLM-L6-v2' has 6 layers\. "
                                         r"Use at most 6\."):
        Embedder(backend="torch", layers=7)
    with pytest.raises(ModelError, match=r"whole number >= 1; got 0"):
        Embedder(layers=0)
    assert embedding.default_layers(None) == embedding.DEFAULT_LAYERS
    (tmp_path / "config.json").write_text('{"num_hidden_layers": 12}')
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true}')
    assert embedding.default_layers(str(tmp_path)) == 1  # a CLS-pooling model keeps its own embedding
    with pytest.raises(ModelError, match=r"layers=3 needs a mean-pooling model; '.*' uses another pooling\. "
                                         r"Use --embedding-layers 1\."):
        Embedder(str(tmp_path), backend="torch", layers=3)
