"""How far the exported fine-tuned network's scores are from PyTorch's, and how fast each runs.

Usage (from the repository root, after `make setup`; DIR is a model trained with `--fine-tune`):

    .venv/bin/python bench/bench_finetune_export.py --model DIR [--n 1500]

Scores the first ``--n`` answers of the NHS test split (../shared/data/nhs_fft, or --nhs DIR) with the
model's fine-tuned network run by PyTorch (float32, as when it was trained), by its ONNX float32 export
(what tagging uses) and by an int8 export made with the frozen network's quantisation recipe. Uses a
fresh cache folder, so every export is made (and timed apart from scoring). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--nhs", type=Path, default=ROOT.parent / "shared" / "data" / "nhs_fft")
    parser.add_argument("--n", type=int, default=1500)
    args = parser.parse_args()
    os.environ["OPM_NLP_CACHE_DIR"] = tempfile.mkdtemp(prefix="opm-bench-export-")

    import numpy as np
    from bench_quality import read_split

    from opm_nlp.embedding.encoder import Embedder
    from opm_nlp.model.folder import load_model_files

    head = getattr(load_model_files(args.model)[2], "fine_tuned_", None)
    if head is None:
        raise SystemExit(f"{args.model} was not trained with --fine-tune.")
    texts = read_split(args.nhs, "test")["text"].head(args.n).tolist()
    start = time.perf_counter()
    reference = head.decision_function(texts, backend="torch")
    rows = [("PyTorch float32", reference, time.perf_counter() - start)]
    weight, bias = head.head_
    for label, backend in (("ONNX float32 (tagging)", "onnx"), ("ONNX int8", "onnx-int8")):
        embedder = Embedder(str(head.network_folder()), backend=backend, cache=False)
        embedder.encode(["export and load the network first"])
        start = time.perf_counter()
        scores = embedder.encode(texts) * head.SCALE @ weight.T + bias
        rows.append((label, scores, time.perf_counter() - start))
    print(f"\n{len(texts)} NHS test answers, {reference.shape[1]} codes; SD of the PyTorch scores "
          f"{reference.std():.2f}\n")
    print("| network run by | mean \\|Δ score\\| vs PyTorch | scores that change side of 0 | time (s) |")
    print("|---|---:|---:|---:|")
    for label, scores, seconds in rows:
        delta = np.abs(scores - reference).mean()
        flips = (np.sign(scores) != np.sign(reference)).mean()
        print(f"| {label} | {delta:.2g} | {flips:.1%} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
