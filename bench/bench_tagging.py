"""Speed, memory and cache benchmark of batch tagging (issue 6). Results go in docs/benchmarks.md.

Usage (from the repository root, after `make setup`):

    .venv/bin/python bench/bench_tagging.py [--n-large 50000] [--n-small 2000] [--n-speed 2000]

Answers are built from the NHS Friends and Family Test benchmark (../shared/data/nhs_fft, or
--nhs DIR): each synthetic answer joins two real answers, so that all answers are distinct (identical
texts would be embedded once and flatter the figures). Every measurement runs the real `opm-nlp`
command or the library in a fresh process with its own empty embedding cache, unless it is the
warm-cache measurement. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def make_answers(nhs: Path, n: int, seed: int = 0) -> pd.DataFrame:
    texts = pd.concat([pd.read_csv(nhs / "train.csv"), pd.read_csv(nhs / "test.csv")])["text"].astype(str).tolist()
    rng = np.random.default_rng(seed)
    first, second = rng.integers(0, len(texts), n), rng.integers(0, len(texts), n)
    answers = [f"{texts[i]} {texts[j]}" for i, j in zip(first, second)]
    frame = pd.DataFrame({"response_id": [f"A{i:06d}" for i in range(n)], "answer": answers,
                          "wave": rng.choice(["2023", "2024"], n)})
    return frame.drop_duplicates("answer").head(n)


def run(command: list[str], cache_dir: Path) -> tuple[float, float]:
    """Wall time (s) and peak RSS (MB) of a command in a fresh process."""
    env = dict(os.environ, OPM_NLP_CACHE_DIR=str(cache_dir))
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{' '.join(command)} failed: {process.stderr.read().decode()[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024


ENCODE_SNIPPET = """
import json, sys, time
import pandas as pd
from opm_nlp.embedding.encoder import Embedder
texts = pd.read_csv(sys.argv[1], dtype=str, keep_default_na=False)["answer"].tolist()
embedder = Embedder(backend=sys.argv[2], cache=False, layers=int(sys.argv[3]))
embedder.encode(["warm up the model"])
start = time.perf_counter()
embedder.encode(texts)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""

