import json

import numpy as np
import pandas as pd
import pytest

from opm_nlp.columns import output_columns
from opm_nlp.model.coding_model import CodingModel
from opm_nlp.codebook.codes import parse_codebook
from opm_nlp.exceptions import ModelError


@pytest.fixture(scope="module")
def model(trained_dir):
    return CodingModel.load(trained_dir)


def test_saved_folder_has_metadata_card_and_hashes(trained_dir, codebook):
    names = sorted(p.name for p in trained_dir.iterdir())
    assert names == ["README.md", "classifier.json", "classifier.npz", "codebook.yaml", "metadata.json"]
    meta = json.loads((trained_dir / "metadata.json").read_text())
    assert meta["codebook"]["fingerprint"] == codebook.fingerprint
    assert meta["codes"] == codebook.ids
    assert meta["embedding"]["model"] == "all-MiniLM-L6-v2"
    assert meta["embedding"]["weights_sha256"].startswith("53aa5117")
    assert meta["embedding"]["layers"] == 3 and meta["embedding"]["fine_tune_epochs"] == 0
    assert meta["training"]["answers"] == 387
    assert meta["training"]["positives"]["aligning_expectations"] == 111
    assert set(meta["files"]) == {"classifier.json", "classifier.npz", "codebook.yaml"}
    cv = meta["cv_metrics"]
    assert 0 < cv["macro_f1"] <= 1
    for average in ("micro", "macro"):
        low, high = cv[f"{average}_f1_interval"]
        assert low < cv[f"{average}_f1"] < high and high - low < 0.2
    card = (trained_dir / "README.md").read_text()
    assert "| `written_plans` | Written plans and tools | 55 |" in card
    low, high = cv["macro_f1_interval"]
    assert "95% bootstrap intervals over the 387 coded answers" in card and f"macro {low:.2f}–{high:.2f}" in card
    assert "scikit-learn" in card


def test_tag_output_columns_and_empty_answers(model, codebook):
    frame = pd.DataFrame({"rid": ["a", "b", "c"], "text": ["I will start using IDPs with my students.", "", "none"],
                          "wave": ["w1", "w1", "w2"]})
    tagged = model.tag(frame, "text", "rid")
    assert list(tagged.columns) == ["rid", "text", "wave", *output_columns(codebook)]
    assert tagged.loc[0, "written_plans"] == 1
    assert "written_plans" in tagged.loc[0, "suggested_codes"].split("; ")
    assert tagged.loc[1, codebook.ids].sum() == 0 and tagged.loc[1, "needs_review"] == 1
    assert tagged[[f"score_{c}" for c in codebook.ids]].iloc[1].isna().all()
    assert len(tagged) == 3


def test_load_gives_the_same_scores_as_the_trained_model(trained_dir, codebook, coded):
    texts = coded["answer"].head(20).tolist()
    fresh = CodingModel(codebook).fit(coded, "answer")
    loaded = CodingModel.load(trained_dir, codebook=codebook)
    np.testing.assert_allclose(loaded.predict_proba(texts), fresh.predict_proba(texts), atol=1e-6)


@pytest.fixture()
def copy_of(trained_dir, tmp_path):
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(trained_dir, target)
    return target


@pytest.mark.parametrize("name", ["classifier.json", "classifier.npz"])
def test_tampered_classifier_is_refused(copy_of, name):
    with open(copy_of / name, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelError, match=rf"{name.replace('.', '[.]')} differs from the file saved with this model \(sha256 mismatch\); refusing"):
        CodingModel.load(copy_of)


def test_missing_file_and_non_model_folder_are_refused(copy_of, tmp_path):
    (copy_of / "codebook.yaml").unlink()
    with pytest.raises(ModelError, match=r"codebook\.yaml is missing; the model folder is incomplete"):
        CodingModel.load(copy_of)
    with pytest.raises(ModelError, match=r"is not an opm-nlp model folder \(no metadata\.json\)"):
        CodingModel.load(tmp_path)


def test_other_codebook_is_refused(trained_dir, codebook):
    other = parse_codebook(codebook.to_yaml().replace("Aligning expectations", "Expectations"), source="other.yaml")
    with pytest.raises(ModelError, match=r"Codebook other\.yaml \(fingerprint [0-9a-f]{16}\) is not the one the model"):
        CodingModel.load(trained_dir, codebook=other)


