"""Reading and writing tables (opm_nlp.io): encodings, formats, answers files, atomic outputs."""

from pathlib import Path

import pandas as pd
import pytest

from opm_nlp.exceptions import DataError
from opm_nlp.io.responses import read_responses
from opm_nlp.io.tables import iter_chunks, read_table, write_table


def test_reads_utf8_bom_and_cp1252_csv(write_csv):
    text = "id,answer\n1,café naïve – “quoted”\n"
    for encoding in ("utf-8", "utf-8-sig", "cp1252"):
        frame = read_responses(write_csv(f"{encoding}.csv", text, encoding), "answer", "id")
        assert frame.loc[0, "answer"] == "café naïve – “quoted”"
        assert list(frame.columns) == ["id", "answer"]


def test_explicit_wrong_encoding_is_a_clear_error(write_csv):
    path = write_csv("w.csv", "id,answer\n1,café\n", "cp1252")
    with pytest.raises(DataError, match=r"w\.csv: not valid utf-8 text\. Check the file's encoding"):
        read_table(path, encoding="utf-8")


def test_xlsx_and_parquet_read_like_csv(tmp_path):
    frame = pd.DataFrame({"id": ["a", "b"], "answer": ["x", None], "wave": [1, 2]})
    for name in ("t.xlsx", "t.parquet"):
        write_table(frame, tmp_path / name)
        back = read_responses(tmp_path / name, "answer", "id")
        assert back["answer"].tolist() == ["x", ""]
        assert back["wave"].tolist() == [1, 2]


def test_xlsx_text_that_pandas_would_take_for_missing_is_read_as_text(tmp_path):
    frame = pd.DataFrame({"id": ["NA", "null", "c"], "answer": ["N/A", "None", None]})
    path = write_table(frame, tmp_path / "na.xlsx")
    assert read_responses(path, "answer", "id")["answer"].tolist() == ["N/A", "None", ""]
    assert read_table(path)["id"].tolist() == ["NA", "null", "c"]
    chunked = pd.concat(list(iter_chunks(path, 2)), ignore_index=True)  # as tagging reads it
    assert chunked["answer"].tolist()[:2] == ["N/A", "None"]


def test_empty_answers_are_kept_and_ids_keep_leading_zeros(write_csv):
    frame = read_responses(write_csv("e.csv", "id,answer\n007,\n008,  hi \n"), "answer", "id")
    assert frame["id"].tolist() == ["007", "008"]
    assert frame["answer"].tolist() == ["", "hi"]


@pytest.mark.parametrize("text, message", [
    ("id,answer\n1,a\n1,b\n", r"d\.csv: response id '1' appears more than once \(rows \[2, 3\]\)\. Ids in 'id' must be unique"),
    ("id,answer\n1,a\n,b\n", r"d\.csv: column 'id' is empty in row 3; every response needs an id"),
    ("rid,answer\n1,a\n", r"Column 'id' not found in .*d\.csv\. Columns: \['rid', 'answer'\]\. Did you mean 'rid'\? "
                          r"Pass --id-col"),
    ("id,text\n1,a\n", r"Column 'answer' not found in .*d\.csv\. Columns: \['id', 'text'\]\. Pass --text-col"),
    ("", r"d\.csv: the file is empty"),
])
def test_bad_answer_files_are_clear_errors(write_csv, text, message):
    with pytest.raises(DataError, match=message):
        read_responses(write_csv("d.csv", text), "answer", "id")


def test_unsupported_and_missing_files(tmp_path):
    with pytest.raises(DataError, match=r"unsupported file type '\.docx'\. Use \.csv, \.tsv, \.xlsx or \.parquet"):
        read_table(tmp_path / "a.docx")
    with pytest.raises(DataError, match=r"File not found: .*b\.csv"):
        read_table(tmp_path / "b.csv")


