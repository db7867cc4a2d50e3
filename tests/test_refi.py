"""REFI-QDA exchange: codebooks (.qdc) both ways, projects (.qdpx) out.

Generated XML is validated against the standard's XSDs shipped in opm_nlp/schemas (Project.xsd as
published by REFI; Codebook.xsd transcribed from the standard, see its header), and its structure
is checked explicitly as well.
"""

from __future__ import annotations

import uuid
import zipfile

import pandas as pd
import pytest
from click.testing import CliRunner
from lxml import etree

from opm_nlp import CodebookError, DataError, load_codebook
from opm_nlp.cli.main import cli
from opm_nlp.exchange.refi import (
    CODEBOOK_NS,
    GUID_NAMESPACE,
    HUMAN_USER,
    MODEL_USER,
    NEEDS_REVIEW_SET,
    PROJECT_NS,
    build_project,
    code_guid,
    codebook_to_qdc,
    object_guid,
    parse_description,
    read_qdc,
    schema_errors,
    slugify,
    write_qdc,
    write_qdpx,
)

from .conftest import CODEBOOK, CODED

CB = f"{{{CODEBOOK_NS}}}"
P = f"{{{PROJECT_NS}}}"
OLD_NS = "urn:QDA-XML:codebook:0:4"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


# -- codebook export ------------------------------------------------------------------------------
def test_qdc_export_is_valid_and_keeps_the_hierarchy(codebook):
    document = codebook_to_qdc(codebook)
    assert schema_errors(document, "codebook") == []
    root = etree.fromstring(document)
    assert root.tag == f"{CB}CodeBook" and root.get("origin").startswith("opm-nlp")
    top = root.find(f"{CB}Codes").findall(f"{CB}Code")
    assert [c.get("name") for c in top] == [c.label for c in codebook.children(None)]
    by_guid = {c.get("guid"): c for c in root.iter(f"{CB}Code")}
    assert len(by_guid) == len(codebook)
    phases = by_guid[code_guid("relationship_phases")]
    assert phases.getparent().get("guid") == code_guid("relationship_attention")
    assert phases.get("name") == "Phases of the relationship"
    assert phases.get("color") == "#ffbb78" and phases.get("isCodable") == "true"
    description = phases.findtext(f"{CB}Description")
    assert description.startswith(codebook["relationship_phases"].definition)
    assert "Exclude: General attention to the relationship" in description
    assert description.endswith("opm-nlp id: relationship_phases")


def test_code_guids_are_uuid5_of_the_code_id_in_the_opm_nlp_namespace():
    assert GUID_NAMESPACE == uuid.uuid5(uuid.NAMESPACE_URL, "urn:opm-nlp:refi-qda")
    assert code_guid("structure") == str(uuid.uuid5(GUID_NAMESPACE, "structure"))
    assert object_guid("source", "R0001") == str(uuid.uuid5(GUID_NAMESPACE, "source:R0001"))
    assert code_guid("structure") != object_guid("source", "structure")


def test_qdc_round_trip_keeps_ids_labels_hierarchy_guids_and_colours(tmp_path, codebook, recwarn):
    first = write_qdc(codebook, tmp_path / "opm.qdc")
    imported = read_qdc(first)
    assert imported.codes == codebook.codes  # ids, labels, parents, colours, definitions, notes, keywords
    assert imported.name == "opm" and imported.description == "Imported from opm.qdc (exported by opm-nlp 0.1.0)."
    second = write_qdc(imported, tmp_path / "again.qdc")
    assert second.read_bytes() == first.read_bytes()
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.qdc", "opm.qdc"]  # no temporary files left


def test_import_keeps_ids_when_a_qda_tool_renamed_a_code(tmp_path, codebook):
    document = codebook_to_qdc(codebook).replace(b'name="Phases of the relationship"', b'name="Stages"')
    (tmp_path / "renamed.qdc").write_bytes(document)
    imported = read_qdc(tmp_path / "renamed.qdc", name="OPM from NVivo")
    assert imported.name == "OPM from NVivo"
    assert imported["relationship_phases"].label == "Stages"
    assert imported["relationship_phases"].parent == "relationship_attention"


def test_ids_written_by_opm_nlp_win_over_names_of_new_codes(tmp_path, codebook):
    new_code = (f'<Code guid="{uuid.uuid4()}" name="Structure" isCodable="true">'
                f'<Description>Added in NVivo.</Description></Code>').encode()
    document = codebook_to_qdc(codebook).replace(b"<Codes>", b"<Codes>" + new_code, 1)
    (tmp_path / "edited.qdc").write_bytes(document)
    with pytest.warns(UserWarning, match=r"1 of 13 code GUIDs are not kept"):
        imported = read_qdc(tmp_path / "edited.qdc")
    assert imported.ids[0] == "structure_2" and imported["structure_2"].definition == "Added in NVivo."
    assert imported.ids[1:] == codebook.ids and imported.codes[1:] == codebook.codes


