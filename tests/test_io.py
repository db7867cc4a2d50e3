"""Reading and writing tables (opm_nlp.io): encodings, formats, answers files, atomic outputs."""

import pandas as pd
import pytest

from opm_nlp.exceptions import DataError
from opm_nlp.io.responses import read_responses
from opm_nlp.io.tables import read_table, write_table


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


def test_empty_answers_are_kept_and_ids_keep_leading_zeros(write_csv):
    frame = read_responses(write_csv("e.csv", "id,answer\n007,\n008,  hi \n"), "answer", "id")
    assert frame["id"].tolist() == ["007", "008"]
    assert frame["answer"].tolist() == ["", "hi"]


@pytest.mark.parametrize("text, message", [
    ("id,answer\n1,a\n1,b\n", r"d\.csv: response id '1' appears more than once \(rows \[2, 3\]\)\. Ids in 'id' must be unique"),
    ("id,answer\n1,a\n,b\n", r"d\.csv: column 'id' is empty in row 3; every response needs an id"),
    ("rid,answer\n1,a\n", r"Column 'id' not found in .*d\.csv\. Columns: \['rid', 'answer'\]\. Pass --id-col"),
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


def test_write_table_is_atomic_and_leaves_no_temp_files(tmp_path):
    class Boom(Exception):
        pass

    path = tmp_path / "out.csv"
    write_table(pd.DataFrame({"a": [1]}), path)
    bad = pd.DataFrame({"a": [1]})
    bad.to_csv = lambda *a, **k: (_ for _ in ()).throw(Boom())  # fail mid-write
    with pytest.raises(Boom):
        write_table(bad, path)
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
