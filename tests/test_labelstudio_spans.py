"""Evidence in Label Studio: spans pre-annotated on push, the reviewer's spans read back on pull.

The server tests use the ``label_studio`` fixture (``tests/conftest.py``): a real Label Studio on loopback.
"""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET

import pandas as pd
import pytest
from click.testing import CliRunner

from opm_nlp.cli.main import cli
from opm_nlp.codebook.codes import parse_codebook
from opm_nlp.columns import EVIDENCE_SPANS_COL, REVIEWED_SPANS_COL
from opm_nlp.exceptions import ReviewError
from opm_nlp.io.spans import format_spans, read_spans
from opm_nlp.review.labelstudio_config import SPANS_NAME, codes_in_config, has_span_labels, label_config
from opm_nlp.review.labelstudio_spans import evidence_regions, reviewed_spans

from .conftest import ROOT

DEFAULT_MODEL = ROOT / "models" / "opm_default"
CB = parse_codebook("""
name: Tiny
codes:
  - {id: food, label: Food & drink, definition: 'About the food, $5 or more'}
  - {id: staff, label: Staff, definition: About the staff}
""")
# An emoji (two UTF-16 units), a family joined by zero-width joiners (five code points), a precomposed "é"
# and an "e" with a combining accent (two code points): offsets in code points count each of them.
TEXTS = ["Café 😀 great. Staff 👍 were kind.",
         "👨\u200d👩\u200d👧 Cafe\u0301 naïve: the staff helped us set goals.",
         "No emoji here, just food."]


def run(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)


def old_config(codebook) -> str:
    """The interface opm-nlp gave review projects before it marked evidence: no span labels."""
    root = ET.fromstring(label_config(codebook))
    for element in list(root):
        if element.tag == "Labels" or (element.tag == "Header" and element.get("value", "").startswith("Where:")):
            root.remove(element)
    return ET.tostring(root, encoding="unicode")


# -- no server -------------------------------------------------------------------------------------
def test_interface_marks_spans_with_every_code_and_tells_old_interfaces_apart():
    config = label_config(CB)
    root = ET.fromstring(config)
    labels = root.find("Labels")
    assert labels.get("name") == SPANS_NAME and labels.get("toName") == "text"
    assert [label.get("value") for label in labels.iter("Label")] == codes_in_config(config) == ["food", "staff"]
    food = labels.find("Label")
    assert food.get("html") == "<b>Food &amp; drink</b>" and food.get("hint") == "About the food, ＄5 or more"
    assert len({label.get("background") for label in labels.iter("Label")}) == 2
    assert [e.tag for e in root][:4] == ["Header", "Header", "Labels", "Text"]  # the codes to mark, above the answer
    for blind, batch in ((True, False), (False, True)):  # blind coders may mark spans too (nothing is shown)
        assert has_span_labels(label_config(CB, blind=blind, batch=batch))
    assert has_span_labels(config) and not has_span_labels(old_config(CB)) and not has_span_labels("<View")


def test_evidence_regions_and_reviewed_spans_round_trip_through_emoji_and_accents():
    text = TEXTS[1]
    staff = (text.index("the staff"), len(text))
    cell = format_spans({"staff": staff, "food": (0, 1)})
    regions = evidence_regions(text, cell, ["staff"], "tagged.csv, answer r2")  # only the suggested codes
    assert len(regions) == 1
    value = regions[0]["value"]
    assert (value["start"], value["end"]) == staff and value["text"] == "the staff helped us set goals."
    assert regions[0]["from_name"] == SPANS_NAME and regions[0]["type"] == "labels" and value["labels"] == ["staff"]
    mine = {"from_name": SPANS_NAME, "to_name": "text", "type": "labels",
            "value": {"start": 0, "end": 5, "text": text[:5], "labels": ["food"]}}  # the emoji family
    assert text[:5] == "👨\u200d👩\u200d👧"
    spans = reviewed_spans({"result": [*regions, mine, regions[0]]}, text, CB, "here")
    assert spans == {"food": [(0, 5)], "staff": [staff]}  # codebook order, each span once
    assert read_spans(format_spans(spans), text, nested=True) == spans


