import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from opm_nlp.model.batch import tag_dataframe, tag_file
from opm_nlp.model.coding_model import CodingModel
from opm_nlp.exceptions import DataError
from opm_nlp.io.responses import read_responses

from .conftest import CODED, NEW_WAVE

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
    summary = tag_file(trained_dir, NEW_WAVE, out, *COLS, chunk_size=40, progress=False)
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
    summary = tag_file(trained_dir, NEW_WAVE, tmp_path / "t.csv", *COLS, chunk_size=1000, progress=True)
    shown = re.findall(r"([\d.]+)answer/s", capsys.readouterr().err)
    # one chunk, tagged before the bar opens: timed from there, 175 answers looked like ~800,000 a second
    assert shown and float(shown[-1]) <= summary.answers / 0.5


def test_duplicate_id_in_a_later_chunk_is_an_error_and_leaves_nothing(tmp_path, trained_dir):
    frame = pd.read_csv(NEW_WAVE, dtype=str, keep_default_na=False)
    frame.loc[150, "response_id"] = frame.loc[3, "response_id"]
    frame.to_csv(tmp_path / "dup.csv", index=False)
    with pytest.raises(DataError, match=r"response id 'W22-0004' appears more than once \(row 5 and row 152\)"):
        tag_file(trained_dir, tmp_path / "dup.csv", tmp_path / "out.csv", *COLS, chunk_size=40, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dup.csv"]


def test_kill_9_then_resume_gives_the_uninterrupted_output(tmp_path, trained_dir):
    big = pd.concat([pd.read_csv(CODED, dtype=str, keep_default_na=False)] * 3, ignore_index=True)
    big["response_id"] = [f"B{i:05d}" for i in range(len(big))]
    big.to_csv(tmp_path / "big.csv", index=False)
    expected = tmp_path / "expected.csv"
    tag_file(trained_dir, tmp_path / "big.csv", expected, *COLS, chunk_size=100, progress=False)

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
        tag_file(trained_dir, source, tmp_path / "out.csv", *COLS, resume=True, progress=False)


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
    tag_file(trained_dir, NEW_WAVE, out, *COLS, chunk_size=60, engine="dask", progress=False)
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


def test_resume_refuses_another_review_margin(tmp_path, trained_dir):
    from opm_nlp.model import batch

    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    pd.read_csv(NEW_WAVE, dtype=str, keep_default_na=False).to_csv(source, index=False)
    model = CodingModel.load(trained_dir)
    work = tmp_path / ".out.csv.partial"
    work.mkdir()
    manifest = batch._manifest(trained_dir, model, source, *COLS, None, 2000, None, "local", model.review_margin)
    (work / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=r"it was started with a different review_margin\."):
        tag_file(trained_dir, source, out, *COLS, resume=True, progress=False, model=model, review_margin=0.3)
    with pytest.raises(DataError, match=r"--review-margin must be between 0 and 1; got 2"):
        tag_file(trained_dir, source, out, *COLS, progress=False, model=model, review_margin=2)
