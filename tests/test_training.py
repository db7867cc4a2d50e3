"""Training from coded files as a Python user does it: read_training_data, TrainOptions, train_model."""

import inspect

import pandas as pd
import pytest

from opm_nlp import CodingModel, TrainingData, TrainOptions, read_training_data, train_model
from opm_nlp.exceptions import DataError

from .conftest import CODED


@pytest.fixture()
def two_files(tmp_path, codebook):
    """A coded file and a later review file: 2 of its rows unreviewed (1 edited), 1 label changed."""
    first = pd.read_csv(CODED, dtype=str, keep_default_na=False).head(40)
    first.to_csv(tmp_path / "coded.csv", index=False)
    review = first.head(4).copy()
    review["suggested_codes"] = [", ".join(c for c in codebook.ids if row[c] == "1") for _, row in review.iterrows()]
    review["reviewed"] = ["1", "1", "0", ""]
    review.loc[review.index[0], "structure"] = "0" if review.iloc[0]["structure"] == "1" else "1"  # a changed label
    review.loc[review.index[2], "structure"] = "0" if review.iloc[2]["structure"] == "1" else "1"  # edited, unmarked
    review.to_csv(tmp_path / "review.csv", index=False)
    return tmp_path / "coded.csv", tmp_path / "review.csv"


def test_read_training_data_leaves_out_unreviewed_rows_and_later_files_win(two_files, codebook):
    coded, review = two_files
    data = read_training_data([coded, review], codebook, "answer", "response_id")
    assert data.sources == ("coded.csv", "review.csv")
    assert data.notes == (f"{review}: left out 2 answers not marked reviewed=1 (they hold model suggestions, not "
                          f"human codes); 1 of them have codes changed from the suggestion: mark them reviewed=1 if "
                          f"they are done.",)
    assert len(data.coded) == 40 and data.changed_labels == 1
    first = pd.read_csv(coded, dtype=str, keep_default_na=False)
    assert data.answers == int(first["answer"].str.strip().ne("").sum())
    # the later file's codes win for the two reviewed rows; the unreviewed ones keep the first file's
    row = data.coded.set_index("response_id").loc[first.loc[0, "response_id"]]
    assert str(row["structure"]) != first.loc[0, "structure"]


def test_read_training_data_without_files_is_the_codebook_alone(codebook):
    data = read_training_data([], codebook)
    assert isinstance(data, TrainingData) and data.coded is None and data.answers == 0 and data.sources == ()
    with pytest.raises(DataError, match=r"The text and id columns are needed"):
        read_training_data([CODED], codebook)


def test_train_model_follows_the_options(two_files, codebook):
    data = read_training_data(list(two_files), codebook, "answer", "response_id")
    model = train_model(codebook, data, TrainOptions(method="keyword", review_margin=0.3))
    meta = model.metadata
    assert (meta["method"], meta["review_margin"]) == ("keyword", 0.3)
    assert meta["training"]["sources"] == ["coded.csv", "review.csv"]
    assert meta["training"]["answers"] == data.answers
    bare = train_model(codebook, read_training_data([], codebook), TrainOptions(method="keyword"))
    assert bare.metadata["training"]["answers"] == 0 and bare.metadata["training"]["sources"] == []


def test_train_options_are_the_models_keyword_arguments_and_the_fit_context(codebook):
    parameters = set(inspect.signature(CodingModel).parameters) - {"codebook"}
    assert set(TrainOptions().model_kwargs()) == parameters
    options = TrainOptions(method="keyword", review_margin=0.4, codebook_examples=False, sentences=False,
                           backend="torch", cache=False, context_col="question")
    model = CodingModel.from_options(codebook, options)
    assert {name: getattr(model, name) for name in parameters} == options.model_kwargs()
    with pytest.raises(Exception, match="frozen|cannot assign"):
        options.method = "embedding"


def test_read_training_data_counts_what_later_files_add_and_recode(two_files, codebook, tmp_path):
    coded, review = two_files
    data = read_training_data([coded, review], codebook, "answer", "response_id")
    assert (data.added_answers, data.recoded_answers, data.changed_labels) == (0, 2, 1)
    pd.read_csv(CODED, dtype=str, keep_default_na=False).iloc[40:45].to_csv(tmp_path / "new.csv", index=False)
    data = read_training_data([coded, tmp_path / "new.csv", review], codebook, "answer", "response_id")
    assert (data.added_answers, data.recoded_answers, data.changed_labels, len(data.coded)) == (5, 2, 1, 45)


def test_read_training_data_refuses_files_without_coded_answers(two_files, codebook, tmp_path):
    unfilled = pd.read_csv(two_files[1], dtype=str, keep_default_na=False)
    unfilled["reviewed"] = "0"
    unfilled.to_csv(tmp_path / "unfilled.csv", index=False)
    with pytest.raises(DataError, match=r"^No coded answers to train on \(.*unfilled\.csv: none of its 4 rows is "
                                        r"marked reviewed=1\)\. Put 1 in 'reviewed'"):
        read_training_data([tmp_path / "unfilled.csv"], codebook, "answer", "response_id")
    # one file with answers is enough
    data = read_training_data([two_files[0], tmp_path / "unfilled.csv"], codebook, "answer", "response_id")
    assert data.answers > 0