@pytest.mark.parametrize("value, message", [
    ({"start": 0, "end": 3, "text": "Caf", "labels": ["fun"]}, r"labelled 'fun', which is not a code id"),
    ({"start": 30, "end": 99, "text": "x", "labels": ["food"]}, r"span \[30, 99\] lies outside the answer's 32"),
    # "Staff" counted in UTF-16 units (the emoji twice): not the words the region holds, so not taken
    ({"start": 15, "end": 20, "text": "Staff", "labels": ["food"]}, r"says it holds 'Staff' but the answer has 'taff '"),
    ({"start": "0", "end": 3, "labels": ["food"]}, "expected whole numbers"),
])
def test_a_reviewer_span_that_does_not_fit_is_one_clear_error(value, message):
    annotation = {"result": [{"from_name": SPANS_NAME, "to_name": "text", "type": "labels", "value": value}]}
    with pytest.raises(ReviewError, match=message) as error:
        reviewed_spans(annotation, TEXTS[0], CB, "project 'P', task 7 (r1)")
    assert str(error.value).startswith("project 'P', task 7 (r1): ") and "\n" not in str(error.value)


def test_a_bad_evidence_cell_names_file_column_and_answer():
    with pytest.raises(ReviewError, match=r"^tagged.csv, column 'evidence_spans', answer r1: code 'food': span "
                                          r"\[0, 99\] lies outside"):
        evidence_regions(TEXTS[0], '{"food": [0, 99]}', ["food"], "tagged.csv, column 'evidence_spans', answer r1")


# -- a real server ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def evidence_tagged(tmp_path_factory, codebook):
    """Answers with emoji and accents tagged by the shipped model, with suggested codes and evidence spans set
    here (what ``opm-nlp tag`` writes): staff at the sentence that names it, goal_setting at "set goals"."""
    from opm_nlp.io.tables import write_table
    from opm_nlp.model.coding_model import CodingModel

    answers = pd.DataFrame({"response_id": ["r1", "r2", "r3"], "answer": TEXTS})
    tagged = CodingModel.load(DEFAULT_MODEL).tag(answers, "answer", "response_id")
    code = codebook.ids[0]
    for c in codebook.ids:
        tagged[c] = 0
    tagged.loc[[0, 1], code] = 1
    tagged.loc[1, "goal_setting"] = 1
    evidence = {0: {code: (TEXTS[0].index("Staff"), len(TEXTS[0]))},
                1: {code: (TEXTS[1].index("Cafe"), TEXTS[1].index(":")),
                    "goal_setting": (TEXTS[1].index("set goals"), len(TEXTS[1]) - 1)}}
    tagged["suggested_codes"] = ["; ".join(c for c in codebook.ids if row[c] == 1) for _, row in tagged.iterrows()]
    tagged[EVIDENCE_SPANS_COL] = [format_spans({c: evidence[i][c] for c in codebook.ids if c in evidence.get(i, {})})
                                  for i in range(len(tagged))]
    path = tmp_path_factory.mktemp("evidence") / "tagged.csv"
    write_table(tagged, path)
    return {"path": path, "evidence": evidence, "code": code}


def tasks_of(label_studio, title):
    from label_studio_sdk import LabelStudio

    client = LabelStudio(base_url=label_studio["url"], api_key=label_studio["key"])
    project = next(p for p in client.projects.list(title=title) if p.title == title)
    return client, project, {t.data["response_id"]: t for t in client.tasks.list(project=project.id, fields="all")}


