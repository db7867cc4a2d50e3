"""A model folder is data: JSON, YAML and arrays, loaded without running code (model.folder, classify.state,
model.convert, ``opm-nlp model convert``), and ``train --out`` replaces nothing but an earlier model."""

import io
import json
import re
import shutil
import sys
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from opm_nlp.classify.estimator import EmbeddingClassifier
from opm_nlp.cli.main import cli
from opm_nlp.exceptions import ModelError, OpmNlpError
from opm_nlp.model.arrays import read_arrays, write_arrays
from opm_nlp.model.coding_model import CodingModel
from opm_nlp.model.folder import MODEL_FILES, read_model_info, sha256

from .conftest import CODEBOOK, CODED, NEW_WAVE, ROOT

COLS = ["--text-col", "answer", "--id-col", "response_id"]
NEW = ["I will set goals with my mentee each term.", "Clarify expectations early. Then write an IDP together.",
       "nothing changed"]


class Payload:
    """What a hostile pickle holds: unpickling it creates the file ``marker``."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    return result.output


def rehash(folder: Path) -> None:
    """Record the folder's files' current hashes in its metadata, as someone editing both would."""
    meta = json.loads((folder / "metadata.json").read_text())
    meta["files"] = {name: sha256(folder / name) for name in meta["files"]}
    (folder / "metadata.json").write_text(json.dumps(meta))


@pytest.fixture()
def copy_of(trained_dir, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(trained_dir, target)
    return target


def test_saved_folder_holds_json_yaml_and_arrays_only(trained_dir):
    assert sorted(p.name for p in trained_dir.iterdir()) == ["README.md", "classifier.json", "classifier.npz",
                                                             "codebook.yaml", "metadata.json"]
    meta = json.loads((trained_dir / "metadata.json").read_text())
    assert meta["kind"] == "opm-nlp model" and meta["format_version"] == 2
    state = json.loads((trained_dir / "classifier.json").read_text())
    assert state["type"] == "embedding-classifier" and state["sentence_view"] is True
    assert {part["type"] for head in state["heads"] for key, part in head.items() if key != "code"} == {
        "logistic-regression"}
    with zipfile.ZipFile(trained_dir / "classifier.npz") as archive:
        assert all(name.endswith(".npy") for name in archive.namelist())
    assert all(array.dtype != object for array in np.load(trained_dir / "classifier.npz", allow_pickle=False).values())
    assert "runs no code" in (trained_dir / "README.md").read_text()


@pytest.mark.parametrize("beside", [False, True], ids=["as format 1", "beside format 2 files"])
def test_a_hostile_pickle_in_a_model_folder_runs_nothing(copy_of, tmp_path, beside):
    probe = tmp_path / "probe-ran"
    joblib.dump(Payload(probe), tmp_path / "probe.joblib")
    joblib.load(tmp_path / "probe.joblib")
    assert probe.exists(), "the payload is live: unpickling it does create its marker"
    marker = tmp_path / "payload-ran"
    joblib.dump(Payload(marker), copy_of / "classifier.joblib")
    meta = json.loads((copy_of / "metadata.json").read_text())
    if beside:
        meta["files"]["classifier.joblib"] = sha256(copy_of / "classifier.joblib")
    else:
        for name in ("classifier.json", "classifier.npz"):
            (copy_of / name).unlink()
        meta["format_version"] = 1
        meta["files"] = {name: sha256(copy_of / name) for name in ("classifier.joblib", "codebook.yaml")}
    (copy_of / "metadata.json").write_text(json.dumps(meta))

    with pytest.raises(ModelError, match=r"is a model folder of format 1, whose classifier is a pickle .*opm-nlp "
                                         r"model convert .* --trust-pickle$"):
        CodingModel.load(copy_of)
    with pytest.raises(ModelError, match="format 1"):
        read_model_info(copy_of)
    tagged = tmp_path / "t.csv"
    for args in (["tag", copy_of, NEW_WAVE, *COLS, "--out", tagged, "--quiet"],
                 ["tag", copy_of, NEW_WAVE, *COLS, "--out", tagged, "--quiet", "--resume"],
                 ["evaluate", copy_of, "--data", CODED, *COLS, "--quiet"],
                 ["model", "convert", copy_of, "--out", tmp_path / "converted"]):
        assert "Error: " in one_error_line(run(*args))
    assert not marker.exists(), "loading the folder ran the pickle's code"
    assert not tagged.exists() and not (tmp_path / "converted").exists()


def _edit_json(name, edit):
    def apply(folder: Path):
        value = json.loads((folder / name).read_text())
        edit(value)
        (folder / name).write_text(json.dumps(value))
    return apply


def _edit_arrays(edit):
    def apply(folder: Path):
        arrays = read_arrays(folder / "classifier.npz")
        edit(arrays)
        write_arrays(folder / "classifier.npz", arrays)
    return apply


def _write_text(name, text):
    return lambda folder: (folder / name).write_text(text)


EDITS = {
    "a part of an unknown type": (_edit_json("classifier.json", lambda s: s["heads"][0]["stacker"].update(
        type="posix.system")), r"heads\.0\.stacker: type 'posix\.system', expected 'logistic-regression'"),
    "a key missing": (_edit_json("classifier.json", lambda s: s.pop("heads")), r"'heads' is missing"),
    "a parameter of the wrong type": (_edit_json("classifier.json", lambda s: s["params"].update(cv="5")),
                                      r"'cv' is str, expected int"),
    "a parameter scikit-learn refuses": (_edit_json("classifier.json", lambda s: s["heads"][0]["lexical"]["params"]
                                                    .update(C=-1.0)), r"heads\.0\.lexical: The 'C' parameter"),
    "a vectorizer that reads files": (_edit_json("classifier.json", lambda s: s["vectorizers"][0]["params"].update(
        input="filename")), r"vectorizers\.0: parameter 'input' must be 'content'"),
    "a parameter value of unknown form": (_edit_json("classifier.json", lambda s: s["vectorizers"][0]["params"].update(
        dtype={"type": "callable", "name": "os.system"})), r"a parameter value of unknown form"),
    "n-gram sizes scikit-learn takes unchecked": (_edit_json("classifier.json", lambda s: s["vectorizers"][1]["params"]
                                                             .update(ngram_range={"type": "tuple", "items": []})),
                                                  r"vectorizers\.1: 'ngram_range' must be two whole numbers"),
    "a dtype that is not a float": (_edit_json("classifier.json", lambda s: s["vectorizers"][0]["params"].update(
        dtype={"type": "tuple", "items": []})), r"vectorizers\.0: parameter 'dtype' must be"),
    "not a number": (_write_text("classifier.json", '{"type": "keyword-classifier", "n_codes": NaN}'),
                     r"classifier\.json: not valid JSON \(NaN is not a number a model holds\)"),
    "not an object": (_write_text("classifier.json", "[]"), r"expected an object, found list"),
    "an array of the wrong shape": (_edit_arrays(lambda a: a.update(thresholds=a["thresholds"][:3])),
                                    r"array 'thresholds' has shape \(3,\), expected \(12\)"),
    "a coefficient row too short": (_edit_arrays(lambda a: a.update({"heads.0.lexical.coef": a["heads.0.lexical.coef"][:, :5]})),
                                    r"array 'heads\.0\.lexical\.coef' has shape \(1, 5\)"),
    "an array of the wrong dtype": (_edit_arrays(lambda a: a.update(prior=a["prior"].astype("int64"))),
                                    r"array 'prior' has dtype int64, expected kind 'f'"),
    "values that are not finite": (_edit_arrays(lambda a: a["prior"].__setitem__(0, np.inf)),
                                   r"array 'prior' holds values that are not finite"),
    "an array more": (_edit_arrays(lambda a: a.update(extra=np.zeros(2))), r"unexpected arrays \['extra'\]"),
    "an array missing": (_edit_arrays(lambda a: a.pop("heads.3.second.coef")), r"array 'heads\.3\.second\.coef' is missing"),
    "classes other than 0 and 1": (_edit_arrays(lambda a: a.update({"heads.0.stacker.classes": np.array([0, 2])})),
                                   r"heads\.0\.stacker: classes \[0, 2\], expected \[0, 1\]"),
    "a classifier of another method": (_edit_json("metadata.json", lambda m: m.update(method="keyword")),
                                       r"holds a EmbeddingClassifier of 12 codes, which does not fit the folder's 'keyword' model"),
    "metadata of the wrong type": (_edit_json("metadata.json", lambda m: m.update(review_margin="wide")),
                                   r"metadata\.json: 'review_margin' is str"),
    "metadata without its method": (_edit_json("metadata.json", lambda m: m.pop("method")), r"'method' is missing"),
    "metadata layers of the wrong type": (_edit_json("metadata.json", lambda m: m["embedding"].update(layers=[3])),
                                          r"'embedding\.layers' is list"),
    "metadata not an object": (_write_text("metadata.json", "[1, 2]"), r"metadata\.json: expected a JSON object"),
}


@pytest.mark.parametrize("edit, message", list(EDITS.values()), ids=list(EDITS))
def test_an_edited_file_with_a_matching_hash_fails_in_one_line(copy_of, edit, message):
    edit(copy_of)
    if (copy_of / "metadata.json").read_text().startswith("{"):
        rehash(copy_of)
    with pytest.raises(ModelError, match=message) as caught:
        CodingModel.load(copy_of)
    assert "\n" not in str(caught.value)


def test_an_edited_file_fails_in_one_line_on_the_command_line(copy_of, tmp_path):
    EDITS["an array of the wrong shape"][0](copy_of)
    rehash(copy_of)
    line = one_error_line(run("tag", copy_of, NEW_WAVE, *COLS, "--out", tmp_path / "t.csv", "--quiet"))
    assert line == (f"Error: {copy_of / 'classifier.json'}: array 'thresholds' has shape (3,), expected (12); the "
                    f"classifier is damaged. Retrain the model, or restore its original files.\n")


@pytest.mark.parametrize("name", ["classifier.json", "classifier.npz", "codebook.yaml", "metadata.json"])
@pytest.mark.parametrize("hashed", [False, True], ids=["hash kept", "hash rewritten"])
def test_a_truncated_file_fails_in_one_line(copy_of, name, hashed):
    data = (copy_of / name).read_bytes()
    (copy_of / name).write_bytes(data[:len(data) // 2])
    if hashed and name != "metadata.json":
        rehash(copy_of)
    with pytest.raises(OpmNlpError) as caught:  # the codebook's own reader names its YAML line
        CodingModel.load(copy_of)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, ModelError) or name == "codebook.yaml"


def test_an_array_file_is_read_without_pickle_and_within_its_size(tmp_path):
    marker = tmp_path / "payload-ran"
    with zipfile.ZipFile(tmp_path / "objects.npz", "w") as archive, archive.open("thresholds.npy", "w") as handle:
        np.lib.format.write_array(handle, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(ModelError, match=r"'thresholds\.npy' is not a numeric array of the size it declares"):
        read_arrays(tmp_path / "objects.npz")
    assert not marker.exists()
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.zeros(4))
    claims_more = buffer.getvalue().replace(b"(4,), }" + b" " * 7, b"(99999999,), }")  # same header length
    with zipfile.ZipFile(tmp_path / "big.npz", "w") as archive:
        archive.writestr("a.npy", claims_more)
    with pytest.raises(ModelError, match=r"big\.npz: 'a\.npy' is not a numeric array of the size it declares"):
        read_arrays(tmp_path / "big.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ModelError, match=r"text\.npz: not a readable array file \(BadZipFile: "):
        read_arrays(tmp_path / "text.npz")


def test_save_and_load_give_bit_identical_scores_with_sentences_and_context(codebook, coded, tmp_path):
    frame = coded.head(80).assign(question=["q1", "q2"] * 40)
    model = CodingModel(codebook, sentences=True).fit(frame, "answer", context_col="question")
    assert model.classifier.sentence_view_ and model.classifier.uses_context_
    contexts = ["q1", "q2", "q3"]  # q3: a context never seen
    before = model.predict_proba(NEW, contexts)
    model.save(tmp_path / "a")
    loaded = CodingModel.load(tmp_path / "a")
    np.testing.assert_array_equal(loaded.predict_proba(NEW, contexts), before)
    assert loaded.context_col == "question"
    loaded.save(tmp_path / "b")  # the same classifier gives the same bytes
    for name in ("classifier.json", "classifier.npz"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_save_and_load_give_identical_scores_for_keywords(codebook, tmp_path):
    from dataclasses import replace

    codebook = replace(codebook, codes=(*codebook.codes[:-1], replace(codebook.codes[-1], keywords=())))
    model = CodingModel(codebook, method="keyword").fit(None)
    answers = pd.DataFrame({"id": ["1", "2"], "t": ["Revisit expectations with an IDP", "nothing"]})
    model.save(tmp_path / "kw")
    loaded = CodingModel.load(tmp_path / "kw")
    assert json.loads((tmp_path / "kw" / "classifier.json").read_text())["type"] == "keyword-classifier"
    np.testing.assert_array_equal(loaded.predict_proba(NEW), model.predict_proba(NEW))
    pd.testing.assert_frame_equal(loaded.tag(answers, "t", "id"), model.tag(answers, "t", "id"))


def test_a_fine_tuned_classifier_round_trips_bit_identical(tmp_path, monkeypatch):
    from opm_nlp.classify import finetune
    from opm_nlp.classify.state import classifier_from_state, classifier_state

    def one_network(texts, Y, folds, progress=False, **params):  # as cross-fitting gives it, from one network
        head = finetune.FineTunedHead(**params).fit(texts, Y)
        return head.decision_function(texts), head

    monkeypatch.setattr(finetune, "cross_fitted", one_network)

    texts = ["I will listen more carefully", "listen actively to my students", "more active listening",
             "be a better listener", "hear them out before answering", "listen without interrupting",
             "start using an IDP", "use individual development plans", "IDPs for everyone",
             "write a mentoring plan with each student", "a written development plan", "draft a mentoring compact"]
    clf = EmbeddingClassifier(cv=3, fine_tune=1).fit(texts, np.array([[1, 0]] * 6 + [[0, 1]] * 6))
    state, arrays = classifier_state(clf)
    (tmp_path / "state.json").write_text(json.dumps(state, allow_nan=False))
    write_arrays(tmp_path / "arrays.npz", arrays)
    back = classifier_from_state(json.loads((tmp_path / "state.json").read_text()), read_arrays(tmp_path / "arrays.npz"))
    assert state["fine_tuned"]["type"] == "fine-tuned-head"
    assert all(back.fine_tuned_.weights_[k].dtype == v.dtype for k, v in clf.fine_tuned_.weights_.items())
    assert back.fine_tuned_.weights_sha256 == clf.fine_tuned_.weights_sha256
    assert state["fine_tuned"]["params"]["quantize"] is True and back.fine_tuned_.quantize
    np.testing.assert_array_equal(back.predict_proba(NEW), clf.predict_proba(NEW))
    # a head saved before the int8 option records none: it scores through float32, as its stacker learned
    before = json.loads(json.dumps(state))
    del before["fine_tuned"]["params"]["quantize"]
    old = classifier_from_state(before, arrays)
    clf.fine_tuned_.quantize, clf.fine_tuned_._embedder = False, None
    assert not old.fine_tuned_.quantize
    np.testing.assert_array_equal(old.predict_proba(NEW), clf.predict_proba(NEW))
    assert not np.array_equal(old.predict_proba(NEW), back.predict_proba(NEW))
    # weights that do not fit the network they were fine-tuned from fail at loading, not at tagging
    name = state["fine_tuned"]["weights"][0]
    cut = {**arrays, f"fine_tuned.weights.{name}": arrays[f"fine_tuned.weights.{name}"][:10]}
    with pytest.raises(ModelError, match=rf"array 'fine_tuned\.weights\.{re.escape(name)}' has shape \(10, "):
        classifier_from_state(state, cut)
    renamed = json.loads(json.dumps(state))
    renamed["fine_tuned"]["weights"][0] = "extra.weight"
    moved = {("fine_tuned.weights.extra.weight" if k == f"fine_tuned.weights.{name}" else k): v for k, v in arrays.items()}
    with pytest.raises(ModelError, match=r"the weights do not fit the network 'all-MiniLM-L6-v2' \(unknown "
                                         r"\['extra\.weight'\], missing \["):
        classifier_from_state(renamed, moved)


@pytest.fixture()
def old_folder(copy_of, monkeypatch):
    """A folder of format 1, as opm-nlp wrote before: its classifier pickled, naming its module before the move."""
    import types

    classifier = CodingModel.load(copy_of).classifier
    alias = types.ModuleType("opm_nlp.classifier")
    alias.EmbeddingClassifier = EmbeddingClassifier
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "opm_nlp.classifier", alias)
        patch.setattr(EmbeddingClassifier, "__module__", "opm_nlp.classifier")
        joblib.dump(classifier, copy_of / "classifier.joblib")
    assert b"opm_nlp.classifier" in (copy_of / "classifier.joblib").read_bytes()
    for name in ("classifier.json", "classifier.npz"):
        (copy_of / name).unlink()
    meta = json.loads((copy_of / "metadata.json").read_text())
    del meta["kind"]
    meta["format_version"] = 1
    meta["files"] = {name: sha256(copy_of / name) for name in ("classifier.joblib", "codebook.yaml")}
    (copy_of / "metadata.json").write_text(json.dumps(meta))
    return copy_of


def test_an_old_folder_is_refused_with_the_way_to_convert_it(old_folder, tmp_path):
    line = one_error_line(run("tag", old_folder, NEW_WAVE, *COLS, "--out", tmp_path / "t.csv"))
    assert line == (f"Error: {old_folder} is a model folder of format 1, whose classifier is a pickle "
                    f"(classifier.joblib); opm-nlp does not load pickles, because loading one can run any code it "
                    f"holds. Retrain it (opm-nlp train ... --out {old_folder}), or, only if you trust where the folder "
                    f"came from, convert it: opm-nlp model convert {old_folder} --out NEW_FOLDER --trust-pickle\n")


def test_convert_needs_trust_pickle_and_gives_the_same_scores(old_folder, trained_dir, tmp_path):
    new = tmp_path / "new"
    line = one_error_line(run("model", "convert", old_folder, "--out", new))
    assert line.startswith(f"Error: Refusing to convert {old_folder} without --trust-pickle. Converting unpickles "
                           f"classifier.joblib, and a pickle runs any code it holds when it is loaded")
    assert not new.exists()
    assert "--out is the folder being converted" in one_error_line(
        run("model", "convert", old_folder, "--out", old_folder, "--trust-pickle"))
    result = run("model", "convert", old_folder, "--out", new, "--trust-pickle")
    assert result.exit_code == 0, result.output
    assert result.output == (f"Converted {old_folder} to {new}: a model folder of JSON, YAML and arrays, loaded "
                             f"without running code.\n")
    assert (old_folder / "classifier.joblib").is_file(), "the original folder is left as it is"
    assert "opm_nlp.classifier" not in sys.modules  # the old module path lives only while the pickle loads
    converted = CodingModel.load(new)
    assert converted.metadata["format_version"] == 2 and converted.metadata["converted"]["from_format_version"] == 1
    np.testing.assert_array_equal(converted.predict_proba(NEW), CodingModel.load(trained_dir).predict_proba(NEW))
    assert "nothing to convert" in one_error_line(run("model", "convert", new, "--out", tmp_path / "again",
                                                      "--trust-pickle"))


def test_the_shipped_model_is_data():
    folder = ROOT / "models" / "opm_default"
    assert not (folder / "classifier.joblib").exists()
    assert all((folder / name).stat().st_size < 5 * 2**20 for name in MODEL_FILES)
    model = CodingModel.load(folder)
    assert model.metadata["format_version"] == 2
    assert model.predict_proba(NEW).shape == (len(NEW), len(model.codebook))


# -- train --out replaces an earlier model and nothing else (issue 17, item 3) ---------------------------
def _train_keywords(out):
    return run("train", "--codebook", CODEBOOK, "--method", "keyword", "--out", out, "--quiet")


def test_train_refuses_an_out_folder_that_is_not_a_model(tmp_path, codebook):
    out = tmp_path / "p"
    out.mkdir()
    (out / "metadata.json").write_text("{}")
    (out / "notes.txt").write_text("notes")
    line = one_error_line(_train_keywords(out))
    assert line == (f"Error: {out} is not an opm-nlp model folder (metadata.json, notes.txt); writing the model "
                    f"there would delete them. Choose another --out, or move those files away.\n")
    assert (out / "notes.txt").read_text() == "notes"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelError, match=r"file exists and is not a folder; choose another --out"):
        CodingModel(codebook, method="keyword").fit(None).save(tmp_path / "file")


def test_train_replaces_a_model_folder_but_not_the_files_beside_it(tmp_path, codebook):
    out = tmp_path / "m"
    out.mkdir()  # an empty folder is fine
    assert _train_keywords(out).exit_code == 0
    assert _train_keywords(out).exit_code == 0  # and so is the model written there
    for name in "abcdef":
        (out / f"{name}.txt").write_text("mine")
    line = one_error_line(_train_keywords(out))
    assert line.startswith(f"Error: {out} holds files that are not the model's (a.txt, b.txt, c.txt, d.txt, e.txt "
                           f"and 1 more); writing the model there would delete them.")
    with pytest.raises(ModelError, match="holds files that are not the model's"):
        CodingModel(codebook, method="keyword").fit(None).save(out)
    assert all((out / f"{name}.txt").is_file() for name in "abcdef")


def test_train_replaces_a_folder_of_format_1(old_folder):
    result = _train_keywords(old_folder)
    assert result.exit_code == 0, result.output
    assert not (old_folder / "classifier.joblib").exists()
    assert CodingModel.load(old_folder).method == "keyword"