# -- codebook import from other tools -------------------------------------------------------------
ATLAS_04 = f"""<?xml version="1.0" encoding="utf-8"?>
<CodeBook xmlns="{OLD_NS}" origin="ATLAS.ti Win 9.1">
  <Codes>
    <Code guid="{{1FF58B12-6F6F-4B0C-8BE5-BBDC91F55294}}" name="Mentoring relationship" isCodable="true" color="#46AA00">
      <Description>Talk about the relationship.
Include: trust, rapport</Description>
      <Code guid="A1D2E3F4-0000-4000-8000-000000000001" name="Other" isCodable="true" color="#F0A"/>
    </Code>
    <Code guid="A1D2E3F4-0000-4000-8000-000000000002" name="Other" isCodable="false" color="red">
      <Description>   </Description>
    </Code>
    <Code guid="A1D2E3F4-0000-4000-8000-000000000003" name="2nd-wave: Événements" isCodable="true"/>
  </Codes>
  <Sets>
    <Set guid="A1D2E3F4-0000-4000-8000-000000000009" name="group"><MemberCode guid="A1D2E3F4-0000-4000-8000-000000000002"/></Set>
  </Sets>
</CodeBook>
"""


def test_import_of_a_04_namespace_codebook_from_another_tool(tmp_path):
    path = tmp_path / "atlas.qdc"
    path.write_text(ATLAS_04, encoding="utf-8")
    with pytest.warns(UserWarning) as caught:
        imported = read_qdc(path)
    messages = [str(w.message) for w in caught]
    assert any(m.startswith(f"{path}: 3 code(s) have no description [other, other_2, code_2nd_wave_evenements];"
                            f" their definition is '(no definition in atlas.qdc)'.") for m in messages)
    assert any("colour(s) not in #rrggbb form left out: [other_2 (red)]" in m for m in messages)
    assert any("4 of 4 code GUIDs are not kept" in m for m in messages)

    assert imported.ids == ["mentoring_relationship", "other", "other_2", "code_2nd_wave_evenements"]
    assert imported["other"].parent == "mentoring_relationship"
    assert imported["mentoring_relationship"].definition == "Talk about the relationship."
    assert imported["mentoring_relationship"].include == "trust, rapport"
    assert imported["mentoring_relationship"].color == "#46AA00"
    assert imported["other"].color == "#FF00AA"  # #RGB widened to #RRGGBB
    assert imported["other_2"].color is None
    assert imported["code_2nd_wave_evenements"].label == "2nd-wave: Événements"
    assert imported["other_2"].definition == "(no definition in atlas.qdc)"

    # what the CLI writes is a valid opm-nlp codebook
    from opm_nlp.exchange.refi import write_codebook_yaml

    out = write_codebook_yaml(imported, tmp_path / "atlas.yaml", comment="from ATLAS.ti")
    assert out.read_text(encoding="utf-8").startswith("# from ATLAS.ti\nname: atlas\n")
    assert load_codebook(out).codes == imported.codes


@pytest.mark.parametrize("namespace", [CODEBOOK_NS, OLD_NS, "urn:QDA-XML:codebook:0.4"])
def test_import_accepts_the_1_0_and_0_4_namespaces(tmp_path, namespace):
    path = tmp_path / "c.qdc"
    path.write_text(f'<CodeBook xmlns="{namespace}"><Codes><Code guid="{code_guid("a")}" name="A" '
                    f'isCodable="true"><Description>Def.</Description></Code></Codes></CodeBook>')
    assert read_qdc(path).codes[0].definition == "Def."


@pytest.mark.parametrize("text, expected", [
    ("Aligning expectations", "aligning_expectations"),
    ("  Goal-setting (SMART)!", "goal_setting_smart"),
    ("Réflexion sur soi", "reflexion_sur_soi"),
    ("1:1 meetings", "code_1_1_meetings"),
    ("???", "code"),
])
def test_slugify(text, expected):
    assert slugify(text) == expected


def test_parse_description_reads_back_what_export_writes(codebook):
    from opm_nlp.exchange.refi import describe

    code = codebook["relationship_attention"]
    fields = parse_description(describe(code))
    assert fields == {"definition": code.definition, "include": code.include, "exclude": code.exclude,
                      "examples": list(code.examples), "keywords": list(code.keywords), "id": code.id}
    assert parse_description("Just text\nover two lines.")["definition"] == "Just text over two lines."


