"""Is fine-tuning the embedding network worth it, and for how many epochs? Train split only.

Usage (from the repository root, after `make setup`):

    .venv/bin/python bench/bench_finetune.py [--nhs DIR] [--epochs 0,1,2] [--sizes 400,all]

The tool's pipeline (:class:`opm_nlp.model.coding_model.CodingModel`, as `opm-nlp train [--fine-tune]`) is trained on
answers drawn from four fifths of the NHS ``train.csv`` and scored on the other fifth, with the network
frozen (0 epochs) and fine-tuned for each number of epochs. The test split is not used. Results go in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_quality import held_out_fifth, nhs_codebook, read_split  # noqa: E402

from opm_nlp.model.coding_model import CodingModel  # noqa: E402
from opm_nlp.classify.metrics import agreement_table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nhs", type=Path, default=ROOT.parent / "shared" / "data" / "nhs_fft")
    parser.add_argument("--epochs", default="0,1,2", help="comma-separated epochs (0: frozen network)")
    parser.add_argument("--sizes", default="400,all", help="comma-separated numbers of coded answers, or 'all'")
    args = parser.parse_args()
    os.environ.setdefault("OPM_NLP_CACHE_DIR", tempfile.mkdtemp(prefix="opm-bench-cache-"))
    warnings.simplefilter("ignore")
    codebook = nhs_codebook(args.nhs)
    train = read_split(args.nhs, "train")
    pool, held = held_out_fifth(train, codebook)
    Y = held[codebook.ids].to_numpy()
    print(f"Held-out fifth of train: {len(held)} answers.\n\n| coded answers | fine-tuning epochs | micro-F1 | "
          f"macro-F1 | fit (s) |\n|---:|---:|---:|---:|---:|", flush=True)
    for size in args.sizes.split(","):
        coded = pool if size == "all" else pool.sample(int(size), random_state=0)
        for epochs in (int(e) for e in args.epochs.split(",")):
            start = time.perf_counter()
            model = CodingModel(codebook, fine_tune=epochs).fit(coded, "text")
            seconds = time.perf_counter() - start
            predicted = (model.predict_proba(held["text"].tolist()) >= model.thresholds).astype(int)
            table = agreement_table(Y, predicted, codebook.ids)
            print(f"| {len(coded)} | {epochs} | {table.loc['micro', 'f1']:.3f} | {table.loc['macro', 'f1']:.3f} | "
                  f"{seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
