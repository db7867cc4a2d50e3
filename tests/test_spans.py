"""Spans cells (evidence_spans, reviewed_spans): code points in the table, UTF-16 units for programs that count them."""

import pytest

from opm_nlp.io.spans import code_point_offset, format_spans, read_spans, utf16_offset

TEXT = "Café 😀 great. Staff 👍 were kind."


def test_utf16_offsets_count_an_emoji_twice_and_an_accent_once():
    staff = TEXT.index("Staff")
    assert utf16_offset(TEXT, staff) == staff + 1  # one emoji before it
    assert utf16_offset(TEXT, len(TEXT)) == len(TEXT) + 2
    assert utf16_offset(TEXT, 4) == 4  # "é" is one unit
    for i in range(len(TEXT) + 1):
        assert code_point_offset(TEXT, utf16_offset(TEXT, i)) == i


def test_spans_round_trip_flat_and_nested():
    cell = format_spans({"staff": (TEXT.index("Staff"), len(TEXT)), "food": (0, 4)})
    assert cell == '{"staff":[14,32],"food":[0,4]}'
    assert read_spans(cell, TEXT) == {"staff": (14, 32), "food": (0, 4)}
    nested = format_spans({"staff": [(0, 4), (14, 19)]})
    assert read_spans(nested, TEXT, nested=True) == {"staff": [(0, 4), (14, 19)]}
    assert format_spans({}) == "" and read_spans("", TEXT) == {} and read_spans(float("nan"), TEXT) == {}


@pytest.mark.parametrize("cell, message", [
    ("{not json", "expected JSON"),
    ("[1, 2]", "JSON object of code ids"),
    ('{"a": [3, 99]}', "outside the answer's 32 characters"),
    ('{"a": [4, 2]}', "outside"),
    ('{"a": "0-4"}', r"expected \[start, end\]"),
])
def test_bad_spans_cells_say_what_was_expected(cell, message):
    with pytest.raises(ValueError, match=message):
        read_spans(cell, TEXT)


# -- checked where answers are read (opm_nlp.io.responses.check_responses) ------------------------------
def answers_with(**spans) -> "pd.DataFrame":
    import pandas as pd

    return pd.DataFrame({"response_id": ["r1", "r2", "r3"], "answer": ["Listen more.", " " + TEXT, ""], **spans})


def test_spans_that_fit_pass_and_empty_cells_are_allowed():
    from opm_nlp.io.responses import check_responses

    frame = answers_with(evidence_spans=['{"a":[0,12]}', '{"staff":[15,33]}', ""],
                         reviewed_spans=["", '{"staff":[[1,5],[15,33]]}', None])
    checked = check_responses(frame, "answer", "response_id", source="t.csv")
    assert checked["evidence_spans"].tolist() == ['{"a":[0,12]}', '{"staff":[14,32]}', ""]  # moved as stripped
    assert read_spans(checked.loc[1, "reviewed_spans"], checked.loc[1, "answer"], nested=True) == {
        "staff": [(0, 4), (14, 32)]}


@pytest.mark.parametrize("column, cells, message", [
    ("evidence_spans", ["", '{"a":[0,999]}', ""],
     "t.csv: column 'evidence_spans', row 3 (response id 'r2'): code 'a': span [0, 999] lies outside the answer's "
     "33 characters (expected 0 <= start <= end <= 33). Tag the answers again with opm-nlp tag, or clear the cell."),
    ("evidence_spans", ['{"a":[[0,3]]}', "{oops", '{"a":[0,1]}'],  # the third: an empty answer has no characters
     "t.csv: column 'evidence_spans', row 2 (response id 'r1') and 2 more: code 'a': expected [start, end] (two "
     "whole numbers), found [[0, 3]]. Tag the answers again with opm-nlp tag, or clear the cell."),
    ("reviewed_spans", ["", "", '{"a":[[0,1]]}'],
     "t.csv: column 'reviewed_spans', row 4 (response id 'r3'): code 'a': span [0, 1] lies outside the answer's 0 "
     "characters (expected 0 <= start <= end <= 0). Pull the review again with opm-nlp review pull, or clear the "
     "cell."),
    ("reviewed_spans", ['{"a":[0,3]}', "", ""],
     "t.csv: column 'reviewed_spans', row 2 (response id 'r1'): code 'a': expected [start, end] (two whole "
     "numbers), found 0. Pull the review again with opm-nlp review pull, or clear the cell."),
])
def test_a_spans_cell_that_does_not_fit_its_answer_is_one_error(column, cells, message):
    from opm_nlp.exceptions import DataError
    from opm_nlp.io.responses import check_responses

    with pytest.raises(DataError) as caught:
        check_responses(answers_with(**{column: cells}), "answer", "response_id", source="t.csv")
    assert str(caught.value) == message


def test_rows_of_a_chunk_are_numbered_as_in_the_file_and_tagging_leaves_evidence_alone():
    from opm_nlp.exceptions import DataError
    from opm_nlp.io.responses import check_responses

    frame = answers_with(evidence_spans=["", '{"a":[0,999]}', ""])
    with pytest.raises(DataError, match=r"column 'evidence_spans', row 103 \(response id 'r2'\)"):
        check_responses(frame, "answer", "response_id", source="t.csv", first_row=100)
    checked = check_responses(frame, "answer", "response_id", spans=("reviewed_spans",))
    assert checked["evidence_spans"].tolist() == ["", '{"a":[0,998]}', ""]  # unchecked, moved as stripped