def test_write_table_is_atomic_and_leaves_no_temp_files(tmp_path, monkeypatch):
    class Boom(Exception):
        pass

    path = tmp_path / "out.csv"
    write_table(pd.DataFrame({"a": [1]}), path)

    def fail(frame, target, **kwargs):  # write part of the file, then fail
        Path(target).write_text("a\n2\n")
        raise Boom()

    monkeypatch.setattr(pd.DataFrame, "to_csv", fail)
    with pytest.raises(Boom):
        write_table(pd.DataFrame({"a": [2]}), path)
    monkeypatch.undo()
    assert pd.read_csv(path)["a"].tolist() == [1]
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_xlsx_output_never_stores_formulas(tmp_path):
    from openpyxl import load_workbook

    path = write_table(pd.DataFrame({"answer": ["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "ok"]}),
                       tmp_path / "f.xlsx")
    sheet = load_workbook(path).active
    cells = [sheet.cell(row=r, column=1) for r in range(2, 7)]
    assert all(cell.data_type == "s" for cell in cells)
    assert [cell.value for cell in cells][:2] == ['=HYPERLINK("http://x")', "+1"]


HOSTILE = ['=HYPERLINK("http://evil.example","click")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3", "\t=1+1",
           "\r=1+1", "'=already quoted", "'quoted'", "''", "-3", "plain"]


def hostile_frame() -> pd.DataFrame:
    return pd.DataFrame({"id": [f"r{i}" for i in range(len(HOSTILE))], "answer": HOSTILE, "=1+1": HOSTILE[::-1],
                         "-x": [-1.5 * i for i in range(len(HOSTILE))]})


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".xlsx", ".parquet"])
def test_formula_like_text_is_inert_in_every_format_and_reads_back(tmp_path, suffix):
    frame = hostile_frame()
    path = write_table(frame, tmp_path / f"h{suffix}")
    back = read_table(path)
    assert list(back.columns) == ["id", "answer", "=1+1", "-x"]
    assert back["answer"].tolist() == HOSTILE and back["=1+1"].tolist() == HOSTILE[::-1]
    assert [float(v) for v in back["-x"]] == frame["-x"].tolist()
    assert pd.concat(list(iter_chunks(path, 4)), ignore_index=True)["answer"].tolist() == HOSTILE


def test_csv_cells_and_headers_that_start_like_formulas_get_a_quote(tmp_path):
    import csv

    path = write_table(hostile_frame(), tmp_path / "h.csv")
    with open(path, newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    assert header == ["id", "answer", "'=1+1", "'-x"]
    assert [row[1] for row in rows] == [
        '\'=HYPERLINK("http://evil.example","click")', "'+cmd|' /C calc'!A0", "'@SUM(1+1)", "'-2+3", "'\t=1+1",
        "'\r=1+1", "''=already quoted", "'quoted'", "'''", "-3", "plain"]
    assert rows[2][3] == "-3.0"  # a negative number is a number, not a formula


def test_xlsx_cells_and_headers_are_never_formulas(tmp_path):
    from openpyxl import load_workbook

    sheet = load_workbook(write_table(hostile_frame(), tmp_path / "h.xlsx")).active
    cells = [cell for row in sheet.iter_rows() for cell in row]
    assert not [cell.coordinate for cell in cells if cell.data_type == "f"]
    assert sheet["C1"].value == "=1+1" and sheet["C1"].data_type == "s" and sheet["C1"].quotePrefix
    assert sheet["B2"].value == HOSTILE[0] and sheet["B2"].quotePrefix
    assert sheet["D3"].value == -1.5 and sheet["D3"].data_type == "n"


def test_xlsx_drops_control_characters_it_cannot_hold_with_a_warning(tmp_path):
    frame = pd.DataFrame({"id": ["1", "2", "3"], "answer": ["bell\x07 here", "tab\tand\r\nbreaks", "nul\x00"]})
    with pytest.warns(UserWarning, match=r"Sheet 'data': removed control characters that XLSX cannot hold "
                                         r"\(U\+0000-U\+001F other than tab, line feed and carriage return\) from 2 "
                                         r"cell\(s\) of column\(s\) \['answer'\]\. Write \.csv or \.parquet to keep them\."):
        path = write_table(frame, tmp_path / "c.xlsx")
    assert read_table(path)["answer"].tolist() == ["bell here", "tab\tand\r\nbreaks", "nul"]
    assert read_table(write_table(frame, tmp_path / "c.csv"))["answer"].tolist() == frame["answer"].tolist()


@pytest.mark.parametrize("answer", ["line\rbreak", "two\r\nlines", "new\nline", "\r", "a\r\rb\n"])
def test_line_breaks_in_csv_cells_stay_in_their_row(tmp_path, answer):
    frame = pd.DataFrame({"id": ["1", "2", "3"], "answer": ["before", answer, "after"], "wave": ["x\ry", "2", "3"],
                          "code": [0, 1, 0]})
    path = write_table(frame, tmp_path / "cr.csv")
    for back in (read_table(path), pd.concat(list(iter_chunks(path, 2)), ignore_index=True)):
        assert back["answer"].tolist() == frame["answer"].tolist()
        assert back["wave"].tolist() == ["x\ry", "2", "3"] and back["code"].tolist() == ["0", "1", "0"]


@pytest.mark.parametrize("name, data, message", [
    ("bad.xlsx", b"PK\x03\x04 not really a zip", r"bad\.xlsx: not a readable XLSX file \(File is not a zip file\)\. "
                                                r"Open it in Excel and save it again as an Excel Workbook \(\.xlsx\), "
                                                r"or export it again\.$"),
    ("bad.xlsx", b"", r"bad\.xlsx: not a readable XLSX file \(File is not a zip file\)\."),
    ("bad.parquet", b"PAR1 truncated", r"bad\.parquet: not a readable Parquet file \(.*\)\. Export it again "
                                       r"\(e\.g\. with pandas' DataFrame\.to_parquet\), or save the table as CSV\.$"),
])
def test_damaged_xlsx_and_parquet_files_are_one_line(tmp_path, name, data, message):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(DataError, match=message):
        read_table(path)
    with pytest.raises(DataError, match=message):
        list(iter_chunks(path, 10))


def test_an_xlsx_zip_without_a_workbook_is_one_line(tmp_path):
    import zipfile

    path = tmp_path / "empty.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    for read in (read_table, lambda p: list(iter_chunks(p, 10))):
        with pytest.raises(DataError, match=r"empty\.xlsx: not a readable XLSX file \(.+\)\. Open it in Excel"):
            read(path)


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".parquet"])
def test_a_file_with_only_a_header_has_no_answers_in_every_format(tmp_path, suffix):
    path = write_table(pd.DataFrame({"id": pd.Series([], dtype=str), "answer": pd.Series([], dtype=str)}),
                       tmp_path / f"h{suffix}")
    assert list(read_table(path).columns) == ["id", "answer"] and read_table(path).empty
    assert list(iter_chunks(path, 10)) == []
    with pytest.raises(DataError, match=rf"h\{suffix}: no answers found \(only a header\?\); expected one row per "
                                        r"response\.$"):
        read_responses(path, "answer", "id")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8-sig"])
