"""Every file the commands write keeps hostile text inert and reads back; bad input files are one line.

Hostile text: answers, carried columns, column names and codebook fields that a spreadsheet would run
as a formula, a leading ``'``, a bare carriage return. Bad input: damaged XLSX/Parquet files, a file
with only a header, a misspelt column name.
"""

from __future__ import annotations

import csv
import re

import pandas as pd
import pytest
from click.testing import CliRunner

from opm_nlp.cli.main import cli
from opm_nlp.io.formulas import FORMULA_PREFIXES
from opm_nlp.io.tables import read_table, write_table

from .conftest import CODEBOOK, NEW_WAVE

COLS = ["--text-col", "answer", "--id-col", "response_id"]
HOSTILE = ['=HYPERLINK("http://evil.example","click")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3",
           "'=already quoted", "'quoted'", "line\rbreak", "-3"]
CARRIED = "=1+1"  # a carried column's name


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def keyword_model(tmp_path_factory):
    """A model from the codebook's keywords: trains in seconds and needs no embedding network."""
    out = tmp_path_factory.mktemp("kw") / "model"
    result = run("train", "--codebook", CODEBOOK, "--method", "keyword", "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def hostile_csv(tmp_path_factory):
    frame = pd.read_csv(NEW_WAVE, dtype=str, keep_default_na=False).head(20)
    frame.loc[: len(HOSTILE) - 1, "answer"] = HOSTILE
    frame.loc[0, "institution"] = "carried\rvalue"
    frame.loc[frame["role"].eq("Faculty"), "role"] = "=Faculty"  # a group: in report headers
    frame = frame.rename(columns={"role": CARRIED})
    return write_table(frame, tmp_path_factory.mktemp("in") / "hostile.csv")


def assert_inert(path):
    """No cell or column name of ``path`` (CSV or XLSX) would run as a formula in a spreadsheet."""
    if path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as handle:
            cells = [cell for row in csv.reader(handle) for cell in row]
        assert cells
        assert not [c for c in cells if c.startswith(FORMULA_PREFIXES) and not re.fullmatch(r"-[0-9.e-]+", c)]
    else:
        from openpyxl import load_workbook

        book = load_workbook(path)
        assert not [(sheet.title, cell.coordinate) for sheet in book.worksheets for row in sheet.iter_rows()
                    for cell in row if cell.data_type == "f"]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".parquet"])