def test_push_highlights_evidence_and_pull_keeps_the_reviewers_spans(tmp_path, label_studio, evidence_tagged,
                                                                     codebook):
    env, code = label_studio["env"], evidence_tagged["code"]
    result = run("review", "push", evidence_tagged["path"], "--project", "Evidence", "--model", DEFAULT_MODEL,
                 env=env)
    assert result.exit_code == 0, result.output
    client, project, tasks = tasks_of(label_studio, "Evidence")
    assert has_span_labels(project.label_config)
    for rid, text in zip(["r1", "r2"], TEXTS):
        regions = [r for r in tasks[rid].predictions[0].result if r["type"] == "labels"]
        expected = evidence_tagged["evidence"][int(rid[1]) - 1]
        # beside the pre-ticked choices, one region per suggested code, in Label Studio's offsets (code points)
        assert {r["value"]["labels"][0]: (r["value"]["start"], r["value"]["end"]) for r in regions} == expected
        for region in regions:
            start, end = region["value"]["start"], region["value"]["end"]
            assert region["value"]["text"] == text[start:end] and region["from_name"] == SPANS_NAME
    assert [r["type"] for r in tasks["r3"].predictions[0].result] == []  # nothing suggested, nothing marked

    # r1: the reviewer accepts the suggestion as shown. r2: keeps the code, moves its evidence to "Cafe\u0301"
    # plus the emoji family, unticks goal_setting but leaves its highlight. r3: ticks the code, marks "food".
    def labels(text, start, end, label):
        return {"from_name": SPANS_NAME, "to_name": "text", "type": "labels",
                "value": {"start": start, "end": end, "text": text[start:end], "labels": [label]}}

    def choices(codes):
        return {"from_name": "codes", "to_name": "text", "type": "choices", "value": {"choices": codes}}

    r2 = TEXTS[1]
    cafe = (r2.index("Cafe"), r2.index("Cafe") + 5)
    goals = evidence_tagged["evidence"][1]["goal_setting"]
    annotations = {
        "r1": tasks["r1"].predictions[0].result,
        "r2": [choices([code]), labels(r2, *cafe, code), labels(r2, 0, 5, code), labels(r2, *goals, "goal_setting")],
        "r3": [choices([code]), labels(TEXTS[2], TEXTS[2].index("food"), len(TEXTS[2]) - 1, code)],
    }
    for rid, result in annotations.items():
        client.annotations.create(id=tasks[rid].id, result=result)
    out = tmp_path / "reviewed.csv"
    result = run("review", "pull", "--project", "Evidence", "--out", out, "--model", DEFAULT_MODEL, env=env)
    assert result.exit_code == 0, result.output
    assert ("1 marked spans belong to codes the reviewer did not tick (e.g. the evidence of a suggestion they "
            "unticked); reviewed_spans holds the spans of ticked codes only.") in result.output
    pulled = pd.read_csv(out, dtype=str, keep_default_na=False).set_index("response_id")
    spans = {rid: json.loads(pulled.loc[rid, REVIEWED_SPANS_COL]) for rid in pulled.index}
    assert spans == {"r1": {code: [list(evidence_tagged["evidence"][0][code])]},
                     "r2": {code: [[0, 5], list(cafe)]},
                     "r3": {code: [[TEXTS[2].index("food"), len(TEXTS[2]) - 1]]}}
    assert r2[0:5] == "👨\u200d👩\u200d👧" and r2[slice(*cafe)] == "Cafe\u0301"  # code points of the answer as written
    assert pulled.loc["r2", "goal_setting"] == "0" and pulled.loc["r2", code] == "1"


def test_a_project_made_before_evidence_is_refused_until_the_config_is_updated(label_studio, evidence_tagged,
                                                                               codebook):
    from label_studio_sdk import LabelStudio

    env = label_studio["env"]
    client = LabelStudio(base_url=label_studio["url"], api_key=label_studio["key"])
    old = client.projects.create(title="Before evidence", label_config=old_config(codebook))
    client.projects.import_tasks(id=old.id, request=[{"data": {"text": "Old answer", "response_id": "old1",
                                                               "id_col": "response_id", "text_col": "answer"}}])
    task = next(iter(client.tasks.list(project=old.id)))
    client.annotations.create(id=task.id, result=[{"from_name": "codes", "to_name": "text", "type": "choices",
                                                   "value": {"choices": [codebook.ids[1]]}}])
    push = ("review", "push", evidence_tagged["path"], "--project", "Before evidence", "--model", DEFAULT_MODEL)
    result = run(*push, env=env)
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert result.output.startswith("Error: Project 'Before evidence' on http://127.0.0.1:")
    assert ("was made before opm-nlp marked evidence, so its interface cannot highlight the words that carried each "
            "code. Pass --update-config to add that to its interface (its answers and reviews are kept), or use a new "
            "--project name.") in result.output
    assert len(list(client.tasks.list(project=old.id))) == 1  # nothing sent
    result = run("review", "next", evidence_tagged["path"], "--n", 1, "--seed", 1, "--model", DEFAULT_MODEL,
                 "--with-suggestions", "--project", "Before evidence", env=env)
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "Pass --update-config" in result.output

    result = run(*push, "--update-config", env=env)
    assert result.exit_code == 0, result.output
    assert "(id " in result.output and "existing): added 3 answers for review, 0 were already there" in result.output
    _, project, tasks = tasks_of(label_studio, "Before evidence")
    assert has_span_labels(project.label_config) and "highlighted" in project.expert_instruction
    assert any(r["type"] == "labels" for r in tasks["r1"].predictions[0].result)
    assert [a["result"][0]["value"]["choices"] for a in tasks["old1"].annotations] == [[codebook.ids[1]]]  # kept
    assert run(*push, env=env).exit_code == 0  # updated once, pushed as any other project since


