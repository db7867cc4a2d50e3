"""REFI-QDA codebooks (.qdc) both ways (opm_nlp.codebook.qdc).

Generated XML is validated against the standard's XSD shipped in opm_nlp/schemas (Codebook.xsd,
transcribed from the standard, see its header), and its structure is checked explicitly as well.
"""

from __future__ import annotations

import uuid

import pytest
from click.testing import CliRunner
from lxml import etree

from opm_nlp import CodebookError, load_codebook
from opm_nlp.cli.main import cli
from opm_nlp.codebook.codes import slugify
from opm_nlp.codebook.qdc import (
    CODEBOOK_NS,
    code_guid,
    codebook_to_qdc,
    describe,
    parse_description,
    read_qdc,
    schema_errors,
    write_codebook_yaml,
    write_qdc,
)

from .conftest import CODEBOOK

CB = f"{{{CODEBOOK_NS}}}"
OLD_NS = "urn:QDA-XML:codebook:0:4"
PROJECT_NS = "urn:QDA-XML:project:1.0"


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
