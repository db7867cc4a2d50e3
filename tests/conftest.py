"""Shared fixtures: the shipped codebook and examples, models trained once per test session, and a Label
Studio server.

The Label Studio tests start ``label-studio`` from ``$OPM_NLP_LABEL_STUDIO`` (default
``.venv-ls/bin/label-studio`` in the repository) once per session; without it they are skipped, unless
``OPM_NLP_REQUIRE_LABEL_STUDIO=1`` (then they fail).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
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


LS_BINARY = Path(os.environ.get("OPM_NLP_LABEL_STUDIO") or ROOT / ".venv-ls" / "bin" / "label-studio")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory):
    """A fresh Label Studio on loopback, with its own data dir, HOME, user and API token."""
    if not LS_BINARY.is_file():
        reason = (f"Label Studio not installed at {LS_BINARY} (set OPM_NLP_LABEL_STUDIO, or: python3 -m venv "
                  f".venv-ls && .venv-ls/bin/pip install label-studio)")
        if os.environ.get("OPM_NLP_REQUIRE_LABEL_STUDIO") == "1":
            pytest.fail(reason + "; OPM_NLP_REQUIRE_LABEL_STUDIO=1 requires it.")
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("label-studio")
    (root / "home").mkdir()
    port = free_port()
    user, token, password = "reviewer@example.com", secrets.token_hex(20), secrets.token_hex(12)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO_")}
    env.update({
        "HOME": str(root / "home"), "LABEL_STUDIO_USERNAME": user, "LABEL_STUDIO_PASSWORD": password,
        "LABEL_STUDIO_USER_TOKEN": token, "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true", "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",
        "LABEL_STUDIO_COLLECT_ANALYTICS": "false", "LABEL_STUDIO_SENTRY_DSN": "",
        "LABEL_STUDIO_FRONTEND_SENTRY_DSN": "",
    })
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(
        [str(LS_BINARY), "start", "--internal-host", "127.0.0.1", "--port", str(port),
         "--data-dir", str(root / "data"), "--no-browser"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            if process.poll() is not None:
                pytest.fail(f"Label Studio exited ({process.returncode}): "
                            f"{(root / 'server.log').read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"Label Studio did not come up on {url} in 240 s: "
                            f"{(root / 'server.log').read_text(errors='replace')[-2000:]}")
            time.sleep(1)
        yield {"url": url, "key": token, "user": user, "password": password,
               "env": {"LABEL_STUDIO_URL": url, "LABEL_STUDIO_API_KEY": token}}
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
