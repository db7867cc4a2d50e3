"""REFI-QDA projects (.qdpx) out (opm_nlp.exchange.qdpx).

Generated XML is validated against the standard's XSD shipped in opm_nlp/schemas (Project.xsd as
published by REFI), and its structure is checked explicitly as well.
"""

from __future__ import annotations

import json
import uuid
import zipfile

import pandas as pd
import pytest
from click.testing import CliRunner
from lxml import etree

from opm_nlp import DataError
from opm_nlp.cli.main import cli
from opm_nlp.codebook.qdc import GUID_NAMESPACE, code_guid, schema_errors
from opm_nlp.exchange.qdpx import (
    HUMAN_USER,
    MODEL_USER,
    NEEDS_REVIEW_SET,
    PROJECT_NS,
    build_project,
    object_guid,
    read_project_input,
    write_qdpx,
)

from .conftest import CODEBOOK, CODED

P = f"{{{PROJECT_NS}}}"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


# -- project export -------------------------------------------------------------------------------
def test_code_guids_are_uuid5_of_the_code_id_in_the_opm_nlp_namespace():
    assert GUID_NAMESPACE == uuid.uuid5(uuid.NAMESPACE_URL, "urn:opm-nlp:refi-qda")
    assert code_guid("structure") == str(uuid.uuid5(GUID_NAMESPACE, "structure"))
    assert object_guid("source", "R0001") == str(uuid.uuid5(GUID_NAMESPACE, "source:R0001"))
    assert code_guid("structure") != object_guid("source", "structure")


def tagged_table(codebook) -> pd.DataFrame:
    """Four answers as 'opm-nlp tag' writes them, after a person reviewed the first two."""
    rows = [
        ("W1", "Clarify expectations with new students.", "2022", "Lakeshore University", "Faculty", 1,
         ["aligning_expectations", "change_intended"], 0),
        ("W2", "Listen more. Interrupt less.", "2022", "Prairie Medical College", "Postdoc", 1,
         ["active_communication"], 0),
        ("W3", "Écouter davantage — et réfléchir 🙂", "2023", "", "Faculty", 0,
         ["active_communication", "self_reflection"], 1),
        ("W4", "", "2023", "Lakeshore University", "Faculty", 0, [], 1),
    ]
    records = []
    for response_id, answer, wave, institution, role, reviewed, codes, review in rows:
        record = {"response_id": response_id, "answer": answer, "wave": wave, "institution": institution,
                  "role": role}
        record.update({c: int(c in codes) for c in codebook.ids})
        record.update({f"score_{c}": 0.9 if c in codes else 0.1 for c in codebook.ids})
        record.update({"suggested_codes": "; ".join(codes), "uncertain_codes": "", "needs_review": review,
                       "reviewed": reviewed})
        records.append(record)
    return pd.DataFrame(records)


def read_qdpx(path):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        return archive.read("project.qde"), {n: archive.read(n).decode("utf-8") for n in names if n != "project.qde"}


