"""Shared fixtures: the shipped codebook and examples, and models trained once per test session."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest

# Tests never touch the user's embedding cache; one fresh cache per test session, removed at its end
# (it holds ONNX exports and fine-tuned networks: ~0.8 GB a run).
TEST_CACHE = tempfile.mkdtemp(prefix="opm-nlp-test-cache-")
os.environ["OPM_NLP_CACHE_DIR"] = TEST_CACHE


def pytest_unconfigure(config):
    shutil.rmtree(TEST_CACHE, ignore_errors=True)

ROOT = Path(__file__).resolve().parents[1]
CODEBOOK = ROOT / "codebook" / "opm_behavior_change.yaml"
CODED = ROOT / "examples" / "opm_coded_illustrative.csv"
NEW_WAVE = ROOT / "examples" / "opm_wave2022_illustrative.csv"


@pytest.fixture(scope="session")
def codebook():
    from opm_nlp import load_codebook

    return load_codebook(CODEBOOK)


@pytest.fixture(scope="session")
def coded(codebook) -> pd.DataFrame:
    from opm_nlp.codebook.coded import read_coded

    return read_coded(CODED, codebook, "answer", "response_id")


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory, codebook, coded) -> Path:
    """An embedding model trained on the illustrative coded answers, saved once."""
    from opm_nlp.model.coding_model import CodingModel

    folder = tmp_path_factory.mktemp("models") / "opm"
    CodingModel(codebook).fit(coded, "answer", sources=[CODED.name]).save(folder)
    return folder


@pytest.fixture()
def write_csv(tmp_path):
    """Write rows to a CSV in tmp_path and return its path."""

    def write(name: str, frame: pd.DataFrame | str, encoding: str = "utf-8") -> Path:
        path = tmp_path / name
        if isinstance(frame, str):
            path.write_bytes(frame.encode(encoding))
        else:
            frame.to_csv(path, index=False, encoding=encoding)
        return path

    return write
