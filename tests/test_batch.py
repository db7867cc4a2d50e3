import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from opm_nlp.exceptions import DataError
from opm_nlp.io.responses import read_responses
from opm_nlp.model.batch import tag_file
from opm_nlp.model.coding_model import CodingModel
from opm_nlp.model.dask_tagging import tag_dataframe
from opm_nlp.model.options import TagOptions

from .conftest import CODED, NEW_WAVE, ROOT

COLS = ("answer", "response_id")


@pytest.fixture(scope="module")
def reference(trained_dir):
    """The new wave tagged in one piece, in memory."""
    frame = read_responses(NEW_WAVE, *COLS)
    return CodingModel.load(trained_dir).tag(frame, *COLS)


def read_csv(path):
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".xlsx"])
def test_chunked_tagging_equals_tagging_in_one_piece(tmp_path, trained_dir, reference, suffix):
    out = tmp_path / f"tagged{suffix}"
    summary = tag_file(trained_dir, NEW_WAVE, out, TagOptions(*COLS, chunk_size=40, progress=False))
    assert (summary.answers, summary.empty) == (175, 3)
    assert summary.needs_review == int(reference["needs_review"].sum())
    if suffix == ".csv":
        expected = tmp_path / "expected.csv"
        reference.to_csv(expected, index=False)
        assert out.read_text() == expected.read_text()
    else:
        back = pd.read_parquet(out) if suffix == ".parquet" else pd.read_excel(out, dtype={"response_id": str})
        assert back["response_id"].tolist() == reference["response_id"].tolist()
        assert back["suggested_codes"].fillna("").tolist() == reference["suggested_codes"].tolist()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "expected.csv") == [out.name]


def test_progress_rate_counts_the_first_chunk(tmp_path, trained_dir, capsys, monkeypatch):
    import re

    tag = CodingModel.tag

    def slow_tag(self, *args, **kwargs):
        time.sleep(0.5)
        return tag(self, *args, **kwargs)

    monkeypatch.setattr(CodingModel, "tag", slow_tag)
    summary = tag_file(trained_dir, NEW_WAVE, tmp_path / "t.csv", TagOptions(*COLS, chunk_size=1000, progress=True))
    shown = re.findall(r"([\d.]+)answer/s", capsys.readouterr().err)
    # one chunk, tagged before the bar opens: timed from there, 175 answers looked like ~800,000 a second
    assert shown and float(shown[-1]) <= summary.answers / 0.5


def test_duplicate_id_in_a_later_chunk_is_an_error_and_leaves_nothing(tmp_path, trained_dir):
    frame = pd.read_csv(NEW_WAVE, dtype=str, keep_default_na=False)
    frame.loc[150, "response_id"] = frame.loc[3, "response_id"]
    frame.to_csv(tmp_path / "dup.csv", index=False)
    with pytest.raises(DataError, match=r"response id 'W22-0004' appears more than once \(row 5 and row 152\)"):
        tag_file(trained_dir, tmp_path / "dup.csv", tmp_path / "out.csv", TagOptions(*COLS, chunk_size=40, progress=False))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dup.csv"]


