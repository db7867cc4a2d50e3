import os

import pytest

from opm_nlp.codebook.codes import Codebook, load_codebook, no_definition, parse_codebook
from opm_nlp.exceptions import CodebookError

GOOD = """
name: Test
version: "1"
codes:
  - id: parent_code
    label: Parent
    definition: A parent.
  - id: child_code
    label: Child
    definition: A child.
    parent: parent_code
    keywords: [Expect, "development plan"]
"""


def test_shipped_codebook_is_valid_and_covers_the_study_themes(codebook):
    expected = {"aligning_expectations", "relationship_attention", "relationship_phases", "active_communication",
                "written_plans", "goal_setting", "structure", "self_reflection", "no_change", "other",
                "change_made", "change_intended"}
    assert set(codebook.ids) == expected
    assert codebook["relationship_phases"].parent == "relationship_attention"
    assert all(code.definition and code.examples and code.keywords for code in codebook.codes)


def test_parse_keeps_order_hierarchy_and_lowercases_keywords():
    cb = parse_codebook(GOOD)
    assert cb.ids == ["parent_code", "child_code"]
    assert cb.ancestors("child_code") == ["parent_code"]
    assert [c.id for c in cb.children(None)] == ["parent_code"]
    assert cb["child_code"].keywords == ("expect", "development plan")


def test_yaml_round_trip_keeps_fingerprint():
    cb = parse_codebook(GOOD)
    again = parse_codebook(cb.to_yaml())
    assert again == cb
    assert again.fingerprint == cb.fingerprint


def test_fingerprint_ignores_comments_but_not_content():
    cb = parse_codebook(GOOD)
    assert parse_codebook("# a comment\n" + GOOD).fingerprint == cb.fingerprint
    assert parse_codebook(GOOD.replace("A child.", "A young one.")).fingerprint != cb.fingerprint


@pytest.mark.parametrize("text, message", [
    (GOOD.replace("id: child_code", "id: parent_code"),
     r"test.yaml, code #2 \(line 8\): duplicate code id 'parent_code' \(first defined at test.yaml, code #1 \(line 5\)\)"),
    (GOOD.replace("parent: parent_code", "parent: nobody"),
     r"code 'child_code' has unknown parent 'nobody'\. Use one of the code ids"),
    (GOOD.replace("    definition: A parent.", "    definition: A parent.\n    parent: child_code"),
     r"the code hierarchy has a cycle: (parent_code -> child_code -> parent_code|child_code -> parent_code -> child_code)"),
    (GOOD.replace("    definition: A child.\n", ""), r"'child_code': missing 'definition'"),
    (GOOD.replace("    keywords:", "    colour: red\n    keywords:"), r"unknown key\(s\) \['colour'\]"),
    (GOOD.replace("version:", "verison:"), r"unknown top-level key\(s\) \['verison'\]"),
    (GOOD.replace("id: child_code", "id: Child Code"), r"code id 'Child Code' is not snake_case"),
    (GOOD.replace("label: Child", "label: [Child"), r"test.yaml: invalid YAML at line \d+, column \d+"),
    ("name: x\ncodes: []\n", r"'codes' must be a non-empty list"),
    ("- just\n- a list\n", r"expected a mapping with keys"),
])
def test_invalid_codebooks_name_the_problem_and_place(text, message):
    with pytest.raises(CodebookError, match=message):
        parse_codebook(text, source="test.yaml")


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CodebookError, match=r"Codebook file not found: .*nope\.yaml"):
        load_codebook(tmp_path / "nope.yaml")


def test_from_dict_rejects_bad_colour():
    with pytest.raises(CodebookError, match=r"'color' must look like '#1f77b4'"):
        Codebook.from_dict({"name": "x", "codes": [{"id": "a", "label": "A", "definition": "d", "color": "red"}]})


def test_examples_are_each_codes_examples_and_its_labelled_definition(codebook):
    pairs = codebook.examples()
    first = codebook.codes[0]
    assert pairs[:len(first.examples) + 1] == [(text, first.id) for text in first.examples] + [
        (f"{first.label}. {first.definition}", first.id)]
    assert {code_id for _, code_id in pairs} == set(codebook.ids)


def test_an_imported_placeholder_definition_is_not_learned_from():
    cb = Codebook.from_dict({"name": "x", "codes": [
        {"id": "a", "label": "Goals", "definition": no_definition("codes.xlsx"), "examples": ["set a goal"]},
        {"id": "b", "label": "Plans", "definition": "Written plans."}]})
    assert cb.examples() == [("set a goal", "a"), ("Goals", "a"), ("Plans. Written plans.", "b")]


