"""The review loop: Label Studio (a real server on loopback) and the review spreadsheet.

The Label Studio tests use the server of the ``label_studio`` fixture (``tests/conftest.py``).
"""

from __future__ import annotations

import json
import secrets
import socket

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from opm_nlp.cli.main import cli
from opm_nlp.codebook.codes import parse_codebook
from opm_nlp.exceptions import DataError, ReviewError, ServerError
from opm_nlp.columns import (
    CHANGED_COL,
    EVIDENCE_COL,
    EVIDENCE_SPANS_COL,
    MODEL_VERSION_COL,
    REVIEWED_AT_COL,
    REVIEWED_COL,
    REVIEWED_SPANS_COL,
    REVIEWER_COL,
)

from .conftest import CODEBOOK, CODED, NEW_WAVE, ROOT, free_port

DEFAULT_MODEL = ROOT / "models" / "opm_default"
COLS = ["--text-col", "answer", "--id-col", "response_id"]


def run(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)


# -- fixtures --------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tagged_wave(tmp_path_factory) -> dict:
    """24 answers of the illustrative new wave tagged by the shipped model: wave 1 = the first 16."""
    from opm_nlp.model.coding_model import CodingModel
    from opm_nlp.io.responses import read_responses
    from opm_nlp.io.tables import write_table

    folder = tmp_path_factory.mktemp("tagged")
    answers = read_responses(NEW_WAVE, "answer", "response_id").head(24)
    tagged = CodingModel.load(DEFAULT_MODEL).tag(answers, "answer", "response_id")
    write_table(tagged.head(16), folder / "wave1.csv")
    write_table(tagged, folder / "wave2.csv")
    return {"wave1": folder / "wave1.csv", "wave2": folder / "wave2.csv", "tagged": tagged}


@pytest.fixture(scope="session")
def codebook_():
    from opm_nlp import load_codebook

    return load_codebook(CODEBOOK)


def sdk(label_studio):
    from label_studio_sdk import LabelStudio

    return LabelStudio(base_url=label_studio["url"], api_key=label_studio["key"])


def project_tasks(client, title):
    project = next(p for p in client.projects.list(title=title) if p.title == title)
    return project, list(client.tasks.list(project=project.id, fields="all"))


# -- the labeling interface (no server) ------------------------------------------------------------
def test_label_config_lists_codes_in_tree_order_and_escapes_text():
    import xml.etree.ElementTree as ET

    from opm_nlp.review.labelstudio_config import codes_in_config, label_config

    cb = parse_codebook("""
name: 'Tricky <codebook> & "quotes"'
codes:
  - {id: parent_code, label: 'Parent <b>bold</b> & co', definition: 'Costs $5 or $amount; 1 < 2'}
  - {id: other, label: Other, definition: d}
  - {id: child_code, label: Child, parent: parent_code, definition: 'A "child" code', include: '=SUM(A1)'}
""")
    config = label_config(cb)
    root = ET.fromstring(config)
    assert codes_in_config(config) == ["parent_code", "child_code", "other"]
    choices = {c.get("value"): c for c in root.iter("Choice")}
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in choices["parent_code"].get("html")  # shown as text, not markup
    assert "＄5 or ＄amount" in choices["parent_code"].get("hint")  # never read as a task field
    assert choices["child_code"].get("style") == "margin-left: 1.75em" and "style" not in choices["other"].attrib
    assert root.find(".//Choices").get("choice") == "multiple"


def test_server_down_is_one_clear_line():
    from opm_nlp.review.labelstudio_server import connect

    with pytest.raises(ServerError, match=r"Cannot reach Label Studio at http://127\.0\.0\.1:\d+ \(.*\)\. Start the server"):
        connect(f"http://127.0.0.1:{free_port()}", "some-key-123")


@pytest.mark.parametrize("url, message", [
    (None, r"No Label Studio URL: set LABEL_STUDIO_URL \(e\.g\. http://localhost:8080\) or pass --url\."),
    ("localhost:8080", r"Label Studio URL must look like http://localhost:8080; found 'localhost:8080'\."),
    ("ftp://host", r"Label Studio URL must look like http://localhost:8080; found 'ftp://host'"),
])
def test_bad_url_is_a_clear_error(url, message):
    from opm_nlp.review.labelstudio_server import connect

    with pytest.raises(ServerError, match=message):
        connect(url, "key-123456")


def test_missing_key_is_a_clear_error():
    from opm_nlp.review.labelstudio_server import connect

    with pytest.raises(ServerError, match=r"No Label Studio API key: set LABEL_STUDIO_API_KEY"):
        connect("http://127.0.0.1:9", None)


@pytest.fixture()
def refusing_server():
    """A loopback HTTP server that answers every request 401 and keeps the requests' header lines."""
    import threading

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    seen: list[bytes] = []

    def serve():
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:  # closed at the end of the test
                return
            with conn:
                seen.append(conn.recv(65536))
                body = b'{"detail": "Invalid token."}'
                conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))

    threading.Thread(target=serve, daemon=True).start()
    yield {"url": f"http://127.0.0.1:{sock.getsockname()[1]}", "seen": seen}
    sock.close()


