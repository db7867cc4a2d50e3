"""Property-based tests of the table readers and writers (opm_nlp.io): what is written is read back.

For any table of text — any Unicode, control characters, text that starts like a formula or with
``'``, empty cells — and numbers, ``write_table`` then ``read_table`` (or ``iter_chunks``) gives
back the same table, in every format, up to these rules:

- a missing cell and an empty text are the same (``""`` from CSV, missing from XLSX);
- XLSX cannot hold the control characters U+0000-U+0008, U+000B, U+000C, U+000E-U+001F, U+FFFE and
  U+FFFF: they are removed on writing, with a warning; everything else (tab, line breaks, leading and
  trailing spaces) comes back as written;
- CSV holds text, so numbers come back as their text (``-1.5``), and XLSX and Parquet as numbers;
- (not generated here, every row has a number:) XLSX does not store a last row whose cells are all empty.

And no cell or column name of a CSV file starts like a formula, and no XLSX cell is a formula. Files
from elsewhere are read as they are, except that a CSV cell loses one leading ``'`` before ``=``,
``+``, ``-``, ``@``, tab, carriage return or ``'`` (the rule of :mod:`opm_nlp.io.formulas`).
"""

from __future__ import annotations

import csv
import re
import warnings

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opm_nlp.io.formulas import FORMULA_PREFIXES, escape_formula, unescape_formula
from opm_nlp.io.tables import iter_chunks, read_table, write_table

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
FORMATS = [".csv", ".tsv", ".xlsx", ".parquet"]

characters = st.characters(blacklist_categories=("Cs",))  # lone surrogates are not text any file can hold
starts = st.sampled_from(["=", "+", "-", "@", "\t", "\r", "\n", "'", "''", "'=", "'-", " ", '"', ",", "-1", "+1e3"])
texts = st.one_of(
    st.text(characters, max_size=12),
    st.builds(lambda start, rest: start + rest, starts, st.text(characters, max_size=8)),
    st.sampled_from(["", "-3", "+1.5", "1e-3", "=1+1", "@SUM(A1)", "'", "x\ry", "a\r\nb", "  padded  "]),
)
cells = st.one_of(texts, st.none())
names = st.one_of(
    st.text(characters, min_size=1, max_size=8),
    st.builds(lambda start, rest: start + rest, starts, st.text(characters, max_size=4)),
)


@st.composite
def tables(draw):
    """A DataFrame of 1-3 text columns (unique, non-empty names) and a numeric column, 1-6 rows."""
    rows = draw(st.integers(1, 6))
    columns = draw(st.lists(names, min_size=1, max_size=3, unique_by=lambda n: _name(n, ".xlsx")))
    columns = [c for c in columns if _name(c, ".xlsx").strip() and c != "score"]
    frame = pd.DataFrame({c: draw(st.lists(cells, min_size=rows, max_size=rows)) for c in columns}, dtype=object)
    frame["score"] = draw(st.lists(st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: round(f, 3)),
                                   min_size=rows, max_size=rows))
    return frame


def _name(name: str, suffix: str) -> str:
    return NOT_IN_XML.sub("", name) if suffix == ".xlsx" else name


def _text(value: object, suffix: str) -> str:
    """A text cell as it must come back: missing and empty alike; XLSX without the characters it cannot hold."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return NOT_IN_XML.sub("", value) if suffix == ".xlsx" else value


def _assert_same(back: pd.DataFrame, frame: pd.DataFrame, suffix: str) -> None:
    assert list(back.columns) == [_name(c, suffix) for c in frame.columns]
    assert len(back) == len(frame)
    for written, read in zip(frame.columns, back.columns):
        if written == "score":
            assert [float(v) for v in back[read]] == frame[written].tolist()
        else:
            assert [_text(v, suffix) for v in back[read]] == [_text(v, suffix) for v in frame[written]]


@SETTINGS
@given(frame=tables(), suffix=st.sampled_from(FORMATS))
def test_written_tables_read_back_as_written(tmp_path_factory, frame, suffix):
    path = tmp_path_factory.mktemp("t") / f"t{suffix}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the XLSX warning for removed characters is tested in test_io
        write_table(frame, path)
    _assert_same(read_table(path), frame, suffix)
    chunks = list(iter_chunks(path, chunk_size=2))
    assert [len(c) for c in chunks] == [min(2, len(frame) - i) for i in range(0, len(frame), 2)]
    _assert_same(pd.concat(chunks, ignore_index=True), frame, suffix)


@SETTINGS
@given(frame=tables(), suffix=st.sampled_from([".csv", ".xlsx"]))
def test_no_output_cell_runs_as_a_formula(tmp_path_factory, frame, suffix):
    path = tmp_path_factory.mktemp("f") / f"f{suffix}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_table(frame, path)
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        for row in rows:
            for cell in row:
                assert not cell.startswith(FORMULA_PREFIXES) or re.fullmatch(r"[+-][0-9.e+-]+", cell), cell
        assert [float(v) for v in [r[-1] for r in rows[1:]]] == frame["score"].tolist()  # numbers stay numbers
    else:
        from openpyxl import load_workbook

        sheet = load_workbook(path).active
        assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
        assert all(cell.data_type == "n" for (cell,) in sheet.iter_rows(min_row=2, min_col=sheet.max_column))


@settings(max_examples=200, deadline=None)
@given(text=texts)
def test_escaping_is_undone_by_unescaping(text):
    escaped = escape_formula(text)
    assert unescape_formula(escaped) == text
    assert escaped == text or escaped == "'" + text
    assert not escaped.startswith(FORMULA_PREFIXES) or re.fullmatch(r"[+-][0-9.eE+-]+", escaped)


@pytest.mark.parametrize("text", ["'quoted'", "'", "it's", "'5", "'x=1"])
def test_a_leading_quote_not_before_a_prefix_is_kept_as_written(text):
    assert escape_formula(text) == text and unescape_formula(text) == text


@SETTINGS
@given(rows=st.lists(st.lists(texts, min_size=2, max_size=2), min_size=1, max_size=5),
       suffix=st.sampled_from([".csv", ".xlsx", ".parquet"]))
def test_files_from_elsewhere_are_read_as_they_are(tmp_path_factory, rows, suffix):
    path = tmp_path_factory.mktemp("e") / f"e{suffix}"
    header = ["id", "answer"]
    rows = [[str(i), NOT_IN_XML.sub("", answer) if suffix == ".xlsx" else answer] for i, (_, answer) in enumerate(rows)]
    if suffix == ".csv":
        with open(path, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([header, *rows])  # Python's own CSV dialect, no escaping
        expected = [unescape_formula(answer) for _, answer in rows]
    elif suffix == ".xlsx":
        from openpyxl import Workbook

        book = Workbook()
        for row in [header, *rows]:
            book.active.append(row)
        for (cell,) in book.active.iter_rows(min_col=2, max_col=2):
            cell.data_type = "s"  # text as text, as a spreadsheet stores what a person types after '
        book.save(path)
        expected = [answer for _, answer in rows]
    else:
        pd.DataFrame(rows, columns=header).to_parquet(path, index=False)
        expected = [answer for _, answer in rows]
    back = read_table(path)
    assert [_text(v, suffix) for v in back["answer"]] == [_text(v, suffix) for v in expected]
    assert pd.concat(list(iter_chunks(path, 2)))["answer"].map(lambda v: _text(v, suffix)).tolist() == \
        [_text(v, suffix) for v in expected]
