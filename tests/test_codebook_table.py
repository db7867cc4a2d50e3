"""Codebooks kept as spreadsheets: read one the way researchers write them, write one and read it back."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from opm_nlp import CodebookError, load_codebook
from opm_nlp.cli.main import cli
from opm_nlp.codebook.table import codebook_table, read_codebook_table, write_codebook_table

from .conftest import CODEBOOK


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def researchers_table() -> pd.DataFrame:
    """A codebook as a team keeps it in Excel: their own headers, an extra column, a blank row."""
    return pd.DataFrame({
        "Code Name": ["Goal setting", "SMART goals", None, "Communication", "Other"],
        "Description": ["The mentor sets goals with the mentee.", "Goals that are specific and timed.", None,
                        "Talking more, or more openly, with the mentee.", ""],
        "Parent": ["", "goal setting", None, "", ""],
        "Examples": ["We now set goals each term.\nI ask for a goal at every meeting.", "Deadlines for each aim",
                     None, "I listen more | I check in weekly", ""],
        "Keywords": ["goal; aim", "smart, deadline", None, "communicat\nlisten", ""],
        "Notes (internal)": ["from round 1", "", None, "", "catch-all"],
    })


def test_reads_a_researchers_table(tmp_path):
    path = tmp_path / "Our codebook.xlsx"
    researchers_table().to_excel(path, index=False)
    with pytest.warns(UserWarning) as caught:
        cb = read_codebook_table(path)
    assert cb.name == "Our codebook"
    assert cb.ids == ["goal_setting", "smart_goals", "communication", "other"]  # the blank row is not a code
    assert cb["smart_goals"].parent == "goal_setting"  # named by its label, any case
    assert cb["goal_setting"].examples == ("We now set goals each term.", "I ask for a goal at every meeting.")
    assert cb["communication"].examples == ("I listen more", "I check in weekly")
    assert cb["goal_setting"].keywords == ("goal", "aim")
    assert cb["smart_goals"].keywords == ("smart", "deadline")
    assert cb["communication"].keywords == ("communicat", "listen")
    assert cb["other"].definition == "(no definition in Our codebook.xlsx)"
    messages = [str(w.message) for w in caught]
    assert messages == [
        f"{path}: column(s) [Notes (internal)] are not codebook fields and were ignored. Fields: "
        f"['id', 'label', 'parent', 'definition', 'include', 'exclude', 'examples', 'keywords', 'color'].",
        f"{path}: 1 code(s) have no definition [other]; their definition is '(no definition in Our codebook.xlsx)'. "
        f"Write a definition for each before training or sharing the codebook.",
    ]


def test_ids_from_the_table_are_kept_and_made_ids_do_not_clash(tmp_path):
    path = tmp_path / "codes.csv"
    pd.DataFrame({"id": ["", "goal_setting", ""], "label": ["Goal setting", "Goals", "Goal-setting"],
                  "definition": ["a", "b", "c"]}).to_csv(path, index=False)
    cb = read_codebook_table(path, name="Mine")
    assert cb.ids == ["goal_setting_2", "goal_setting", "goal_setting_3"]
    assert cb.name == "Mine"


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_written_table_reads_back_to_the_same_codes(tmp_path, codebook, suffix):
    path = write_codebook_table(codebook, tmp_path / f"opm{suffix}")
    back = read_codebook_table(path, name=codebook.name)
    assert back.codes == codebook.codes
    if suffix == ".xlsx":  # the workbook also keeps the name, version and description
        assert read_codebook_table(path) == codebook
        assert read_codebook_table(path).fingerprint == codebook.fingerprint
    assert [p.name for p in tmp_path.iterdir()] == [f"opm{suffix}"]


def test_table_has_one_row_per_code_with_lists_one_per_line(codebook):
    table = codebook_table(codebook)
    assert list(table["id"]) == codebook.ids
    code = next(c for c in codebook.codes if len(c.examples) > 1)
    assert table.set_index("id").loc[code.id, "examples"].split("\n") == list(code.examples)


@pytest.mark.parametrize("frame, message", [
    (pd.DataFrame({"Code": ["x"]}).rename(columns={"Code": "Kode"}),
     r"no column of code names. Expected a 'label' \(or 'name'\) column, one code per row, and ideally "
     r"'definition'; found columns \['Kode'\]"),
    (pd.DataFrame({"label": ["A", None], "definition": ["a", "b"]}),
     r"codes.csv, row 3: the code has no 'label'; every code needs a name"),
    (pd.DataFrame({"ID": ["a", "1.2"], "label": ["A", "B"], "definition": ["a", "b"]}),
     r"codes.csv, row 3: code id '1.2' in column 'ID' is not snake_case .* Fix it, or delete the column to "
     r"have ids made from the labels"),
    (pd.DataFrame({"id": ["a", "a"], "label": ["A", "B"], "definition": ["a", "b"]}),
     r"codes.csv, code #2 \(row 3\): duplicate code id 'a' \(first defined at .*codes.csv, code #1 \(row 2\)\)"),
    (pd.DataFrame({"label": ["A", "B"], "definition": ["a", "b"], "parent": ["", "Nowhere"]}),
     r"codes.csv, code #2 \(row 3\): code 'b' has unknown parent 'Nowhere'"),
    (pd.DataFrame({"label": ["A", "B"], "definition": ["a", "b"], "colour": ["red", ""]}),
     r"codes.csv, code #1 \(row 2\) 'a': 'color' must look like '#1f77b4', found 'red'"),
    (pd.DataFrame({"label": [None, None], "definition": [None, None]}), r"the table has no codes"),
])
def test_bad_tables_name_the_row_and_the_fix(tmp_path, frame, message):
    path = tmp_path / "codes.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(CodebookError, match=message):
        read_codebook_table(path)


def test_cli_exports_and_imports_a_spreadsheet(tmp_path, codebook):
    xlsx = tmp_path / "opm.xlsx"
    result = run("codebook", "export", CODEBOOK, "--out", xlsx)  # the format follows the extension
    assert result.exit_code == 0, result.output
    assert result.output == f"Wrote 12 codes (2 levels) of 'OPM behaviour change' to {xlsx} (one row per code).\n"
    out = tmp_path / "back.yaml"
    result = run("codebook", "import", xlsx, "--out", out)
    assert result.exit_code == 0, result.output
    assert load_codebook(out) == codebook
    assert result.output == (f"Imported 12 codes from {xlsx} to {out}; fingerprint {codebook.fingerprint}. "
                             f"Check it with: opm-nlp codebook validate {out}\n")


def test_cli_imports_a_chosen_sheet(tmp_path):
    path = tmp_path / "project.xlsx"
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"answer": ["hi"]}).to_excel(writer, sheet_name="answers", index=False)
        pd.DataFrame({"name": ["Goals"], "description": ["Goal setting."]}).to_excel(writer, sheet_name="codes",
                                                                                    index=False)
    out = tmp_path / "cb.yaml"
    result = run("codebook", "import", path, "--sheet", "codes", "--out", out)
    assert result.exit_code == 0, result.output
    assert load_codebook(out).ids == ["goals"]
    result = run("codebook", "import", path, "--out", tmp_path / "other.yaml")  # the first sheet has no codes
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {path}: no column of code names.")
    assert not (tmp_path / "other.yaml").exists()


def test_cli_import_refuses_other_files_in_one_line(tmp_path):
    path = tmp_path / "codes.txt"
    path.write_text("label\nGoals\n")
    result = run("codebook", "import", path, "--out", tmp_path / "x.yaml")
    assert result.exit_code == 1
    assert result.output == (f"Error: {path}: expected a REFI-QDA codebook (.qdc) or a spreadsheet of codes "
                             f"(.xlsx, .xlsm, .csv, .tsv, .parquet), found '.txt'.\n")
    assert not (tmp_path / "x.yaml").exists()


@pytest.mark.parametrize("out, fmt, message", [
    ("opm.xlsx", "qdc", "--out {out} is a .xlsx file, but --format is qdc. Change the extension or --format."),
    ("opm.yaml", "csv", "--out {out}: a csv codebook is written to a .csv file, found '.yaml'. Rename the file."),
])
def test_cli_export_refuses_a_mismatched_extension(tmp_path, out, fmt, message):
    out = tmp_path / out
    result = run("codebook", "export", CODEBOOK, "--format", fmt, "--out", out)
    assert result.exit_code == 1
    assert result.output == f"Error: {message.format(out=out)}\n"
    assert not out.exists()