def test_blind_projects_show_no_evidence_but_keep_spans_a_coder_marks(tmp_path, label_studio, evidence_tagged,
                                                                      codebook):
    from label_studio_sdk import LabelStudio

    env = label_studio["env"]
    result = run("review", "sample", evidence_tagged["path"], "--n", 3, "--seed", 1, "--project", "Blind evidence",
                 "--model", DEFAULT_MODEL, env=env)
    assert result.exit_code == 0, result.output
    client, project, tasks = tasks_of(label_studio, "Blind evidence")
    assert has_span_labels(project.label_config) and "highlighted words" not in project.label_config
    assert not any(t.predictions for t in tasks.values())
    assert not any(EVIDENCE_SPANS_COL in t.data for t in tasks.values())
    text = tasks["r1"].data["text"]
    start = text.index("Staff")
    client.annotations.create(id=tasks["r1"].id, result=[
        {"from_name": "codes", "to_name": "text", "type": "choices", "value": {"choices": [codebook.ids[0]]}},
        {"from_name": SPANS_NAME, "to_name": "text", "type": "labels",
         "value": {"start": start, "end": start + 5, "text": "Staff", "labels": [codebook.ids[0]]}}])
    out = tmp_path / "audit.csv"
    assert run("review", "pull", "--project", "Blind evidence", "--out", out, "--model", DEFAULT_MODEL,
               env=env).exit_code == 0
    pulled = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert json.loads(pulled.loc[0, REVIEWED_SPANS_COL]) == {codebook.ids[0]: [[start, start + 5]]}

    # An old blind project shows no evidence either, so it is used as it is (no flag needed).
    old = LabelStudio(base_url=label_studio["url"], api_key=label_studio["key"]).projects.create(
        title="Old audit", label_config=old_config(codebook).replace("$review_note", "Audit: $audit_sample"))
    assert old.id
    result = run("review", "sample", evidence_tagged["path"], "--n", 2, "--seed", 1, "--project", "Old audit",
                 "--model", DEFAULT_MODEL, env=env)
    assert result.exit_code == 0, result.output


