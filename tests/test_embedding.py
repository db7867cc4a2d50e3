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