def test_utf16_and_utf32_with_a_byte_order_mark_are_detected(tmp_path, encoding):
    import codecs

    from opm_nlp.io.formats import detect_encoding

    text = "id,answer\n1,café “quoted” 😀\n2,naïve\n"
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}.get(encoding, b"")
    path = tmp_path / "u.csv"
    path.write_bytes(bom + text.encode(encoding))
    assert read_table(path)["answer"].tolist() == ["café “quoted” 😀", "naïve"]
    assert list(read_table(path).columns) == ["id", "answer"]
    assert pd.concat(list(iter_chunks(path, 1)))["answer"].tolist() == ["café “quoted” 😀", "naïve"]
    assert detect_encoding(path) in ("utf-16", "utf-32", "utf-8-sig")


def test_binary_parquet_columns_are_read_as_text_or_refused(tmp_path):
    path = tmp_path / "b.parquet"
    pd.DataFrame({"id": ["1", "2"], "answer": ["café".encode(), None]}).to_parquet(path, index=False)
    assert read_table(path)["answer"].tolist()[0] == "café"
    assert pd.isna(read_table(path)["answer"].tolist()[1])
    assert read_responses(path, "answer", "id")["answer"].tolist() == ["café", ""]
    assert pd.concat(list(iter_chunks(path, 1)))["answer"].tolist()[0] == "café"
    pd.DataFrame({"id": ["1", "2"], "answer": [b"ok", b"\xff\xfe\x00"]}).to_parquet(path, index=False)
    message = (r"b\.parquet: column 'answer' holds binary data that is not UTF-8 text\. Store it as text \(a string "
               r"column\) when writing the Parquet file, or leave the column out\.$")
    with pytest.raises(DataError, match=message):
        read_table(path)
    with pytest.raises(DataError, match=message):
        list(iter_chunks(path, 1))


@pytest.mark.parametrize("column, suggestion", [
    ("Answer", " Did you mean 'answer'?"), ("anwser", " Did you mean 'answer'?"), ("RESPONSE_ID", " Did you mean "
                                                                                    "'response_id'?"),
    ("comments", ""),
])
def test_a_missing_column_names_the_closest_one(tmp_path, column, suggestion):
    path = write_table(pd.DataFrame({"response_id": ["1"], "answer": ["a"], "notes": ["x"]}), tmp_path / "x.csv")
    message = (f"Column '{column}' not found in {path}. Columns: ['response_id', 'answer', 'notes'].{suggestion} "
               f"Pass --text-col with the column that holds the answers.")
    with pytest.raises(DataError) as error:
        read_responses(path, column, "response_id")
    assert str(error.value) == message


def test_a_missing_sheet_lists_the_sheets(tmp_path):
    path = write_table(pd.DataFrame({"a": [1]}), tmp_path / "s.xlsx")
    with pytest.raises(DataError, match=r"s\.xlsx: no sheet 'codes'; the file has sheets \['data'\]\. Pass one of them to --sheet\."):
        read_table(path, sheet="codes")
