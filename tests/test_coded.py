"""Coded answers against a codebook (opm_nlp.codebook.coded): wide, long and delimited files, defaults."""

import pandas as pd
import pytest

from opm_nlp.codebook.coded import combine_coded, default_columns, read_coded
from opm_nlp.codebook.codes import parse_codebook
from opm_nlp.exceptions import DataError

CB = parse_codebook("""
name: t
codes:
  - {id: goal_setting, label: Goals, definition: d}
  - {id: structure, label: Structure and organisation, definition: d}
""", source="cb.yaml")


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
    ('id,answer,codes\n1,a,"goal_setting;mentoring"\n', r"c\.csv, column 'codes': unknown code 'mentoring' \(row 2\)\. Codes "
                                                       r"in cb\.yaml: \['goal_setting', 'structure'\]\. Fix the labels"),
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


def test_yes_no_true_false_x_and_empty_cells_read_as_0_and_1(write_csv):
    path = write_csv("c.csv", "id,answer,goal_setting,structure\n1,a,Yes,x\n2,b,false,\n3,c,1.0,N\n")
    coded = read_coded(path, CB, "answer", "id")
    assert coded[["goal_setting", "structure"]].to_numpy().tolist() == [[1, 1], [0, 0], [1, 0]]


def test_default_columns_are_the_first_two_but_never_a_code_or_score_column():
    frame = pd.DataFrame({"response_id": ["1"], "answer": ["a"], "site": ["x"], "goal_setting": [1],
                          "score_structure": [0.2]})
    assert default_columns(frame, CB, None, None) == ("answer", "response_id")
    assert default_columns(frame, CB, "answer", "site") == ("answer", "site")
    with pytest.raises(DataError, match=r"x\.csv: column 'goal_setting' holds codes or scores, so it cannot be the "
                                        r"answer column .* Pass --text-col\."):
        default_columns(frame[["response_id", "goal_setting", "answer"]], CB, None, None, source="x.csv")
    with pytest.raises(DataError, match=r"x\.csv: column 'score_structure' holds codes or scores, so it cannot be "
                                        r"the id column .* Pass --id-col\."):
        default_columns(frame, CB, None, "score_structure", source="x.csv")
    with pytest.raises(DataError, match=r"^x\.csv: expected at least an id and a text column, found \['answer'\]\. "
                                        r"Pass --id-col and --text-col\.$"):
        default_columns(frame[["answer"]], CB, None, None, source="x.csv")


def test_misspelt_code_columns_are_named_with_the_closest_code(write_csv):
    path = write_csv("c.csv", "id,answer,goal_seting,structure,notes\n1,a,1,0,x\n")
    with pytest.raises(DataError, match=r"^.*c\.csv: code column\(s\) \['goal_setting'\] missing\. Columns that look like "
                                        r"misspelt codes: 'goal_seting' \(did you mean 'goal_setting'\?\)\. A wide file"):
        read_coded(path, CB, "answer", "id")
    path = write_csv("d.csv", "id,answer,Goalz,Structure and organisaton\n1,a,1,0\n")
    with pytest.raises(DataError, match=r"d\.csv: no code columns found\. Columns that look like misspelt codes: 'Goalz' "
                                        r"\(did you mean 'Goals'\?\), 'Structure and organisaton' \(did you mean "
                                        r"'Structure and organisation'\?\)\. Expected"):
        read_coded(path, CB, "answer", "id")


@pytest.mark.parametrize("name, text, where", [
    ("s.csv", 'id,answer,codes\n1,a,"goal_seting;mentoring"\n2,b,goal_seting\n3,c,"structre; goal_seting"\n'
              '4,d,goal_seting\n5,e,"goal_seting|goal_seting"\n', "column 'codes'"),
    ("l.csv", "id,answer,code\n1,a,goal_seting\n1,a,mentoring\n2,b,goal_seting\n3,c,structre\n3,c,goal_seting\n"
              "4,d,goal_seting\n5,e,goal_seting\n", "column 'code'"),
])
def test_every_unknown_code_is_reported_at_once_with_its_rows_and_closest_code(write_csv, name, text, where):
    rows = "2, 3, 4 and 2 more" if name == "s.csv" else "2, 4, 6 and 2 more"
    mentoring, structre = ("2", "4") if name == "s.csv" else ("3", "5")
    with pytest.raises(DataError, match=(
            rf"{name[0]}\.csv, {where}: unknown codes 'goal_seting' \(rows {rows}; did you mean 'goal_setting'\?\), "
            rf"'mentoring' \(row {mentoring}\), 'structre' \(row {structre}; did you mean 'structure'\?\)\. "
            rf"Codes in cb\.yaml: \['goal_setting', 'structure'\]\. Fix the labels or add the codes to the codebook\.$")):
        read_coded(write_csv(name, text), CB, "answer", "id")
