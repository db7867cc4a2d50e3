import pandas as pd
import pytest

from opm_nlp.codebook.codes import parse_codebook
from opm_nlp.exceptions import DataError
from opm_nlp.io.tables import (
    combine_coded,
    read_coded,
    read_responses,
    read_table,
    write_table,
)

CB = parse_codebook("""
name: t
codes:
  - {id: goal_setting, label: Goals, definition: d}
  - {id: structure, label: Structure and organisation, definition: d}
""", source="cb.yaml")


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


def test_wide_long_and_delimited_give_the_same_table(write_csv):
    wide = read_coded(write_csv("w.csv", "id,answer,goal_setting,structure\n1,a,1,0\n2,b,1,1\n3,c,0,0\n"),
                      CB, "answer", "id")
    long = read_coded(write_csv("l.csv", "id,answer,code\n1,a,goal_setting\n2,b,goal_setting\n2,b,Structure and organisation\n3,c,\n"),
                      CB, "answer", "id")
    delimited = read_coded(write_csv("s.csv", 'id,answer,codes\n1,a,goal_setting\n2,b,"goal_setting; structure"\n3,c,\n'),
                           CB, "answer", "id")
    for frame in (long, delimited):
        pd.testing.assert_frame_equal(frame, wide)
    assert wide[["goal_setting", "structure"]].to_numpy().tolist() == [[1, 0], [1, 1], [0, 0]]


@pytest.mark.parametrize("text, message", [
    ("id,answer,goal_setting\n1,a,1\n", r"code column\(s\) \['structure'\] missing"),
    ("id,answer,goal_setting,structure\n1,a,2,0\n", r"column 'goal_setting', row 2: expected 0 or 1, found '2'"),
    ('id,answer,codes\n1,a,"goal_setting;mentoring"\n', r"column 'codes', row 2: unknown code 'mentoring'\. Codes in cb\.yaml: \['goal_setting', 'structure'\]"),
    ("id,answer,other\n1,a,1\n", r"no code columns found\. Expected one 0/1 column per code, named by its id"),
    ("id,answer,Goals\n1,a,1\n", r"code column\(s\) \['structure'\] missing\. A wide file needs one 0/1 column per "
                                  r"code in the codebook, named by its id or label"),
])
def test_bad_coded_files_are_clear_errors(write_csv, text, message):
    with pytest.raises(DataError, match=message):
        read_coded(write_csv("c.csv", text), CB, "answer", "id")


def test_code_columns_may_be_named_by_the_codes_labels(write_csv):
    path = write_csv("c.csv", "id,answer, structure  AND organisation,Goals,Note\n1,a,1,,x\n2,b,0,1,\n")
    coded = read_coded(path, CB, "answer", "id")
    assert coded[["goal_setting", "structure"]].to_numpy().tolist() == [[0, 1], [1, 0]]
    assert "Goals" not in coded.columns and coded["Note"].tolist() == ["x", ""]


def test_an_id_column_wins_over_a_label_column(write_csv):
    path = write_csv("c.csv", "id,answer,goal_setting,Goals,structure\n1,a,1,0,0\n")
    coded = read_coded(path, CB, "answer", "id")
    assert coded["goal_setting"].tolist() == [1]
    assert coded["Goals"].tolist() == ["0"]  # carried as an ordinary column


def test_later_file_overrides_earlier_labels_and_counts_changes():
    first = pd.DataFrame({"id": ["1", "2"], "answer": ["a", "b"], "goal_setting": [1, 0], "structure": [0, 0]})
    second = pd.DataFrame({"id": ["2", "3"], "answer": ["b", "c"], "goal_setting": [1, 0], "structure": [1, 1]})
    combined, changed = combine_coded([first, second], CB, "id")
    assert combined["id"].tolist() == ["1", "2", "3"]
    assert combined.set_index("id").loc["2", ["goal_setting", "structure"]].tolist() == [1, 1]
    assert changed == 2


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