TAG_SNIPPET = """
import json, sys, time
from opm_nlp.model.batch import tag_file
from opm_nlp.model.coding_model import CodingModel
from opm_nlp.model.options import TagOptions
model = CodingModel.load(sys.argv[1], backend=sys.argv[4], cache=False)
model.embedder.encode(["warm up the model"])
fine_tuned = getattr(model.classifier, "fine_tuned_", None)
if fine_tuned is not None:
    fine_tuned.decision_function(["warm up the model"], cache=False)
start = time.perf_counter()
tag_file(sys.argv[1], sys.argv[2], sys.argv[3],
         TagOptions("answer", "response_id", backend=sys.argv[4], cache=False, progress=False), model=model)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


SPACY_SNIPPET = """
import json, time
start = time.perf_counter()
from opm_nlp.embedding.segment import sentencizer
sentencizer()
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def timed_snippet(snippet: str, args: list[str], cache_dir: Path) -> float:
    env = dict(os.environ, OPM_NLP_CACHE_DIR=str(cache_dir))
    out = subprocess.run([PYTHON, "-c", snippet, *args], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nhs", type=Path, default=ROOT.parent / "shared" / "data" / "nhs_fft")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "opm_default")
    parser.add_argument("--n-large", type=int, default=50000)
    parser.add_argument("--n-small", type=int, default=2000)
    parser.add_argument("--n-speed", type=int, default=2000)
    parser.add_argument("--backends", default="torch,onnx,onnx-int8")
    parser.add_argument("--speed-only", action="store_true", help="only `tag` vs the raw encoder (no memory runs)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="opm-bench-"))
    onnx_cache = work / "onnx-cache"  # exports made once, shared by the speed runs (not an embedding cache)
    results: dict[str, float] = {}
    speed = work / "speed.csv"
    make_answers(args.nhs, args.n_speed, seed=1).to_csv(speed, index=False)
    n_speed = len(pd.read_csv(speed))

    # 0. CLI start-up: `opm-nlp --help`, median of 7 runs
    startup = sorted(run([PYTHON, "-m", "opm_nlp", "--help"], work / "cache-startup")[0] for _ in range(7))[3]
    results["startup_s"] = startup

    # 1. raw encoder vs tag throughput, per backend, same answers, no embedding cache; the encoder pools
    # as many layers as the model describes answers by
    layers = json.loads((args.model / "metadata.json").read_text())["embedding"].get("layers", 1)
    for backend in args.backends.split(","):
        encode_s = timed_snippet(ENCODE_SNIPPET, [str(speed), backend, str(layers)], onnx_cache)
        tag_s = timed_snippet(TAG_SNIPPET, [str(args.model), str(speed), str(work / f"tag-{backend}.csv"), backend],
                              onnx_cache)
        results[f"encode_per_s[{backend}]"] = n_speed / encode_s
        results[f"tag_per_s[{backend}]"] = n_speed / tag_s
        print(f"{backend}: encoder {n_speed / encode_s:.0f}/s, tag {n_speed / tag_s:.0f}/s", file=sys.stderr)

    # what `tag` pays once beside the network: importing spaCy and building its sentencizer, median of 3
    results["spacy_load_s"] = sorted(timed_snippet(SPACY_SNIPPET, [], onnx_cache) for _ in range(3))[1]

    # 2. peak RSS, 50,000 vs 2,000 answers, the `opm-nlp tag` command, default chunk size
    for label, n in () if args.speed_only else (("small", args.n_small), ("large", args.n_large)):
        path = work / f"{label}.csv"
        make_answers(args.nhs, n, seed=2).to_csv(path, index=False)
        cache = work / f"cache-{label}"
        # the one-time ONNX export is not what is measured: each run starts with it, and with no embeddings
        shutil.copytree(onnx_cache / "onnx", cache / "onnx")
        if (onnx_cache / "fine-tuned").is_dir():  # a model trained with --fine-tune: its network, written once
            shutil.copytree(onnx_cache / "fine-tuned", cache / "fine-tuned")
        command = [PYTHON, "-m", "opm_nlp", "tag", str(args.model), str(path), "--text-col", "answer", "--id-col",
                   "response_id", "--out", str(work / f"out-{label}.csv"), "--quiet"]
        seconds, rss = run(command, cache)
        results[f"rss_mb[{label}]"] = rss
        results[f"seconds[{label}]"] = seconds
        results[f"n[{label}]"] = len(pd.read_csv(path))
        print(f"{label}: {seconds:.1f} s, peak RSS {rss:.0f} MB", file=sys.stderr)
        warm_s, _ = run(command, cache)  # the same answers again: embeddings from the cache
        results[f"seconds[{label}, warm cache]"] = warm_s
        print(f"{label} again with a warm cache: {warm_s:.1f} s", file=sys.stderr)

    backends = args.backends.split(",")
    print("\n| measure | value | target |\n|---|---:|---|")
    print(f"| `python -m opm_nlp --help`, median of 7 (s) | {results['startup_s']:.2f} | < 0.5 |")
    for backend in backends:
        print(f"| raw encoder, {backend} (answers/s) | {results[f'encode_per_s[{backend}]']:.0f} | |")
        print(f"| `tag`, {backend} (answers/s) | {results[f'tag_per_s[{backend}]']:.0f} | |")
        ratio = results[f"tag_per_s[{backend}]"] / results[f"encode_per_s[{backend}]"]
        print(f"| `tag` ÷ raw encoder, {backend} | {ratio:.2f} | ≥ 0.9 |")
    print(f"| loading spaCy's sentencizer, once per `tag` run (s) | {results['spacy_load_s']:.2f} | |")
    if "onnx-int8" in backends and "torch" in backends:
        print(f"| onnx-int8 ÷ torch, `tag` throughput | "
              f"{results['tag_per_s[onnx-int8]'] / results['tag_per_s[torch]']:.2f} | ≥ 2 |")
    if args.speed_only:
        print(f"\nWork folder: {work}", file=sys.stderr)
        return
    print(f"| peak RSS, {results['n[large]']:,} answers (MB) | {results['rss_mb[large]']:.0f} | |")
    print(f"| peak RSS, {results['n[small]']:,} answers (MB) | {results['rss_mb[small]']:.0f} | |")
    print(f"| peak RSS ratio, {results['n[large]']:,} ÷ {results['n[small]']:,} | "
          f"{results['rss_mb[large]'] / results['rss_mb[small]']:.2f} | ≤ 1.15 |")
    for label in ("small", "large"):
        n = results[f"n[{label}]"]
        cold, warm = results[f"seconds[{label}]"], results[f"seconds[{label}, warm cache]"]
        print(f"| `opm-nlp tag`, {n:,} answers, cold cache (s) | {cold:.1f} | |")
        print(f"| the same, warm cache (s) | {warm:.1f} | |")
        print(f"| warm ÷ cold, {n:,} answers | {warm / cold:.2f} | ≤ 0.1 |")
    print(f"\nWork folder: {work}", file=sys.stderr)


if __name__ == "__main__":
    main()