@pytest.mark.parametrize("content, message", [
    (b"name: not xml\n", r"^{path}: not an XML file \(Start tag expected, '<' not found, line 1, column 1\); "
                         r"expected a REFI-QDA codebook \(\.qdc\) exported from NVivo, ATLAS\.ti, MAXQDA or QualCoder\.$"),
    (b"", r"^{path}: not an XML file \(.*\); expected a REFI-QDA codebook"),
    (f'<Project xmlns="{PROJECT_NS}" name="p"/>'.encode(),
     r"^{path}: expected a REFI-QDA codebook, root <CodeBook> in namespace 'urn:QDA-XML:codebook:1\.0' \(or the "
     r"older 'urn:QDA-XML:codebook:0:4'\), found <Project> in namespace 'urn:QDA-XML:project:1\.0'\. That is a "
     r"REFI-QDA project; export the codebook alone \(\.qdc\) from your QDA tool\.$"),
    (b'<CodeBook xmlns="urn:example:other"><Codes/></CodeBook>',
     r"found <CodeBook> in namespace 'urn:example:other'\. Export the codebook from your QDA tool as "
     r"'REFI-QDA Codebook \(\.qdc\)'\.$"),
    (b"<CodeBook><Codes/></CodeBook>", r"found <CodeBook> with no namespace\."),
    (f'<CodeBook xmlns="{CODEBOOK_NS}"><Codes/></CodeBook>'.encode(),
     r"^{path}: the codebook has no codes \(no <Code> inside <Codes>\); nothing to import\.$"),
    (f'<CodeBook xmlns="{CODEBOOK_NS}"><Codes><Code guid="{code_guid("a")}" name=" " isCodable="true"/>'
     f'</Codes></CodeBook>'.encode(),
     rf"^{{path}}: code #1 \(guid {code_guid('a')}\) has no name; give it a name in your QDA tool and export "
     r"again\.$"),
])
def test_import_errors_say_what_was_expected_and_found(tmp_path, content, message):
    path = tmp_path / "bad.qdc"
    path.write_bytes(content)
    with pytest.raises(CodebookError, match=message.replace("{path}", str(path).replace(".", r"\."))):
        read_qdc(path)


def test_import_of_a_missing_file_or_a_folder(tmp_path):
    with pytest.raises(CodebookError, match=r"^REFI-QDA codebook not found: .*nope\.qdc\.$"):
        read_qdc(tmp_path / "nope.qdc")
    with pytest.raises(CodebookError, match=r" is a folder; expected a REFI-QDA codebook"):
        read_qdc(tmp_path)


def test_import_ignores_external_entities(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    path = tmp_path / "xxe.qdc"
    path.write_text(f'<?xml version="1.0"?><!DOCTYPE c [<!ENTITY x SYSTEM "file://{secret}">]>'
                    f'<CodeBook xmlns="{CODEBOOK_NS}"><Codes><Code guid="{code_guid("a")}" name="A" '
                    f'isCodable="true"><Description>D &x;</Description></Code></Codes></CodeBook>')
    assert "TOP SECRET" not in read_qdc(path).codes[0].definition


# -- project export -------------------------------------------------------------------------------
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


# -- command line ---------------------------------------------------------------------------------
def test_cli_codebook_export_then_import(tmp_path, codebook):
    qdc = tmp_path / "opm.qdc"
    result = run("codebook", "export", CODEBOOK, "--format", "qdc", "--out", qdc)
    assert result.exit_code == 0, result.output
    assert result.output == f"Wrote 12 codes (2 levels) of 'OPM behaviour change' to {qdc} (REFI-QDA Codebook 1.0).\n"
    assert schema_errors(qdc.read_bytes(), "codebook") == []

    out = tmp_path / "back.yaml"
    result = run("codebook", "import", qdc, "--out", out, "--name", "OPM behaviour change")
    assert result.exit_code == 0, result.output
    back = load_codebook(out)
    assert back.codes == codebook.codes and back.name == "OPM behaviour change"
    assert result.output == (f"Imported 12 codes from {qdc} to {out}; fingerprint {back.fingerprint}. "
                             f"Check it with: opm-nlp codebook validate {out}\n")
    assert out.read_text(encoding="utf-8").startswith("# Imported from opm.qdc by 'opm-nlp codebook import'.\n")


def test_cli_import_warns_about_missing_definitions(tmp_path):
    qdc = tmp_path / "atlas.qdc"
    qdc.write_text(ATLAS_04, encoding="utf-8")
    result = run("codebook", "import", qdc, "--out", tmp_path / "a.yaml")
    assert result.exit_code == 0, result.output
    assert (f"Warning: {qdc}: 3 code(s) have no description [other, other_2, code_2nd_wave_evenements]; "
            f"their definition is '(no definition in atlas.qdc)'. Write a definition for each before training "
            f"or sharing the codebook.\n") in result.output
    assert f"Imported 4 codes from {qdc}" in result.output


def test_cli_import_error_is_one_line(tmp_path):
    bad = tmp_path / "codes.qdc"
    bad.write_text("Code,Label\n")
    result = run("codebook", "import", bad, "--out", tmp_path / "x.yaml")
    assert result.exit_code == 1
    assert result.output == (f"Error: {bad}: not an XML file (Start tag expected, '<' not found, line 1, column 1); "
                             f"expected a REFI-QDA codebook (.qdc) exported from NVivo, ATLAS.ti, MAXQDA or "
                             f"QualCoder.\n")
    assert not (tmp_path / "x.yaml").exists()


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


def test_cli_export_qdpx_of_an_untagged_table_is_one_line_error(tmp_path):
    from .conftest import NEW_WAVE

    out = tmp_path / "x.qdpx"
    result = run("export", "qdpx", NEW_WAVE, "--codebook", CODEBOOK, "--text-col", "answer", "--id-col",
                 "response_id", "--out", out)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {NEW_WAVE}: no code columns. A project export needs")
    assert result.output.count("\n") == 1 and not out.exists()
