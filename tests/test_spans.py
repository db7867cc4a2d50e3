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
