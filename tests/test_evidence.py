"""Evidence: the sentence of each answer that carried each suggested code, as `tag` writes it."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from opm_nlp.classify.evidence import predict_with_evidence, sentence_argmax
from opm_nlp.cli.main import cli
from opm_nlp.columns import EVIDENCE_COL, EVIDENCE_SPANS_COL, NEEDS_REVIEW_COL, output_columns
from opm_nlp.io.responses import read_responses
from opm_nlp.io.spans import read_spans, utf16_offset
from opm_nlp.model.batch import tag_file
from opm_nlp.model.coding_model import CodingModel
from opm_nlp.model.options import TagOptions

from .conftest import NEW_WAVE, ROOT

DEFAULT = ROOT / "models" / "opm_default"
COLS = ("answer", "response_id")
# the second sentence carries the code; accents and emoji before it move code points and UTF-16 apart
ANSWERS = {
    "two": "The weather was nice today. I will write an IDP with each of my students.",
    "emoji": "  Café chats 😀 were lovely. I will set clear goals with each mentée 🎯.  ",
    "one": "I will set goals.",
    "empty": "",
}


@pytest.fixture(scope="module")
def default_model():
    return CodingModel.load(DEFAULT)


@pytest.fixture(scope="module")
def tagged(default_model):
    frame = pd.DataFrame({"response_id": list(ANSWERS), "answer": list(ANSWERS.values())})
    return default_model.tag(frame, "answer", "response_id").set_index("response_id")


def spans_of(row) -> dict:
    return read_spans(row[EVIDENCE_SPANS_COL], row["answer"])


def test_columns_follow_needs_review(tagged, default_model):
    columns = list(tagged.columns)
    assert columns[columns.index(NEEDS_REVIEW_COL) + 1:] == [EVIDENCE_COL, EVIDENCE_SPANS_COL]
    assert output_columns(default_model.codebook)[-2:] == [EVIDENCE_COL, EVIDENCE_SPANS_COL]


def test_the_second_sentence_carries_the_code(tagged):
    row = tagged.loc["two"]
    assert row["written_plans"] == 1
    start, end = spans_of(row)["written_plans"]
    assert row["answer"][start:end] == "I will write an IDP with each of my students."
    assert 'written_plans: "I will write an IDP with each of my students."' in row[EVIDENCE_COL]


def test_offsets_count_code_points_in_the_answer_as_written(tagged):
    row = tagged.loc["emoji"]
    assert row["answer"] == ANSWERS["emoji"]  # written as given, spaces around it kept
    assert row["goal_setting"] == 1
    start, end = spans_of(row)["goal_setting"]
    assert row["answer"][start:end] == "I will set clear goals with each mentée 🎯."
    assert (start, end) == (28, 70)
    # Label Studio counts UTF-16 units: each emoji is two of them
    assert (utf16_offset(row["answer"], start), utf16_offset(row["answer"], end)) == (29, 72)


def test_codes_in_codebook_order_and_only_suggested_ones(tagged, default_model):
    for rid, row in tagged.iterrows():
        suggested = [c for c in default_model.codebook.ids if row[c] == 1]
        assert list(spans_of(row)) == suggested, rid
        readable = [part.split(":")[0] for part in row[EVIDENCE_COL].split('"; ')] if suggested else []
        assert readable == suggested, rid


def test_one_sentence_is_its_own_evidence_and_nothing_suggested_gives_empty_cells(tagged):
    row = tagged.loc["one"]
    assert set(spans_of(row).values()) == {(0, len(ANSWERS["one"]))}
    empty = tagged.loc["empty"]
    assert (empty[EVIDENCE_COL], empty[EVIDENCE_SPANS_COL]) == ("", "")


def test_evidence_leaves_the_scores_as_they_were(default_model):
    texts = list(ANSWERS.values())[:3]
    scores, spans = predict_with_evidence(default_model.classifier, [t.strip() for t in texts])
    np.testing.assert_array_equal(scores, default_model.predict_proba([t.strip() for t in texts]))
    assert spans.shape == (3, len(default_model.codebook), 2)


def test_evidence_runs_the_encoder_no_more_than_scoring_does():
    texts = [t.strip() for t in list(ANSWERS.values())[:3]]
    scoring, evidence = (CodingModel.load(DEFAULT, cache=False) for _ in range(2))
    scoring.predict_proba(texts)
    predict_with_evidence(evidence.classifier, texts)
    assert evidence.embedder.encoded_count == scoring.embedder.encoded_count == len(texts)  # one pass per answer


def test_evidence_splits_the_answers_into_sentences_once(monkeypatch, default_model):
    from opm_nlp.embedding import segment

    texts, calls, split = [t.strip() for t in ANSWERS.values()], [], segment.sentence_spans
    monkeypatch.setattr(segment, "sentence_spans", lambda found: calls.append(list(found)) or split(found))
    _, spans = predict_with_evidence(default_model.classifier, texts)
    assert calls == [texts]  # the sentence view's split is the evidence's
    assert {tuple(span) for span in spans[0]} - {(0, len(texts[0]))}  # a sentence of it is evidence


def test_sentence_argmax_takes_the_first_best_sentence_of_each_answer():
    scores = np.array([0.1, 0.7, 0.3, 2.0, 2.0, -1.0])
    assert sentence_argmax(scores, np.array([0, 0, 0, 2, 2, 3]), 5).tolist() == [1, -1, 0, 0, -1]


def test_chunked_resumable_and_whole_tagging_give_the_same_evidence(tmp_path, trained_dir):
    whole = CodingModel.load(trained_dir).tag(read_responses(NEW_WAVE, *COLS), *COLS)
    assert whole[EVIDENCE_SPANS_COL].ne("").sum() > 100
    # the sentence view (one-pass, in this model) picks one sentence of some longer answers
    parts = [(start, end) != (0, len(text)) for text, cell in zip(whole["answer"].fillna(""), whole[EVIDENCE_SPANS_COL])
             for start, end in read_spans(cell, text).values()]
    assert 0 < sum(parts) < len(parts)
    out = tmp_path / "tagged.parquet"
    tag_file(trained_dir, NEW_WAVE, out, TagOptions(*COLS, chunk_size=17, progress=False))
    chunked = pd.read_parquet(out)
    assert chunked[EVIDENCE_COL].tolist() == whole[EVIDENCE_COL].tolist()
    assert chunked[EVIDENCE_SPANS_COL].tolist() == whole[EVIDENCE_SPANS_COL].tolist()
    for text, cell in zip(whole["answer"].fillna(""), whole[EVIDENCE_SPANS_COL]):
        for start, end in read_spans(cell, text).values():
            assert text[start:end].strip() == text[start:end] != ""


def test_keyword_model_quotes_the_first_sentence_with_the_keyword(codebook):
    model = CodingModel(codebook, method="keyword").fit(None, "answer")
    frame = pd.DataFrame({"response_id": ["a", "b"],
                          "answer": ["We met often. Goals came up. We wrote goals down.", "Set goals"]})
    tagged = model.tag(frame, *COLS).set_index("response_id")
    assert read_spans(tagged.loc["a", EVIDENCE_SPANS_COL], frame.answer[0]) == {"goal_setting": (14, 28)}
    assert tagged.loc["a", EVIDENCE_COL] == 'goal_setting: "Goals came up."'
    assert tagged.loc["b", EVIDENCE_COL] == 'goal_setting: "Set goals"'


def test_cli_tag_writes_evidence_that_matches_the_xlsx_answer(tmp_path):
    answers = pd.DataFrame({"response_id": ["1", "2"],
                            "answer": ["Bad\x07 bell. I will write an IDP with each of my students.", "Listen more."]})
    answers.to_csv(tmp_path / "in.csv", index=False)
    for suffix in (".csv", ".xlsx"):
        out = tmp_path / f"tagged{suffix}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the control character XLSX cannot hold
            result = CliRunner().invoke(cli, ["tag", str(DEFAULT), str(tmp_path / "in.csv"), "--text-col", "answer",
                                              "--id-col", "response_id", "--out", str(out), "--quiet"])
        assert result.exit_code == 0, result.output
        back = (pd.read_csv(out, dtype=str, keep_default_na=False) if suffix == ".csv"
                else pd.read_excel(out, dtype=str).fillna(""))
        assert list(back.columns[-3:]) == [NEEDS_REVIEW_COL, EVIDENCE_COL, EVIDENCE_SPANS_COL]
        text = back.loc[0, "answer"]
        assert ("\x07" in text) == (suffix == ".csv")
        start, end = read_spans(back.loc[0, EVIDENCE_SPANS_COL], text)["written_plans"]
        assert text[start:end] == "I will write an IDP with each of my students."


def test_spans_move_with_characters_taken_out_of_the_answer():
    import re

    from opm_nlp.io.spans import AROUND, spans_after_removal

    text = "  Bad\x07 bell. Set goals.  "
    assert spans_after_removal('{"a":[13,23]}', text, re.compile("\x07")) == '{"a":[12,22]}'
    moved = spans_after_removal('{"a":[[2,12],[13,23]]}', text, AROUND)
    assert moved == '{"a":[[0,10],[11,21]]}' and text.strip()[11:21] == "Set goals."
    assert spans_after_removal("not json", text, AROUND) == "not json"
    assert spans_after_removal("", text, AROUND) == ""


def test_cli_tag_writes_evidence_anew_over_a_bad_cell_but_refuses_bad_reviewed_spans(tmp_path):
    answers = pd.DataFrame({"response_id": ["1", "2"], "answer": ["I will set goals.", "Listen more."],
                            EVIDENCE_SPANS_COL: ['{"goal_setting":[0,999]}', ""], "reviewed_spans": ["", ""]})
    answers.to_csv(tmp_path / "in.csv", index=False)
    args = ["tag", str(DEFAULT), str(tmp_path / "in.csv"), "--text-col", "answer", "--id-col", "response_id",
            "--out", str(tmp_path / "tagged.csv"), "--quiet"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    back = pd.read_csv(tmp_path / "tagged.csv", dtype=str, keep_default_na=False)
    assert read_spans(back.loc[0, EVIDENCE_SPANS_COL], back.loc[0, "answer"])["goal_setting"] == (0, 17)
    answers.loc[1, "reviewed_spans"] = '{"goal_setting":[[0,99]]}'
    answers.to_csv(tmp_path / "in.csv", index=False)
    (tmp_path / "tagged.csv").unlink()
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert result.output.startswith(f"Error: {tmp_path / 'in.csv'}: column 'reviewed_spans', row 3 (response id '2')")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]