def test_qdpx_is_valid_and_has_sources_cases_and_codings_by_user(tmp_path, codebook):
    table = tagged_table(codebook)
    summary = write_qdpx(table, codebook, tmp_path / "wave.qdpx", "answer", "response_id", source="tagged.csv")
    assert (summary.sources, summary.empty, summary.human_codings, summary.model_codings) == (4, 1, 3, 2)
    assert summary.variables == ["wave", "institution", "role"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wave.qdpx"]

    qde, files = read_qdpx(tmp_path / "wave.qdpx")
    assert schema_errors(qde, "project") == []
    root = etree.fromstring(qde)
    assert root.tag == f"{P}Project" and root.get("name") == codebook.name

    users = {u.get("name"): u.get("guid") for u in root.find(f"{P}Users")}
    assert users == {HUMAN_USER: object_guid("user", HUMAN_USER), MODEL_USER: object_guid("user", MODEL_USER)}
    code_guids = {c.get("guid"): c for c in root.find(f"{P}CodeBook").iter(f"{P}Code")}
    assert set(code_guids) == {code_guid(c) for c in codebook.ids}
    assert code_guids[code_guid("relationship_phases")].getparent().get("guid") == code_guid("relationship_attention")

    # one text source per answer, its file in sources/ holding the answer
    sources = root.find(f"{P}Sources").findall(f"{P}TextSource")
    assert [s.get("name") for s in sources] == table["response_id"].tolist()
    assert len(files) == len(sources)
    for source, answer in zip(sources, table["answer"]):
        assert source.get("guid") == object_guid("source", source.get("name"))
        assert source.get("plainTextPath") == f"internal://{source.get('guid')}.txt"
        assert files[f"sources/{source.get('guid')}.txt"] == answer
        for selection in source.findall(f"{P}PlainTextSelection"):
            assert (selection.get("startPosition"), selection.get("endPosition")) == ("0", str(len(answer)))

    # codings: human where reviewed, the model's otherwise
    user_name = {guid: name for name, guid in users.items()}
    name_of = {code_guid(c): c for c in codebook.ids}
    found = set()
    for source in sources:
        for coding in source.iter(f"{P}Coding"):
            assert coding.getparent().get("creatingUser") == coding.get("creatingUser")
            found.add((source.get("name"), name_of[coding.find(f"{P}CodeRef").get("targetGUID")],
                       user_name[coding.get("creatingUser")]))
    assert found == {("W1", "aligning_expectations", HUMAN_USER), ("W1", "change_intended", HUMAN_USER),
                     ("W2", "active_communication", HUMAN_USER), ("W3", "active_communication", MODEL_USER),
                     ("W3", "self_reflection", MODEL_USER)}

    # one case per respondent with the attributes as variables, pointing at its source
    variables = {v.get("name"): (v.get("guid"), v.get("typeOfVariable")) for v in root.find(f"{P}Variables")}
    assert variables == {"wave": (object_guid("variable", "wave"), "Integer"),
                         "institution": (object_guid("variable", "institution"), "Text"),
                         "role": (object_guid("variable", "role"), "Text")}
    by_guid = {guid: name for name, (guid, _) in variables.items()}
    cases = root.find(f"{P}Cases").findall(f"{P}Case")
    assert [c.get("name") for c in cases] == table["response_id"].tolist()
    for case, source in zip(cases, sources):
        assert case.find(f"{P}SourceRef").get("targetGUID") == source.get("guid")
    values = {by_guid[v.find(f"{P}VariableRef").get("targetGUID")]: v[1].text for v in cases[2].findall(f"{P}VariableValue")}
    assert values == {"wave": "2023", "role": "Faculty"}  # the empty institution is left out
    assert cases[0].find(f"{P}VariableValue/{P}IntegerValue").text == "2022"

    review_set = root.find(f"{P}Sets/{P}Set")
    assert review_set.get("name") == NEEDS_REVIEW_SET
    assert [m.get("targetGUID") for m in review_set.findall(f"{P}MemberSource")] == [
        object_guid("source", "W3"), object_guid("source", "W4")]


def test_suggestions_are_coded_over_their_evidence_and_people_over_their_spans(tmp_path, codebook):
    table = tagged_table(codebook)
    w2, w3 = table.loc[1, "answer"], table.loc[2, "answer"]
    # W2 (a person's code): "Listen more." marked; W3 (the model's): each code over its own sentence-like part
    table["reviewed_spans"] = ["", '{"active_communication":[[0,12]]}', "", ""]
    table["evidence_spans"] = ["", "", '{"active_communication":[0,19],"self_reflection":[20,34]}', ""]
    table["evidence"] = ["", "", 'active_communication: "Écouter davantage"', ""]
    table.loc[2, "answer"] = "  " + w3  # spaces around an answer are stripped, and its spans follow
    table.loc[2, "evidence_spans"] = '{"active_communication":[2,21],"self_reflection":[22,36]}'
    table.to_csv(tmp_path / "tagged.csv", index=False)
    frame, text_col, id_col = read_project_input(tmp_path / "tagged.csv", codebook)
    summary = write_qdpx(frame, codebook, tmp_path / "wave.qdpx", text_col, id_col)
    assert summary.variables == ["wave", "institution", "role"]  # the evidence columns are no attributes
    qde, files = read_qdpx(tmp_path / "wave.qdpx")
    assert schema_errors(qde, "project") == []
    name_of = {code_guid(c): c for c in codebook.ids}
    coded = {}
    for source in etree.fromstring(qde).iter(f"{P}TextSource"):
        text = files[f"sources/{source.get('guid')}.txt"]
        for selection in source.findall(f"{P}PlainTextSelection"):
            start, end = int(selection.get("startPosition")), int(selection.get("endPosition"))
            for ref in selection.iter(f"{P}CodeRef"):
                coded[(source.get("name"), name_of[ref.get("targetGUID")])] = text[start:end]
    assert coded == {("W1", "aligning_expectations"): table.loc[0, "answer"],  # no spans: the whole answer
                     ("W1", "change_intended"): table.loc[0, "answer"],
                     ("W2", "active_communication"): "Listen more.",
                     ("W3", "active_communication"): "Écouter davantage —",
                     ("W3", "self_reflection"): "et réfléchir 🙂"}
    assert w2 and w3[20:34] == "et réfléchir 🙂"


def test_qdpx_is_the_same_file_on_every_export(tmp_path, codebook):
    table = tagged_table(codebook)
    write_qdpx(table, codebook, tmp_path / "a.qdpx", "answer", "response_id")
    write_qdpx(table, codebook, tmp_path / "b.qdpx", "answer", "response_id")
    assert (tmp_path / "a.qdpx").read_bytes() == (tmp_path / "b.qdpx").read_bytes()


def test_coded_data_without_scores_is_all_human(codebook):
    coded = pd.read_csv(CODED, dtype=str, keep_default_na=False).head(20)
    qde, files, summary = build_project(coded, codebook, "answer", "response_id")
    assert summary.model_codings == 0
    assert summary.human_codings == int(coded[codebook.ids].astype(int).to_numpy().sum())
    assert schema_errors(qde, "project") == []


def test_tagged_without_review_is_all_model_suggestions(codebook):
    table = tagged_table(codebook).drop(columns=["reviewed"])
    _, _, summary = build_project(table, codebook, "answer", "response_id")
    assert (summary.human_codings, summary.model_codings) == (0, 5)


def test_text_that_xml_cannot_carry_is_dropped_from_names_and_values(codebook):
    table = tagged_table(codebook)
    table.loc[0, "institution"] = "Lake\x0bshore"
    qde, _, _ = build_project(table, codebook, "answer", "response_id")
    assert schema_errors(qde, "project") == [] and b"Lakeshore" in qde


def test_codes_on_empty_answers_are_reported(codebook):
    table = tagged_table(codebook)
    table.loc[3, "no_change"] = 1
    with pytest.warns(UserWarning, match=r"^t\.csv: 1 code\(s\) on empty answers left out"):
        build_project(table, codebook, "answer", "response_id", source="t.csv")


@pytest.mark.parametrize("change, error, message", [
    (lambda t: t.drop(columns=["structure", "other"]), DataError,
     r"^t\.csv: code column\(s\) \[structure, other\] missing\. A project export needs one 0/1 column per code "
     r"id of .*opm_behavior_change\.yaml, as in a table from 'opm-nlp tag'; tag the answers first, or use the "
     r"codebook the table was tagged with\.$"),
    (lambda t: t[["response_id", "answer", "wave"]], DataError, r"^t\.csv: no code columns\."),
    (lambda t: t.assign(response_id=["W1", "W1", "W3", "W4"]), DataError,
     r"^t\.csv: response id 'W1' appears more than once \(rows \[2, 3\]\)"),
    (lambda t: t.assign(structure=["1", "yes please", "0", "0"]), DataError,
     r"^t\.csv: column 'structure', row 3: expected 0 or 1, found 'yes please'\.$"),
    (lambda t: t.rename(columns={"answer": "text"}), DataError, r"^Column 'answer' not found in t\.csv\."),
])
def test_qdpx_errors(tmp_path, codebook, change, error, message):
    with pytest.raises(error, match=message):
        write_qdpx(change(tagged_table(codebook)), codebook, tmp_path / "x.qdpx", "answer", "response_id",
                   source="t.csv")
    assert not list(tmp_path.iterdir())


def test_project_input_defaults_to_the_first_two_columns_but_never_a_code_column(tmp_path, codebook):
    table = tagged_table(codebook)
    path = tmp_path / "tagged.csv"
    table.to_csv(path, index=False)
    frame, text_col, id_col = read_project_input(path, codebook)
    assert (text_col, id_col) == ("answer", "response_id") and len(frame) == 4
    assert read_project_input(path, codebook, text_col="answer", id_col="wave")[1:] == ("answer", "wave")
    moved = tmp_path / "moved.csv"
    table[["structure", *(c for c in table.columns if c != "structure")]].to_csv(moved, index=False)
    with pytest.raises(DataError, match=r"moved\.csv: column 'structure' holds codes or scores, so it cannot be "
                                        r"the id column .* Pass --id-col\.$"):
        read_project_input(moved, codebook)
    single = tmp_path / "one.csv"
    single.write_text("answer\nx\n")
    with pytest.raises(DataError, match=r"one\.csv: expected at least an id and a text column, found \['answer'\]\. "
                                        r"Pass --id-col and --text-col\.$"):
        read_project_input(single, codebook)


# -- command line ---------------------------------------------------------------------------------
def test_cli_export_qdpx(tmp_path, codebook):
    tagged = tmp_path / "tagged.csv"
    tagged_table(codebook).to_csv(tagged, index=False)
    out = tmp_path / "wave.qdpx"
    result = run("export", "qdpx", tagged, "--codebook", CODEBOOK, "--out", out)  # id and text: first columns
    assert result.exit_code == 0, result.output
    assert result.output == (f"Wrote {out}: 4 answers from 'answer' as sources and cases (1 empty), 3 case variables "
                             f"(wave, institution, role), 3 codings by 'human coder' and 2 by "
                             f"'opm-nlp model suggestions'.\n")
    qde, files = read_qdpx(out)
    assert schema_errors(qde, "project") == [] and len(files) == 4


@pytest.mark.parametrize("column, row, size, good, fix", [
    ("evidence_spans", 2, 34, '{"active_communication":[0,19]}', "Tag the answers again with opm-nlp tag"),
    ("reviewed_spans", 1, 28, '{"active_communication":[[0,12]]}', "Pull the review again with opm-nlp review pull"),
])
def test_cli_export_qdpx_refuses_a_spans_cell_that_does_not_fit_its_answer(tmp_path, codebook, column, row, size, good,
                                                                            fix):
    table = tagged_table(codebook)  # W2 (row 3 of the file) reviewed, W3 (row 4) the model's
    table[column] = ""
    table.loc[row, column] = good.replace("19]", "999]").replace("12]", "999]")
    tagged, out = tmp_path / "tagged.csv", tmp_path / "wave.qdpx"
    table.to_csv(tagged, index=False)
    result = run("export", "qdpx", tagged, "--codebook", CODEBOOK, "--out", out)
    assert result.exit_code == 1
    assert result.output == (f"Error: {tagged}: column '{column}', row {row + 2} (response id 'W{row + 1}'): code "
                             f"'active_communication': span [0, 999] lies outside the answer's {size} characters "
                             f"(expected 0 <= start <= end <= {size}). {fix}, or clear the cell.\n")
    assert not out.exists() and list(tmp_path.iterdir()) == [tagged]
    table.loc[row, column] = good  # a file whose spans fit is exported, the code over them
    table.to_csv(tagged, index=False)
    result = run("export", "qdpx", tagged, "--codebook", CODEBOOK, "--out", out)
    assert result.exit_code == 0, result.output
    qde, _ = read_qdpx(out)
    source = next(s for s in etree.fromstring(qde).iter(f"{P}TextSource") if s.get("name") == f"W{row + 1}")
    coded = {(int(s.get("startPosition")), int(s.get("endPosition"))):
             [ref.get("targetGUID") for ref in s.iter(f"{P}CodeRef")] for s in source.findall(f"{P}PlainTextSelection")}
    spans = json.loads(good)["active_communication"]
    start, end = spans[0] if column == "reviewed_spans" else spans
    assert coded[(start, end)] == [code_guid("active_communication")]


def test_cli_export_qdpx_of_an_untagged_table_is_one_line_error(tmp_path):
    from .conftest import NEW_WAVE

    out = tmp_path / "x.qdpx"
    result = run("export", "qdpx", NEW_WAVE, "--codebook", CODEBOOK, "--text-col", "answer", "--id-col",
                 "response_id", "--out", out)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {NEW_WAVE}: no code columns. A project export needs")
    assert result.output.count("\n") == 1 and not out.exists()