def test_kill_9_then_resume_gives_the_uninterrupted_output(tmp_path, trained_dir):
    big = pd.concat([pd.read_csv(CODED, dtype=str, keep_default_na=False)] * 3, ignore_index=True)
    big["response_id"] = [f"B{i:05d}" for i in range(len(big))]
    big.to_csv(tmp_path / "big.csv", index=False)
    expected = tmp_path / "expected.csv"
    tag_file(trained_dir, tmp_path / "big.csv", expected, TagOptions(*COLS, chunk_size=100, progress=False))

    out = tmp_path / "out.csv"
    command = [sys.executable, "-m", "opm_nlp", "tag", str(trained_dir), str(tmp_path / "big.csv"), "--text-col",
               "answer", "--id-col", "response_id", "--out", str(out), "--chunk-size", "100", "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work = tmp_path / ".out.csv.partial"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(work.glob("part-*.parquet"))) < 2:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    saved = len(list(work.glob("part-*.parquet")))
    assert 2 <= saved < 12 and not out.exists()

    refused = subprocess.run(command, capture_output=True, text=True)
    assert refused.returncode == 1 and "Pass --resume to continue it" in refused.stderr

    resumed = subprocess.run(command + ["--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed after {saved} saved chunks" in resumed.stdout
    assert out.read_bytes() == expected.read_bytes()
    assert not work.exists()


def test_resume_refuses_a_changed_input(tmp_path, trained_dir):
    source = tmp_path / "in.csv"
    pd.read_csv(NEW_WAVE, dtype=str, keep_default_na=False).to_csv(source, index=False)
    work = tmp_path / ".out.csv.partial"
    work.mkdir()
    (work / "manifest.json").write_text("{}")
    with pytest.raises(DataError, match=r"Cannot resume from .*: it was started with a different .*input"):
        tag_file(trained_dir, source, tmp_path / "out.csv", TagOptions(*COLS, progress=False), resume=True)


def test_dask_engine_logs_nothing_unless_asked(tmp_path, trained_dir):
    command = [sys.executable, "-m", "opm_nlp", "tag", str(trained_dir), str(NEW_WAVE), "--text-col", COLS[0],
               "--id-col", COLS[1], "--out", str(tmp_path / "t.csv"), "--engine", "dask"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert "INFO distributed" not in result.stderr, result.stderr
    assert "Tagged 175 answers" in result.stdout


def test_dask_engine_and_dataframe_api_match_the_local_run(tmp_path, trained_dir, reference):
    import dask.dataframe as dd

    out = tmp_path / "dask.csv"
    tag_file(trained_dir, NEW_WAVE, out, TagOptions(*COLS, chunk_size=60, engine="dask", progress=False))
    expected = tmp_path / "expected.csv"
    reference.to_csv(expected, index=False)
    assert out.read_text() == expected.read_text()

    answers = dd.from_pandas(read_responses(NEW_WAVE, *COLS), npartitions=3)
    tagged = tag_dataframe(answers, trained_dir, *COLS).compute(scheduler="synchronous")
    pd.testing.assert_frame_equal(tagged.reset_index(drop=True), reference, check_dtype=False)
    # the workers use the review margin of the run, not only the model's
    wide = tag_dataframe(answers, trained_dir, *COLS, review_margin=0.3).compute(scheduler="synchronous")
    expected = CodingModel.load(trained_dir).tag(read_responses(NEW_WAVE, *COLS), *COLS, review_margin=0.3)
    pd.testing.assert_frame_equal(wide.reset_index(drop=True), expected, check_dtype=False)
    assert wide["needs_review"].sum() > reference["needs_review"].sum()


def _interrupt_after(monkeypatch, chunks: int) -> None:
    """Make tagging stop, as Ctrl-C would, when it reaches chunk number ``chunks`` (from 0)."""
    tag, calls = CodingModel.tag, []

    def stopping_tag(self, *args, **kwargs):
        if len(calls) == chunks:
            raise KeyboardInterrupt
        calls.append(1)
        return tag(self, *args, **kwargs)

    monkeypatch.setattr(CodingModel, "tag", stopping_tag)


def test_resume_is_refused_with_other_options_and_then_equals_an_uninterrupted_run(tmp_path, trained_dir, reference,
                                                                                   monkeypatch):
    out, work = tmp_path / "out.csv", tmp_path / ".out.csv.partial"
    options = TagOptions(*COLS, chunk_size=40, progress=False)
    with monkeypatch.context() as patch:
        _interrupt_after(patch, 2)
        with pytest.raises(KeyboardInterrupt):
            tag_file(trained_dir, NEW_WAVE, out, options)
    assert len(list(work.glob("part-*.parquet"))) == 2 and not out.exists()

    with pytest.raises(DataError, match=r"An interrupted run left .*\.out\.csv\.partial\. Pass --resume"):
        tag_file(trained_dir, NEW_WAVE, out, options)
    for changed, name in ((dict(review_margin=0.3), "review_margin"), (dict(chunk_size=50), "chunk_size"),
                          (dict(carry=["wave"]), "carry"), (dict(backend="torch"), "backend")):
        with pytest.raises(DataError, match=rf"Cannot resume from .*: it was started with a different {name}\. "
                                            r"Run the original command again"):
            tag_file(trained_dir, NEW_WAVE, out, replace(options, **changed), resume=True)
    # progress only changes how the run goes: the resumed run may change it
    summary = tag_file(trained_dir, NEW_WAVE, out, replace(options, progress=True), resume=True)
    assert summary.resumed_chunks == 2 and (summary.answers, summary.empty) == (175, 3)
    expected = tmp_path / "expected.csv"
    reference.to_csv(expected, index=False)
    assert out.read_text() == expected.read_text() and not work.exists()


def test_tag_options_round_trip_through_the_resume_record(tmp_path, trained_dir, monkeypatch):
    options = TagOptions(*COLS, carry=["wave", "role"], chunk_size=40, review_margin=0.2, cache=False,
                         progress=False)
    with monkeypatch.context() as patch:
        _interrupt_after(patch, 1)
        with pytest.raises(KeyboardInterrupt):
            tag_file(trained_dir, NEW_WAVE, tmp_path / "out.csv", options)
    record = json.loads((tmp_path / ".out.csv.partial" / "manifest.json").read_text())
    assert not {"cache", "scheduler", "progress"} & set(record)  # how the run goes, not what it writes
    back = TagOptions.from_record(record, cache=False, progress=False)
    # what the model decides is recorded as decided: the model's backend (the margin was given)
    assert back == replace(options, backend=CodingModel.load(trained_dir).backend)
    assert back.carry == ("wave", "role")
    assert TagOptions.from_record(json.loads(json.dumps(options.record())), cache=False, progress=False) == options


@pytest.mark.parametrize("changed, message", [
    (dict(review_margin=2), r"--review-margin must be between 0 and 1; got 2"),
    (dict(chunk_size=0), r"--chunk-size must be at least 1; got 0"),
    (dict(engine="spark"), r"Unknown engine 'spark'\. Use one of \['local', 'dask'\]"),
])
def test_tag_options_out_of_range_are_clear_errors(changed, message):
    with pytest.raises(DataError, match=message):
        TagOptions(*COLS, **changed)


SHIPPED = ROOT / "models" / "opm_default"


def test_an_answer_gets_the_same_scores_in_any_file_chunk_cache_or_engine(tmp_path):
    """The illustrative wave tagged with the shipped model in one file, in 20-row files, with a cold and
    a warm embedding cache, and with the dask engine: byte-identical output, bitwise-identical scores."""
    def tag(source, out, **options):
        model = CodingModel.load(SHIPPED, cache=options.get("cache", True))
        tag_file(SHIPPED, source, out, TagOptions(*COLS, progress=False, **options), model=model)
        return read_csv(out), model.embedder.encoded_count

    whole, _ = tag(NEW_WAVE, tmp_path / "whole.csv", cache=False)
    wave = read_csv(NEW_WAVE)
    parts = []
    for start in range(0, len(wave), 20):
        wave.iloc[start:start + 20].to_csv(tmp_path / f"rows{start}.csv", index=False)
        parts.append(tag(tmp_path / f"rows{start}.csv", tmp_path / f"tagged{start}.csv")[0])  # fills the cache
    warm, encoded = tag(NEW_WAVE, tmp_path / "warm.csv", chunk_size=40)
    assert encoded == 0  # every answer and sentence came from the cache the 20-row files filled
    dask, _ = tag(NEW_WAVE, tmp_path / "dask.csv", cache=False, chunk_size=60, engine="dask")
    for other in (pd.concat(parts, ignore_index=True), warm, dask):
        pd.testing.assert_frame_equal(other, whole)
    assert (tmp_path / "warm.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()

    # the unrounded scores, bitwise: all answers at once, 20 at a time, and one alone
    texts = read_responses(NEW_WAVE, *COLS)["answer"].tolist()
    texts = [t for t in texts if t.strip()]
    at_once = CodingModel.load(SHIPPED, cache=False).predict_proba(texts)
    by_twenty = np.concatenate([CodingModel.load(SHIPPED, cache=False).predict_proba(texts[i:i + 20])
                                for i in range(0, len(texts), 20)])
    alone = CodingModel.load(SHIPPED, cache=False).predict_proba(texts[1:2])
    assert np.array_equal(at_once, by_twenty) and np.array_equal(at_once[1:2], alone)


def test_tag_file_reads_the_sheet_of_its_options_and_records_it(tmp_path, trained_dir, reference, monkeypatch):
    workbook = tmp_path / "answers.xlsx"
    with pd.ExcelWriter(workbook) as writer:
        pd.DataFrame({"note": ["exported answers"]}).to_excel(writer, sheet_name="About", index=False)
        read_csv(NEW_WAVE).to_excel(writer, sheet_name="answers", index=False)
    out = tmp_path / "out.csv"
    options = TagOptions(*COLS, sheet="answers", chunk_size=40, progress=False)
    assert options.record()["sheet"] == "answers"
    with monkeypatch.context() as patch:
        _interrupt_after(patch, 1)
        with pytest.raises(KeyboardInterrupt):
            tag_file(trained_dir, workbook, out, options)
    with pytest.raises(DataError, match=r"it was started with a different sheet\."):
        tag_file(trained_dir, workbook, out, replace(options, sheet="About"), resume=True)
    summary = tag_file(trained_dir, workbook, out, options, resume=True)
    assert (summary.answers, summary.empty) == (175, 3)
    assert read_csv(out)["response_id"].tolist() == reference["response_id"].tolist()


def test_tag_file_refuses_to_write_over_its_input(tmp_path, trained_dir):
    answers = tmp_path / "answers.csv"
    answers.write_bytes(NEW_WAVE.read_bytes())
    with pytest.raises(DataError, match=r"^The output .*answers\.csv is the input file .*answers\.csv; writing it "
                                        r"would replace the input\. Pass another --out\.$"):
        tag_file(trained_dir, answers, tmp_path / "." / "answers.csv", TagOptions(*COLS, progress=False))
    assert answers.read_bytes() == NEW_WAVE.read_bytes()