@pytest.mark.parametrize("name, kind", [("Our Codes.xlsx", "a spreadsheet"), ("nvivo.qdc", "a REFI-QDA codebook")])
def test_a_codebook_in_another_format_says_how_to_convert_it(tmp_path, name, kind):
    path = tmp_path / name
    path.write_bytes(b"PK")
    stem = "our_codes" if name.endswith("xlsx") else "nvivo"
    with pytest.raises(CodebookError) as caught:
        load_codebook(path)
    assert str(caught.value) == (f"{path}: a codebook is read from YAML; this is {kind}. Convert it once with: "
                                 f"opm-nlp codebook import {path} --out codebook/{stem}.yaml, then use that file.")


def yaml_bomb(levels: int = 9) -> str:
    """A "billion laughs" list: 9 nested anchors of 9 aliases each stand for 9**9 strings in ~400 bytes."""
    parts = ["&a0 [" + ", ".join(["lol"] * 9) + "]"]
    parts += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "[" + ", ".join(parts) + "]"


NO_ALIASES = (r"opm-nlp reads plain YAML without anchors \(&name\) or aliases \(\*name\); "
              r"write the value out in full\.$")


@pytest.mark.parametrize("text, message", [
    (GOOD.replace("label: Parent", "label: &p Parent").replace("label: Child", "label: *p"),
     r"^test\.yaml: invalid YAML at line 6, column 12: anchor '&p' found; " + NO_ALIASES),
    (GOOD.replace("label: Child", "label: *p"), r"^test\.yaml: invalid YAML at line 9, column 12: alias '\*p' found; "),
    ("base: &b {label: X, definition: D}\n" + GOOD, r"^test\.yaml: invalid YAML at line 1, column 7: anchor '&b' found"),
    (GOOD.replace("    definition: A child.\n", "    definition: A child.\n    definition: Another.\n"),
     r"^test\.yaml: invalid YAML at line 11, column 5: duplicate key 'definition' \(first at line 10\); "
     r"keep one of them\.$"),
    (GOOD + "codes: []\n", r"^test\.yaml: invalid YAML at line 13, column 1: duplicate key 'codes' \(first at line 4\)"),
    (GOOD.replace("label: Child", "label: " + "[" * 60 + "]" * 60),
     r"^test\.yaml: invalid YAML at line 9, column 59: lists and mappings nested more than 50 deep\.$"),
])
def test_yaml_anchors_aliases_repeated_keys_and_deep_nesting_are_refused(text, message):
    with pytest.raises(CodebookError, match=message):
        parse_codebook(text, source="test.yaml")


def test_a_yaml_bomb_is_refused_by_codebook_validate_within_small_limits(tmp_path):
    """Read in full, the bomb needs gigabytes and minutes; the subprocess gets 1 GB and 30 s of CPU."""
    import resource
    import subprocess
    import sys
    from pathlib import Path

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))
        resource.setrlimit(resource.RLIMIT_CPU, (30, 30))

    path = tmp_path / "bomb.yaml"
    path.write_text(f"name: Bomb\ncodes:\n  - id: x\n    label: X\n    definition: D\n    include: {yaml_bomb()}\n")
    assert len(path.read_bytes()) < 1024
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run([sys.executable, "-m", "opm_nlp", "codebook", "validate", str(path)], capture_output=True,
                            text=True, preexec_fn=cap, env=env, timeout=120)
    assert result.returncode == 1
    assert result.stderr == (f"Error: {path}: invalid YAML at line 6, column 15: anchor '&a0' found; opm-nlp reads plain "
                             f"YAML without anchors (&name) or aliases (*name); write the value out in full.\n")


def test_a_model_folders_codebook_yaml_is_read_as_plain_yaml(tmp_path):
    import shutil

    from opm_nlp.model.folder import read_model_info

    from .conftest import ROOT

    folder = tmp_path / "model"
    shutil.copytree(ROOT / "models" / "opm_default", folder)
    (folder / "codebook.yaml").write_text(f"name: Bomb\ncodes:\n  - id: x\n    label: {yaml_bomb()}\n    definition: D\n")
    with pytest.raises(CodebookError, match=rf"codebook\.yaml: invalid YAML at line 4, column 13: anchor '&a0' found"):
        read_model_info(folder)