def assert_no_key(text: str, key: str) -> None:
    """Fail if ``text`` holds ``key`` in any form: as given, stripped, repr'd, bytes-repr'd, JSON, URL-encoded."""
    from urllib.parse import quote

    stripped = key.strip()
    forms = {key, stripped, repr(key)[1:-1], repr(key.encode())[2:-1], json.dumps(key)[1:-1], quote(key, safe=""),
             stripped[:len(stripped) // 2], stripped[len(stripped) // 2:]}
    assert not [form for form in forms if form in text], text


def test_a_key_ending_in_a_line_break_is_stripped_and_never_shown(refusing_server, tmp_path):
    from opm_nlp.review.labelstudio_server import connect

    key = "SECRET" + secrets.token_hex(8) + "\r\n"  # read from a file with Windows line endings
    with pytest.raises(ServerError) as info:
        connect(refusing_server["url"], key)
    assert str(info.value).startswith(f"Label Studio at {refusing_server['url']} refused the API key (HTTP 401).")
    assert_no_key(str(info.value), key)
    # The key went out stripped, in the header and nowhere else.
    assert f"Authorization: Token {key.strip()}\r\n".encode() in refusing_server["seen"][0]
    result = run("review", "pull", "--project", "p", "--out", tmp_path / "r.csv", "--codebook", CODEBOOK,
                 env={"LABEL_STUDIO_URL": refusing_server["url"], "LABEL_STUDIO_API_KEY": key})
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "refused the API key (HTTP 401)" in result.output
    assert_no_key(result.output, key)
    assert not (tmp_path / "r.csv").exists()


@pytest.mark.parametrize("key, kind", [
    ("SECRET\x00" + "ab12" * 8, "a character no token holds"),
    ("SECRET abc" + "ab12" * 8, "a space or line break"),
    ("SECRET\r\nX-Evil: 1" + "ab12" * 8, "a space or line break"),
    ("SECRETé" + "ab12" * 8, "a character no token holds"),
])
def test_a_key_no_header_can_carry_is_refused_before_any_request(refusing_server, caplog, key, kind):
    from opm_nlp.review.labelstudio_server import connect

    with caplog.at_level("DEBUG"), pytest.raises(ServerError, match=rf"The API key in LABEL_STUDIO_API_KEY / --api-key "
                                                                   rf"has {kind} at position 7 of \d+; copy the access"):
        connect(refusing_server["url"], key)
    assert refusing_server["seen"] == []  # nothing was sent
    assert_no_key(caplog.text, key)


def test_redact_removes_every_form_of_the_key():
    from urllib.parse import quote_plus

    from opm_nlp.review.labelstudio_server import redact

    key = "SECRET" + secrets.token_hex(8) + "/+=\r\n"
    carriers = [key, key.strip(), repr(key), repr(key.encode()), repr(repr(key.encode())), json.dumps(key),
                quote_plus(key), f"Illegal header value {('Token ' + key).encode()!r}"]
    for text in carriers:
        assert_no_key(redact(f"before {text} after", key), key)
        assert redact(f"before {text} after", key).startswith("before ")
    assert redact("nothing secret here", key) == "nothing secret here"


def test_a_url_with_credentials_is_refused():
    from opm_nlp.review.labelstudio_server import connect

    with pytest.raises(ServerError, match=r"Label Studio URL must not hold a user name or password"):
        connect("http://user:pass@127.0.0.1:9", "key-123456")


def test_push_needs_a_codebook_or_model_and_a_tagged_file(tmp_path, tagged_wave):
    result = CliRunner().invoke(cli, ["review", "push", str(tagged_wave["wave1"]), "--project", "p"])
    assert result.exit_code == 2 and "Pass --model MODEL_DIR (or --codebook CODEBOOK)" in result.output
    result = CliRunner().invoke(cli, ["review", "sheet", str(tagged_wave["wave1"]), "--out", "x.xlsx",
                                      "--codebook", str(CODEBOOK), "--model", str(DEFAULT_MODEL)])
    assert result.exit_code == 2 and "Pass either --model or --codebook, not both" in result.output
    result = run("review", "push", CODED, "--project", "p", "--codebook", CODEBOOK,
                 env={"LABEL_STUDIO_URL": "http://127.0.0.1:9", "LABEL_STUDIO_API_KEY": "k" * 10})
    assert result.exit_code == 1
    assert "score column(s) ['score_aligning_expectations', 'score_relationship_attention', " in result.output
    assert "expected the output of opm-nlp tag with this codebook" in result.output


def test_review_refuses_a_code_or_score_column_as_the_answer_column(tmp_path, tagged_wave):
    frame = tagged_wave["tagged"]
    moved = tmp_path / "moved.csv"
    frame[["response_id", "score_aligning_expectations", *[c for c in frame.columns if c not in (
        "response_id", "score_aligning_expectations")]]].to_csv(moved, index=False)
    result = run("review", "sheet", moved, "--out", tmp_path / "x.xlsx", "--model", DEFAULT_MODEL)
    assert result.exit_code == 1
    assert ("moved.csv: column 'score_aligning_expectations' holds codes or scores, so it cannot be the answer "
            "column (the file does not start with the id and the answer). Pass --text-col.") in result.output
    assert not (tmp_path / "x.xlsx").exists()


def test_uncertainty_is_one_on_the_threshold_and_for_unscored_answers():
    from opm_nlp.review.common import uncertainty

    scores = np.array([[0.3, 0.0], [0.0, 0.99], [np.nan, np.nan], [0.65, 1.0]])
    got = uncertainty(scores, np.array([0.3, 0.6]))
    assert got[0] == pytest.approx(1.0) and got[2] == 1.0
    assert got[1] == pytest.approx(1 - 0.39 / 0.4) and got[3] == pytest.approx(1 - 0.35 / 0.7)


def test_uncertainty_follows_the_models_decision_rule():
    from opm_nlp.classify.decision import DecisionRule, suggest
    from opm_nlp.review.common import decision_rule_of, uncertainty

    thresholds = np.array([0.4, 0.4, 0.4])
    scores = np.array([[0.3, 0.0, 0.0],     # "at least one" gives code 0 (0.3 >= half of 0.4): uncertain
                       [0.9, 0.85, 0.0],    # the cap keeps one: code 1 is close behind code 0 (0.05 apart)
                       [0.9, 0.0, 0.0]])    # nothing near a flip
    rule = DecisionRule(thresholds, cap=1, at_least_one=True)
    got = uncertainty(scores, rule)
    plain = uncertainty(scores, thresholds)
    assert got[0] == 1.0 and plain[0] == pytest.approx(1 - 0.1 / 0.4)
    assert got[1] == pytest.approx(1 - 0.05 / 0.6) and plain[1] == pytest.approx(1 - 0.45 / 0.6)
    assert got[2] == pytest.approx(plain[2])
    # the rule as metadata.json records it gives the same suggestions as the model's own rule
    metadata = {"thresholds": {"a": 0.4, "b": 0.4, "c": 0.4},
                "decision": {"rule": "per-code thresholds + at most 1 code per answer + at least one code per answer",
                             "shrink": 0.0, "shared_threshold": None, "cap": 1, "at_least_one": True}}

    class Three:
        ids = ["a", "b", "c"]

    rebuilt = decision_rule_of(Three(), metadata)
    assert (suggest(rebuilt, scores)[0] == suggest(rule, scores)[0]).all()
    assert decision_rule_of(Three(), None).is_plain and decision_rule_of(Three(), None).thresholds.tolist() == [0.5] * 3


def test_review_sheet_ranks_a_code_given_by_at_least_one_as_uncertain(tmp_path, tagged_wave):
    """The shipped model's rule gives an answer with no code its best one when plausible; the sheet
    counts that answer as uncertain (1), as ``tag`` flags it, though no score is near its threshold."""
    from opm_nlp.io.tables import write_table

    metadata = json.loads((DEFAULT_MODEL / "metadata.json").read_text())
    assert metadata["decision"]["at_least_one"] and metadata["decision"]["cap"] is None
    codes = metadata["codes"]
    thresholds = np.array([metadata["thresholds"][c] for c in codes])
    tagged = tagged_wave["tagged"].copy()
    row = 3  # scores as "at least one" sees them: the best at 0.6 of its threshold, the others near 0
    tagged.loc[row, [f"score_{c}" for c in codes]] = 0.01
    tagged.loc[row, f"score_{codes[0]}"] = round(0.6 * thresholds[0], 4)
    tagged.loc[row, codes] = 0
    tagged.loc[row, codes[0]] = 1
    write_table(tagged, tmp_path / "tagged.csv")
    out = tmp_path / "review.xlsx"
    result = run("review", "sheet", tmp_path / "tagged.csv", "--model", str(DEFAULT_MODEL), "--out", str(out))
    assert result.exit_code == 0, result.output
    sheet = pd.read_excel(out, sheet_name="answers", dtype={"response_id": str})
    assert sheet.loc[0, "response_id"] == tagged.loc[row, "response_id"]
    assert sheet.loc[0, "uncertainty"] == 1.0
    assert list(sheet["uncertainty"].dropna()) == sorted(sheet["uncertainty"].dropna(), reverse=True)


# -- Label Studio round trip -----------------------------------------------------------------------
def test_round_trip_push_review_pull_retrain(tmp_path, label_studio, tagged_wave, codebook_):
    env = label_studio["env"]
    result = run("review", "push", tagged_wave["wave1"], "--project", "OPM wave 2022", "--model", DEFAULT_MODEL,
                 env=env)
    assert result.exit_code == 0, result.output
    tagged = tagged_wave["tagged"].head(16)
    n_text = int(tagged["answer"].ne("").sum())
    assert f"created): added {n_text} answers for review, 0 were already there" in result.output

    client = sdk(label_studio)
    project, tasks = project_tasks(client, "OPM wave 2022")
    meta = json.loads((DEFAULT_MODEL / "metadata.json").read_text())
    version = f"{meta['codebook']['fingerprint']}@{meta['created']}"
    assert project.model_version == version
    # least certain first, each with the suggestion as a pre-annotation and its scores in the task data
    uncertainties = [t.data["uncertainty"] for t in sorted(tasks, key=lambda t: t.id)]
    assert uncertainties == sorted(uncertainties, reverse=True)
    first = tasks[0]
    row = tagged.set_index("response_id").loc[first.data["response_id"]]
    assert first.data["score_goal_setting"] == pytest.approx(row["score_goal_setting"])
    prediction = first.predictions[0]
    assert prediction.model_version == version
    suggested = [c for c in codebook_.ids if row[c] == 1]
    assert (prediction.result[0]["value"]["choices"] if prediction.result else []) == suggested

    # A reviewer adds goal_setting where the model missed it, removes a suggested code elsewhere,
    # accepts the rest unchanged, skips one answer and leaves three alone.
    ordered = sorted(tasks, key=lambda t: t.data["response_id"])
    reviewer = {}
    for i, task in enumerate(ordered[:-4]):
        codes = [c for c in task.data["suggested_codes"].split("; ") if c]
        if i % 3 == 0 and "goal_setting" not in codes:
            codes.append("goal_setting")
        elif i % 3 == 1 and codes:
            codes = codes[1:]
        reviewer[task.data["response_id"]] = codes
        client.annotations.create(id=task.id, result=[{"from_name": "codes", "to_name": "text", "type": "choices",
                                                       "value": {"choices": codes}}])
    client.annotations.create(id=ordered[-4].id, result=[], was_cancelled=True)

    out = tmp_path / "reviewed.csv"
    result = run("review", "pull", "--project", "OPM wave 2022", "--out", out, "--model", DEFAULT_MODEL, env=env)
    assert result.exit_code == 0, result.output
    n_rev = len(reviewer)
    assert f"Project 'OPM wave 2022': {n_rev} of {n_text} answers reviewed (4 not yet, 1 skipped by reviewers)." in result.output
    assert f"Wrote {n_rev} rows (reviewed answers only) to {out}" in result.output
    changed = sum(set(codes) != set(filter(None, t.data["suggested_codes"].split("; ")))
                  for t, codes in zip(ordered, reviewer.values()))
    assert f"and changed them on {changed}." in result.output and "kappa" in result.output

    pulled = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(pulled.columns[:8]) == ["response_id", "answer", REVIEWED_COL, REVIEWER_COL, REVIEWED_AT_COL,
                                        CHANGED_COL, MODEL_VERSION_COL, "suggested_codes"]
    assert list(pulled.columns[8:]) == [*codebook_.ids, REVIEWED_SPANS_COL]
    assert set(pulled[REVIEWED_SPANS_COL]) == {""}  # these annotations mark no spans
    assert set(pulled[REVIEWED_COL]) == {"1"} and set(pulled[REVIEWER_COL]) == {label_studio["user"]}
    assert set(pulled[MODEL_VERSION_COL]) == {version} and all(pulled[REVIEWED_AT_COL].str.startswith("20"))
    for _, line in pulled.iterrows():
        assert [c for c in codebook_.ids if line[c] == "1"] == [c for c in codebook_.ids if c in reviewer[line["response_id"]]]
        assert line[CHANGED_COL] == str(int(set(reviewer[line["response_id"]]) != set(filter(None, line["suggested_codes"].split("; ")))))

    # Unreviewed answers only on request, marked reviewed=0 with the model's codes.
    everything = tmp_path / "all.csv"
    result = run("review", "pull", "--project", "OPM wave 2022", "--out", everything, "--model", DEFAULT_MODEL,
                 "--include-unreviewed", env=env)
    assert result.exit_code == 0, result.output
    full = pd.read_csv(everything, dtype=str, keep_default_na=False)
    assert len(full) == n_text and (full[REVIEWED_COL] == "0").sum() == 4

    # Retrain on the original coded answers plus the review (the file with unreviewed rows: they are left out).
    model_dir = tmp_path / "retrained"
    result = run("train", "--codebook", CODEBOOK, "--data", CODED, "--data", everything, *COLS, "--out", model_dir,
                 "--quiet")
    assert result.exit_code == 0, result.output
    assert f"{everything}: left out 4 answers not marked reviewed=1" in result.output
    n_coded = len(pd.read_csv(CODED))
    assert (f"Combined 2 files: {n_coded + n_rev} answers; later files added {n_rev} answers and coded 0 of the "
            f"earlier files' answers again (0 labels changed).") in result.output
    new_meta = json.loads((model_dir / "metadata.json").read_text())
    assert new_meta["training"]["answers"] == meta["training"]["answers"] + n_rev
    human = pulled[codebook_.ids].astype(int).sum()
    for code in codebook_.ids:
        assert new_meta["training"]["positives"][code] == meta["training"]["positives"][code] + human[code]

    # Its scores on the reviewed answers moved towards the reviewer's codes.
    from opm_nlp.model.coding_model import CodingModel

    retrained = CodingModel.load(model_dir)
    before = tagged.set_index("response_id").loc[pulled["response_id"]]
    after = retrained.predict_proba(before["answer"].tolist())
    moves = {"added": [], "removed": []}
    for i, rid in enumerate(pulled["response_id"]):
        for j, code in enumerate(codebook_.ids):
            was, now = int(before.loc[rid, code]), int(pulled.iloc[i][code])
            if was != now:
                moves["added" if now else "removed"].append(after[i, j] - before.loc[rid, "score_" + code])
    assert moves["added"] and moves["removed"]
    assert np.mean(moves["added"]) > 0.05 and np.mean(moves["removed"]) < -0.05, moves


def test_pushing_again_adds_nothing_and_a_later_wave_adds_only_new_answers(label_studio, tagged_wave):
    env = label_studio["env"]
    for _ in range(2):
        result = run("review", "push", tagged_wave["wave1"], "--project", "Waves", "--model", DEFAULT_MODEL, env=env)
        assert result.exit_code == 0, result.output
    n1 = int(tagged_wave["tagged"].head(16)["answer"].ne("").sum())
    assert f"added 0 answers for review, {n1} were already there" in result.output
    result = run("review", "push", tagged_wave["wave2"], "--project", "Waves", "--model", DEFAULT_MODEL, env=env)
    n2 = int(tagged_wave["tagged"]["answer"].ne("").sum())
    assert f"existing): added {n2 - n1} answers for review, {n1} were already there" in result.output
    _, tasks = project_tasks(sdk(label_studio), "Waves")
    ids = [t.data["response_id"] for t in tasks]
    assert len(ids) == len(set(ids)) == n2


def test_wrong_key_is_one_line_and_never_shows_the_key(label_studio, tagged_wave):
    from opm_nlp.review.labelstudio_server import connect

    wrong = "wrong-" + secrets.token_hex(8)
    with pytest.raises(ServerError, match=r"Label Studio at http://127\.0\.0\.1:\d+ refused the API key \(HTTP 401\)\. "
                                          r"Copy your access token"):
        connect(label_studio["url"], wrong)
    result = run("review", "push", tagged_wave["wave1"], "--project", "x", "--model", DEFAULT_MODEL,
                 env={"LABEL_STUDIO_URL": label_studio["url"], "LABEL_STUDIO_API_KEY": wrong})
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "refused the API key (HTTP 401)" in result.output and wrong not in result.output
    result = run("review", "pull", "--project", "x", "--out", "x.csv", "--model", DEFAULT_MODEL,
                 "--url", label_studio["url"], "--api-key", wrong)
    assert result.exit_code == 1 and wrong not in result.output


def test_pull_unknown_project_and_other_codebook_are_clear_errors(tmp_path, label_studio, tagged_wave):
    from opm_nlp.review.labelstudio import pull_reviews
    from opm_nlp.review.labelstudio_server import connect

    server = connect(label_studio["url"], label_studio["key"])
    with pytest.raises(ReviewError, match=r"No project titled 'Nope' on http://127\.0\.0\.1:\d+\. Projects there: "
                                          r"\[.*\]\. Check --project \(review push creates it\)\."):
        pull_reviews(server, "Nope", parse_codebook("name: x\ncodes: [{id: a, label: A, definition: d}]"))
    result = run("review", "pull", "--project", "Nope", "--out", tmp_path / "r.csv", "--codebook", CODEBOOK,
                 env=label_studio["env"])
    assert result.exit_code == 1 and result.output.startswith("Error: No project titled 'Nope'")
    assert run("review", "push", tagged_wave["wave1"], "--project", "Mine", "--codebook", CODEBOOK,
               env=label_studio["env"]).exit_code == 0
    with pytest.raises(ReviewError, match=r"Project 'Mine' on .* uses other codes than the codebook \(only in the "
                                          r"project: \['active_communication'.*only in the codebook: \['a'\]\)"):
        pull_reviews(server, "Mine", parse_codebook("name: x\ncodes: [{id: a, label: A, definition: d}]"))
    result = run("review", "pull", "--project", "Mine", "--out", tmp_path / "r.csv", "--codebook", CODEBOOK,
                 env=label_studio["env"])
    assert result.exit_code == 1
    assert "No answer of project 'Mine' has been reviewed yet" in result.output


def test_server_accepts_the_interface_of_a_tricky_codebook(label_studio):
    from opm_nlp.review.labelstudio_config import label_config

    cb = parse_codebook("""
name: 'Tricky <codebook> & "quotes"'
codes:
  - {id: parent_code, label: 'Parent <b>bold</b> & co', definition: 'Costs $5 or $amount; 1 < 2'}
  - {id: child_code, label: Child, parent: parent_code, definition: 'A "child" code'}
  - {id: grandchild, label: 'Grand–child ü', parent: child_code, definition: '=cmd|x'}
""")
    project = sdk(label_studio).projects.create(title="tricky", label_config=label_config(cb))
    assert project.id


# -- spreadsheet review ----------------------------------------------------------------------------
def test_sheet_fill_read_back_and_train(tmp_path, tagged_wave, codebook_):
    from openpyxl import load_workbook

    from opm_nlp.model.reviewed import keep_reviewed
    from opm_nlp.codebook.coded import read_coded

    source = tagged_wave["tagged"].head(12).copy()
    source.loc[0, "answer"] = "=HYPERLINK(\"http://x\")"
    source.loc[1, "answer"] = "- listen more; + ask more"
    source.loc[[0, 1], "evidence_spans"] = ""  # answers changed by hand: their evidence no longer fits them
    tagged = tmp_path / "tagged.csv"
    source.to_csv(tagged, index=False)
    sheet = tmp_path / "review.xlsx"
    result = run("review", "sheet", tagged, "--out", sheet, "--model", DEFAULT_MODEL)
    assert result.exit_code == 0, result.output
    assert f"Review sheet with 12 answers (least certain first) written to {sheet}" in result.output

    book = load_workbook(sheet)
    assert book.sheetnames == ["answers", "codebook", "instructions"]
    answers = book["answers"]
    header = [c.value for c in answers[1]]
    assert header[:5] == ["response_id", "answer", EVIDENCE_COL, REVIEWED_COL, REVIEWER_COL]
    assert header[5:5 + len(codebook_)] == codebook_.ids
    assert {"suggested_codes", "uncertainty", MODEL_VERSION_COL, "score_goal_setting", "wave",
            EVIDENCE_SPANS_COL} <= set(header)
    validations = answers.data_validations.dataValidation
    assert len(validations) == 1 and validations[0].formula1 == '"0,1"'
    assert {"D2:D13", "F2:F13"} <= set(str(validations[0].sqref).split())  # reviewed and the first code
    assert answers["F1"].comment.text.startswith("Aligning expectations: The mentor articulates")
    # the evidence beside each answer quotes it, for each code suggested
    evidence = {answers.cell(row=r, column=1).value: (answers.cell(row=r, column=2).value or "",
                                                      answers.cell(row=r, column=3).value or "") for r in range(2, 14)}
    edited = set(source["response_id"].iloc[:2])  # their answers were changed above, their evidence not
    quoted = [(text, cell) for rid, (text, cell) in evidence.items() if cell and rid not in edited]
    assert quoted and all(cell.split(": ", 1)[1].split('"')[1] in text for text, cell in quoted)
    assert all(not cell for text, cell in evidence.values() if not text)
    texts = {c.value: c.data_type for c in answers["B"][1:]}
    assert texts["=HYPERLINK(\"http://x\")"] == "s" and texts["- listen more; + ask more"] == "s"
    column = {name: i + 1 for i, name in enumerate(header)}
    uncertainties = [answers.cell(row=r, column=column["uncertainty"]).value for r in range(2, 14)]
    n_empty = int(source["answer"].eq("").sum())
    assert n_empty and uncertainties[-n_empty:] == [None] * n_empty  # nothing to review: last
    assert uncertainties[:-n_empty] == sorted(uncertainties[:-n_empty], reverse=True)
    codebook_sheet = [[c.value for c in row] for row in book["codebook"].iter_rows()]
    assert codebook_sheet[0] == ["id", "label", "parent", "definition", "include", "exclude", "examples"]
    assert codebook_sheet[3][:3] == ["relationship_phases", "Phases of the relationship", "relationship_attention"]

    # The reviewer adds goal_setting to rows 2-5, marks rows 2-9 reviewed, and edits row 11 but forgets to mark it.
    goal = column["goal_setting"]
    for r in range(2, 6):
        answers.cell(row=r, column=goal).value = 1
    for r in range(2, 10):
        answers.cell(row=r, column=column[REVIEWED_COL]).value = 1
    answers.cell(row=2, column=column[REVIEWER_COL]).value = "AB"
    answers.cell(row=11, column=column["no_change"]).value = 1 - answers.cell(row=11, column=column["no_change"]).value
    book.save(sheet)

    coded = read_coded(sheet, codebook_, "answer", "response_id")
    assert len(coded) == 12 and coded["goal_setting"].iloc[:4].tolist() == [1, 1, 1, 1]
    kept, left_out, edited = keep_reviewed(coded, codebook_, str(sheet))
    assert (len(kept), left_out, edited) == (8, 4, 1)

    result = run("review", "stats", sheet, "--model", DEFAULT_MODEL)
    assert result.exit_code == 0, result.output
    added = int(sum(1 for r in range(4) if "goal_setting" not in str(coded["suggested_codes"].iloc[r])))
    assert f"changed them on {added}." in result.output and "goal_setting" in result.output

    model_dir = tmp_path / "kw"
    result = run("train", "--codebook", CODEBOOK, "--data", CODED, "--data", sheet, *COLS, "--out", model_dir,
                 "--method", "keyword", "--quiet")
    assert result.exit_code == 0, result.output
    assert (f"{sheet}: left out 4 answers not marked reviewed=1 (they hold model suggestions, not human codes); "
            f"1 of them have codes changed from the suggestion: mark them reviewed=1 if they are done.") in result.output
    meta = json.loads((model_dir / "metadata.json").read_text())
    n_coded = len(pd.read_csv(CODED))
    assert meta["training"]["answers"] + meta["training"]["empty_answers_skipped"] == n_coded + 8
    assert meta["training"]["positives"]["goal_setting"] == meta_before_goal(kept)


def meta_before_goal(kept: pd.DataFrame) -> int:
    """goal_setting positives among the answers with text of the coded file and the reviewed rows."""
    coded = pd.read_csv(CODED, dtype=str, keep_default_na=False)
    return int(coded.loc[coded["answer"].str.strip().ne(""), "goal_setting"].astype(int).sum()
               + kept.loc[kept["answer"].ne(""), "goal_setting"].sum())


def test_review_agreement_counts_kept_added_removed_and_kappa():
    from opm_nlp.classify.metrics import cohen_kappa
    from opm_nlp.review.common import review_agreement

    cb = parse_codebook("name: x\ncodes: [{id: a, label: A, definition: d}, {id: b, label: B, definition: d}]")
    frame = pd.DataFrame({
        "id": list("123456"), "text": list("uvwxyz"),
        REVIEWED_COL: [1, 1, 1, 1, 1, 0],
        "suggested_codes": ["a", "a; b", "", "b", "a", "a"],
        "a": [1, 0, 1, 0, 1, 0], "b": [0, 1, 0, 1, 0, 1],
    })
    table, summary = review_agreement(frame, cb)
    assert {k: summary[k] for k in ("reviewed", "changed", "accepted_share")} == {
        "reviewed": 5, "changed": 2, "accepted_share": 0.6}
    assert summary["reading"].startswith("How to read these: kappa and alpha are 1 for perfect agreement")
    assert table.loc["a", ["suggested", "kept", "removed", "added"]].tolist() == [3, 2, 1, 1]
    assert table.loc["a", "agreement"] == pytest.approx(0.6)
    assert table.loc["a", "kappa"] == pytest.approx(cohen_kappa([1, 1, 0, 0, 1], [1, 0, 1, 0, 1]))
    assert table.loc["b", ["kept", "removed", "added", "agreement"]].tolist() == [2, 0, 0, 1.0]
    # Krippendorff's nominal alpha by hand: 10 values (4 zeros, 6 ones), 2 disagreeing answers, each
    # adding 1 to both off-diagonal coincidences: 1 - (10 - 1) * 4 / (2 * 4 * 6)
    assert table.loc["a", "alpha"] == pytest.approx(0.25)
    assert table.loc["b", "alpha"] == 1.0
    assert table.loc["a", "kappa_low"] <= table.loc["a", "kappa"] <= table.loc["a", "kappa_high"]


def test_bad_reviewed_value_and_missing_suggestion_are_clear_errors():
    from opm_nlp.model.reviewed import keep_reviewed
    from opm_nlp.review.common import review_agreement

    cb = parse_codebook("name: x\ncodes: [{id: a, label: A, definition: d}]")
    frame = pd.DataFrame({"id": ["1", "2"], "text": ["u", "v"], REVIEWED_COL: [1, "maybe"], "a": [1, 0]})
    with pytest.raises(DataError, match=r"r\.csv: column 'reviewed', row 3: expected 0 or 1, found 'maybe'\."):
        keep_reviewed(frame, cb, "r.csv")
    with pytest.raises(ReviewError, match=r"r\.csv: no 'suggested_codes' column, so the model's suggestion is unknown"):
        review_agreement(frame.assign(reviewed=1), cb, "r.csv")


def test_review_stats_before_any_review_is_one_line(tmp_path, tagged_wave):
    sheet = tmp_path / "sheet.xlsx"
    assert run("review", "sheet", tagged_wave["wave1"], "--out", sheet, "--model", DEFAULT_MODEL).exit_code == 0
    result = run("review", "stats", sheet, "--model", DEFAULT_MODEL)
    assert result.exit_code == 1
    assert result.output == (f"Error: {sheet}: no answer is marked reviewed=1, so there are no reviews to compare "
                             f"with the suggestions yet. Set 'reviewed' to 1 on the rows people have checked.\n")


def test_audit_sample_in_label_studio_is_blind_and_pulled_with_its_design(tmp_path, label_studio, tagged_wave,
                                                                          codebook_):
    env = label_studio["env"]
    sample = ("review", "sample", tagged_wave["wave2"], "--n", 6, "--model", DEFAULT_MODEL, "--project", "Audit 2022")
    result = run(*sample, "--seed", 3, env=env)
    assert result.exit_code == 0, result.output
    assert "Project 'Audit 2022' (id " in result.output
    assert ", created, blind): added 6 answers, 0 were already there." in result.output
    client = sdk(label_studio)
    project, tasks = project_tasks(client, "Audit 2022")
    assert len(tasks) == 6 and not any(t.predictions for t in tasks)  # nothing pre-ticked
    design = tasks[0].data["audit_sample"]
    assert design.startswith("simple random sample of 6 of ") and "; seed 3; drawn " in design
    assert {t.data["audit_sample"] for t in tasks} == {design}
    assert set(tasks[0].data) == {"text", "response_id", "id_col", "text_col", "audit_sample"}  # no scores, no model
    assert "pre-ticked" not in project.label_config and "no suggestion is shown" in project.label_config
    assert run(*sample, "--seed", 3, env=env).output.count("added 0 answers, 6 were already there") == 1

    # suggestions never go into an audit project, and an audit never into a review project
    result = run("review", "push", tagged_wave["wave1"], "--project", "Audit 2022", "--model", DEFAULT_MODEL, env=env)
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "Project 'Audit 2022' on http://127.0.0.1:" in result.output and "holds an audit sample, coded blind" in result.output
    assert run("review", "push", tagged_wave["wave1"], "--project", "Suggestions", "--model", DEFAULT_MODEL,
               env=env).exit_code == 0
    result = run("review", "sample", tagged_wave["wave2"], "--n", 4, "--model", DEFAULT_MODEL, "--project",
                 "Suggestions", "--out", tmp_path / "audit.xlsx", env=env)
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "is a review project (the model's suggestions are pre-ticked there)" in result.output
    assert not (tmp_path / "audit.xlsx").exists()
    result = run(*sample, "--seed", 4, env=env)  # another draw: another design
    assert result.exit_code == 1 and "holds another audit sample (simple random sample of 6" in result.output

    # A coder codes four answers; pull writes the design on every row and no suggestion columns.
    coded = {}
    for i, task in enumerate(sorted(tasks, key=lambda t: t.id)[:4]):
        coded[task.data["response_id"]] = codebook_.ids[i:i + 2] if i < 3 else []
        client.annotations.create(id=task.id, result=[{"from_name": "codes", "to_name": "text", "type": "choices",
                                                       "value": {"choices": coded[task.data["response_id"]]}}])
    out = tmp_path / "audit.csv"
    result = run("review", "pull", "--project", "Audit 2022", "--out", out, "--model", DEFAULT_MODEL, env=env)
    assert result.exit_code == 0, result.output
    assert "Project 'Audit 2022' (audit sample, coded blind): 4 of 6 answers coded (2 not yet)." in result.output
    assert "kappa" not in result.output and "Every row keeps the audit's design in 'audit_sample'" in result.output
    pulled = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(pulled.columns) == ["response_id", "answer", REVIEWED_COL, REVIEWER_COL, REVIEWED_AT_COL,
                                    *codebook_.ids, REVIEWED_SPANS_COL, "audit_sample"]
    assert set(pulled["audit_sample"]) == {design} and set(pulled[REVIEWED_COL]) == {"1"}
    for _, line in pulled.iterrows():
        assert [c for c in codebook_.ids if line[c] == "1"] == coded[line["response_id"]]
    result = run("review", "pull", "--project", "Audit 2022", "--out", tmp_path / "all.csv", "--model",
                 DEFAULT_MODEL, "--include-unreviewed", env=env)
    assert "Wrote 6 rows (all answers (not yet coded: reviewed=0, no codes))" in result.output
    assert set(pd.read_csv(tmp_path / "all.csv", dtype=str)["audit_sample"]) == {design}


def test_review_next_in_label_studio_is_blind_keeps_the_order_picked_and_trains(tmp_path, label_studio, tagged_wave,
                                                                                codebook_):
    env = label_studio["env"]
    pick = ("review", "next", tagged_wave["wave2"], "--n", 5, "--model", DEFAULT_MODEL, "--seed", 2)
    result = run(*pick, "--project", "Next blind", "--out", tmp_path / "next.csv", env=env)
    assert result.exit_code == 0, result.output
    assert ", created, blind): added 5 answers, 0 were already there." in result.output
    client = sdk(label_studio)
    project, tasks = project_tasks(client, "Next blind")
    tasks = sorted(tasks, key=lambda t: t.id)
    picked = pd.read_csv(tmp_path / "next.csv", dtype=str)["response_id"].tolist()
    assert [t.data["response_id"] for t in tasks] == picked  # in the order picked
    assert not any(t.predictions for t in tasks)
    assert set(tasks[0].data) == {"text", "response_id", "id_col", "text_col", "next_batch"}
    assert "Picked to code next" in project.label_config and "no suggestion is shown" in project.label_config
    assert "added 0 answers, 5 were already there" in run(*pick, "--project", "Next blind", env=env).output

    # blind batches, audits and review projects never mix
    result = run("review", "push", tagged_wave["wave1"], "--project", "Next blind", "--model", DEFAULT_MODEL, env=env)
    assert result.exit_code == 1 and "holds answers picked by review next to code blind" in result.output
    result = run("review", "sample", tagged_wave["wave2"], "--n", 3, "--model", DEFAULT_MODEL, "--project",
                 "Next blind", env=env)
    assert result.exit_code == 1 and "an audit sample must never train it" in result.output
    assert run("review", "push", tagged_wave["wave1"], "--project", "Next shown", "--model", DEFAULT_MODEL,
               env=env).exit_code == 0
    result = run(*pick, "--project", "Next shown", "--out", tmp_path / "refused.xlsx", env=env)
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "is a review project (the model's suggestions are pre-ticked there); a blind batch" in result.output
    assert not (tmp_path / "refused.xlsx").exists()
    result = run(*pick, "--project", "Next shown", "--with-suggestions", env=env)
    assert result.exit_code == 0, result.output
    _, shown = project_tasks(client, "Next shown")
    assert all(t.predictions for t in shown)

    # coders code two answers; pull gives training data with no suggestion columns and no agreement
    for task in tasks[:2]:
        client.annotations.create(id=task.id, result=[{"from_name": "codes", "to_name": "text", "type": "choices",
                                                       "value": {"choices": codebook_.ids[:1]}}])
    out = tmp_path / "coded.csv"
    result = run("review", "pull", "--project", "Next blind", "--out", out, "--model", DEFAULT_MODEL, env=env)
    assert result.exit_code == 0, result.output
    assert "Coded blind (answers picked by review next)" in result.output and "kappa" not in result.output
    pulled = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(pulled.columns) == ["response_id", "answer", REVIEWED_COL, REVIEWER_COL, REVIEWED_AT_COL,
                                    *codebook_.ids, REVIEWED_SPANS_COL]
    assert sorted(pulled["response_id"]) == sorted(picked[:2]) and set(pulled[codebook_.ids[0]]) == {"1"}