def test_in_a_browser_label_studio_counts_code_points_both_ways(tmp_path, label_studio):
    """Label Studio's own page highlights a pushed span on exactly its words, and stores a span a reviewer
    selects in code points: an answer opening with three emoji (six UTF-16 units) tells the two counts apart."""
    from label_studio_sdk import LabelStudio

    from .cdp import Browser
    from .test_report import CHROMIUM, REQUIRE_CHROMIUM

    if not CHROMIUM.is_file():
        reason = f"Chromium not installed ({CHROMIUM}); apt-get install -y chromium to run this test"
        if REQUIRE_CHROMIUM:
            pytest.fail(reason + "; OPM_NLP_REQUIRE_CHROMIUM=1 requires it.")
        pytest.skip(reason)
    text = TEXTS[1].replace(":", " 😀:")
    staff = (text.index("the staff"), text.index("goals") + 5)
    client = LabelStudio(base_url=label_studio["url"], api_key=label_studio["key"])
    project = client.projects.create(title="In a browser", label_config=label_config(CB), show_collab_predictions=True)
    result = [{"from_name": "codes", "to_name": "text", "type": "choices", "value": {"choices": ["staff"]}},
              *evidence_regions(text, format_spans({"staff": staff}), ["staff"], "here")]
    client.projects.import_tasks(id=project.id, request=[{"data": {"text": text, "response_id": "b1"},
                                                          "predictions": [{"model_version": "v1", "result": result}]}])
    client.projects.update(id=project.id, model_version="v1")
    task = next(iter(client.tasks.list(project=project.id)))
    browser = Browser(CHROMIUM, tmp_path / "profile")
    try:
        browser.open(label_studio["url"] + "/user/login/")
        browser.js(f"""(() => {{ document.querySelector('input[name=email]').value = {json.dumps(label_studio['user'])};
            document.querySelector('input[name=password]').value = {json.dumps(label_studio['password'])};
            document.querySelector('form').submit(); return 1; }})()""")
        time.sleep(5)
        browser.open(f"{label_studio['url']}/projects/{project.id}/data?task={task.id}", wait=5)
        shown = browser.wait_for("""(() => { const s = [...document.querySelectorAll('.htx-highlight')];
            return s.length ? s.map(e => e.textContent).join('') : null; })()""")
        assert shown == "the staff helped us set goals" == text[slice(*staff)]

        # The reviewer picks Food and selects "naïve 😀" with the mouse: DOM ranges count UTF-16 units.
        assert browser.js("""(() => { const label = [...document.querySelectorAll('[class*=label]')]
            .find(e => e.textContent.trim() === 'Food & drink' && e.offsetParent); label.click(); return 1; })()""")
        words = "naïve 😀"
        utf16_start = browser.js(f"""(() => {{
            const root = document.querySelector('[class*=richtext__container]');
            const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
            for (let node; (node = walker.nextNode());) {{ const i = node.data.indexOf({json.dumps(words)});
                if (i < 0) continue;
                const range = document.createRange(); range.setStart(node, i); range.setEnd(node, i + {len(words) + 1});
                window.getSelection().removeAllRanges(); window.getSelection().addRange(range);
                node.parentElement.dispatchEvent(new MouseEvent('mouseup', {{bubbles: true}})); return i; }}
            return null; }})()""")
        assert utf16_start == text.index(words) + 3  # three emoji before it, each two units
        time.sleep(2)
        assert browser.js("""(() => { const b = [...document.querySelectorAll('button')]
            .find(e => e.textContent.trim() === 'Submit'); b.click(); return 1; })()""")
        annotations = browser.wait_for(f"""fetch('/api/tasks/{task.id}/annotations/').then(r => r.json())
            .then(a => a.length ? a : null)""", timeout=30)
    finally:
        browser.close()
    stored = {item["value"]["labels"][0]: item["value"] for item in annotations[0]["result"] if item["type"] == "labels"}
    start = text.index(words)
    assert (stored["food"]["start"], stored["food"]["end"], stored["food"]["text"]) == (start, start + len(words), words)
    assert (stored["staff"]["start"], stored["staff"]["end"]) == staff  # the evidence, accepted as shown
    assert reviewed_spans(annotations[0], text, CB, "here") == {"food": [(start, start + len(words))], "staff": [staff]}


def test_a_batch_with_suggestions_carries_the_evidence_in_the_order_picked():
    from types import SimpleNamespace

    from opm_nlp.review.next_labelstudio import batch_tasks

    frame = pd.DataFrame({"response_id": ["b", "a"], "answer": TEXTS[:2], "food": [0, 1], "staff": [1, 1],
                          "score_food": [0.1, 0.9], "score_staff": [0.8, 0.6],
                          EVIDENCE_SPANS_COL: [format_spans({"staff": (14, 32)}),
                                               format_spans({"food": (6, 11), "staff": (19, 28)})]})
    batch = SimpleNamespace(frame=frame, id_col="response_id", text_col="answer", with_suggestions=True)
    tasks = batch_tasks(batch, CB, "v1", [0.5, 0.5])
    assert [t["data"]["response_id"] for t in tasks] == ["b", "a"]
    regions = [[(r["value"]["labels"][0], r["value"]["text"]) for r in t["predictions"][0]["result"]
                if r["type"] == "labels"] for t in tasks]
    assert regions == [[("staff", "Staff 👍 were kind.")], [("food", "Cafe\u0301"), ("staff", "the staff")]]