def test_models_saved_before_layers_were_recorded_use_one(copy_of):
    meta = json.loads((copy_of / "metadata.json").read_text())
    del meta["embedding"]["layers"]
    (copy_of / "metadata.json").write_text(json.dumps(meta))
    assert CodingModel.load(copy_of).embedder.layers == 1


def test_version_drift_warns(copy_of):
    meta = json.loads((copy_of / "metadata.json").read_text())
    meta["versions"]["scikit-learn"] = "0.0.1"
    (copy_of / "metadata.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match=r"saved with scikit-learn 0\.0\.1"):
        CodingModel.load(copy_of)


def test_keyword_method_needs_no_training_data_or_embeddings(codebook, coded):
    model = CodingModel(codebook, method="keyword").fit(coded, "answer")
    assert model.embedder is None and model.metadata["cv_metrics"] is None
    tagged = model.tag(pd.DataFrame({"id": ["1"], "t": ["Revisit expectations with an IDP"]}), "t", "id")
    assert tagged.loc[0, "suggested_codes"] == "aligning_expectations; written_plans"
    # the stems need no coded answers at all
    bare = CodingModel(codebook, method="keyword").fit(None)
    assert bare.metadata["training"]["answers"] == 0
    pd.testing.assert_frame_equal(bare.tag(pd.DataFrame({"id": ["1"], "t": ["Revisit expectations with an IDP"]}),
                                           "t", "id"), tagged)
    with pytest.raises(ModelError, match="Fine-tuning applies to the embedding method only, not 'keyword'"):
        CodingModel(codebook, method="keyword", fine_tune=2)
    with pytest.raises(ModelError, match="Fine-tuning needs a local mean-pooling model folder; 'no-such/model'"):
        CodingModel(codebook, embedding_model="no-such/model", fine_tune=2)


def test_fine_tuning_is_the_default_from_a_thousand_coded_answers(codebook):
    from opm_nlp.classify.finetune import DEFAULT_EPOCHS, MIN_ANSWERS

    model = CodingModel(codebook)
    assert MIN_ANSWERS == 1000
    assert model.fine_tune_epochs(999) == 0 and model.fine_tune_epochs(1000) == DEFAULT_EPOCHS
    assert CodingModel(codebook, fine_tune=0).fine_tune_epochs(5000) == 0
    assert CodingModel(codebook, fine_tune=1).fine_tune_epochs(10) == 1
    # the default never fails for want of a model that can be fine-tuned: it leaves the network frozen
    assert CodingModel(codebook, method="keyword").fine_tune_epochs(5000) == 0
    assert CodingModel(codebook, embedding_model="no-such/model").fine_tune_epochs(5000) == 0


def test_codebook_alone_needs_examples_for_every_code(codebook):
    from dataclasses import replace

    from opm_nlp.exceptions import DataError

    bare = replace(codebook, codes=(replace(codebook.codes[0], examples=()), *codebook.codes[1:]))
    with pytest.raises(DataError, match=r"every code needs examples; 1 have none \(aligning_expectations\)"):
        CodingModel(bare).fit(None)
    with pytest.raises(DataError, match=r"A context column \('question'\) needs coded answers"):
        CodingModel(codebook).fit(None, context_col="question")
    with pytest.raises(DataError, match="No coded answers to train on"):
        CodingModel(codebook, codebook_examples=False).fit(None)



def test_codes_with_few_examples_are_recorded_and_named_in_the_card(codebook, coded, tmp_path):
    few = coded.head(30)
    positives = few[codebook.ids].sum()
    expected = [c for c in codebook.ids if positives[c] < 5 or len(few) - positives[c] < 5]
    assert expected  # else the check below would prove nothing
    model = CodingModel(codebook, codebook_examples=False, sentences=False).fit(few, "answer")
    assert model.metadata["training"]["few_examples"] == expected
    card = (model.save(tmp_path / "few") / "README.md").read_text()
    assert f"Too few coded examples to learn reliably: `{expected[0]}`" in card