def test_tag_output_keeps_hostile_text_inert_and_reads_back(tmp_path, keyword_model, hostile_csv, suffix):
    out = tmp_path / f"tagged{suffix}"
    result = run("tag", keyword_model, hostile_csv, *COLS, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    if suffix != ".parquet":
        assert_inert(out)
    back = read_table(out)
    assert back["answer"].tolist()[: len(HOSTILE)] == HOSTILE
    assert CARRIED in back.columns and back["institution"].tolist()[0] == "carried\rvalue"
    assert len(back) == 20


@pytest.fixture(scope="module")
def tagged_csv(tmp_path_factory, keyword_model, hostile_csv):
    out = tmp_path_factory.mktemp("tagged") / "tagged.csv"
    assert run("tag", keyword_model, hostile_csv, *COLS, "--out", out, "--quiet").exit_code == 0
    return out


def test_review_sheet_from_a_tagged_csv_with_line_breaks_and_formulas(tmp_path, keyword_model, tagged_csv):
    out = tmp_path / "review.xlsx"
    result = run("review", "sheet", tagged_csv, "--out", out, "--model", keyword_model)
    assert result.exit_code == 0, result.output
    assert_inert(out)
    sheet = read_table(out)
    assert set(HOSTILE) <= set(sheet["answer"]) and CARRIED in sheet.columns
    assert "carried\rvalue" in set(sheet["institution"])


def test_report_files_keep_hostile_text_inert(tmp_path, tagged_csv):
    out = tmp_path / "report"
    result = run("report", tagged_csv, "--codebook", CODEBOOK, "--out", out, "--by", CARRIED, "--quotes", "5")
    assert result.exit_code == 0, result.output
    assert_inert(out / "report.xlsx")
    assert_inert(out / "theme_frequencies.csv")
    from openpyxl import load_workbook

    book = load_workbook(out / "report.xlsx")
    assert f"by_{CARRIED}" in book.sheetnames
    headers = [cell.value for cell in next(book[f"by_{CARRIED}"].iter_rows(max_row=1))]
    assert "=Faculty: respondents" in headers
    assert read_table(out / "theme_frequencies.csv")["code"].tolist()[0] == "aligning_expectations"


def test_codebook_export_keeps_hostile_fields_inert_and_imports_back(tmp_path):
    from opm_nlp import load_codebook

    source = tmp_path / "hostile.yaml"
    source.write_text("name: '=1+1'\nversion: '-1'\ncodes:\n"
                      "  - id: formula_label\n    label: '=HYPERLINK(\"http://evil.example\",\"click\")'\n"
                      "    definition: '@SUM(1+1)'\n    examples: ['-2+3', \"'=quoted\", \"+cmd|' /C calc'!A0\"]\n"
                      "  - id: plain\n    label: '-minus'\n    definition: \"'quoted definition\"\n", encoding="utf-8")
    original = load_codebook(source)
    for suffix in (".csv", ".xlsx"):
        exported = tmp_path / f"codes{suffix}"
        assert run("codebook", "export", source, "--out", exported).exit_code == 0
        assert_inert(exported)
        back = tmp_path / f"back{suffix}.yaml"
        result = run("codebook", "import", exported, "--out", back)
        assert result.exit_code == 0, result.output
        assert [(c.id, c.label, c.definition, c.examples) for c in load_codebook(back).codes] == \
            [(c.id, c.label, c.definition, c.examples) for c in original.codes]


@pytest.mark.parametrize("name, data, kind, fix", [
    ("wave.xlsx", b"PK\x03\x04 damaged", "XLSX file (File is not a zip file)",
     "Open it in Excel and save it again as an Excel Workbook (.xlsx), or export it again."),
    ("wave.parquet", b"PAR1 damaged", "Parquet file ({reason})",
     "Export it again (e.g. with pandas' DataFrame.to_parquet), or save the table as CSV."),
])
def test_damaged_input_is_one_line_and_tag_leaves_nothing_behind(tmp_path, keyword_model, name, data, kind, fix):
    path = tmp_path / name
    path.write_bytes(data)
    for command in (["tag", keyword_model, path, *COLS, "--out", tmp_path / "tagged.csv", "--quiet"],
                    ["report", path, "--codebook", CODEBOOK, "--out", tmp_path / "report"],
                    ["review", "sheet", path, "--out", tmp_path / "review.xlsx", "--model", keyword_model]):
        result = run(*command)
        assert result.exit_code == 1
        line = re.escape(f"Error: {path}: not a readable {kind}. {fix}\n").replace(re.escape("{reason}"), "[^\n]+")
        assert re.fullmatch(line, result.output), result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no .partial folder, no output


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".parquet"])
def test_tag_refuses_a_file_with_only_a_header_in_every_format(tmp_path, keyword_model, suffix):
    path = write_table(pd.DataFrame({"response_id": pd.Series([], dtype=str), "answer": pd.Series([], dtype=str)}),
                       tmp_path / f"empty{suffix}")
    result = run("tag", keyword_model, path, *COLS, "--out", tmp_path / "tagged.csv", "--quiet")
    assert result.exit_code == 1
    assert result.output == f"Error: {path}: no answers found (only a header?); nothing to tag.\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_tag_says_which_column_was_meant(tmp_path, keyword_model):
    result = run("tag", keyword_model, NEW_WAVE, "--text-col", "Answer", "--id-col", "response_id",
                 "--out", tmp_path / "tagged.csv")
    assert result.exit_code == 1
    assert result.output == (f"Error: Column 'Answer' not found in {NEW_WAVE}. Columns: ['response_id', 'answer', "
                             f"'wave', 'institution', 'role']. Did you mean 'answer'? Pass --text-col with the "
                             f"column that holds the answers.\n")


def test_tag_reads_a_utf16_csv(tmp_path, keyword_model):
    path = tmp_path / "unicode.csv"
    text = pd.read_csv(NEW_WAVE, dtype=str).head(5).to_csv(index=False).replace("Clarify", "Clarifié")
    path.write_bytes(text.encode("utf-16"))
    out = tmp_path / "tagged.csv"
    result = run("tag", keyword_model, path, *COLS, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    assert read_table(out)["answer"].tolist()[0].startswith("Clarifié expectations")
