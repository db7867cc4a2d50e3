"""How long default training takes on more, and longer, answers than the NHS benchmark has.

Usage (from the repository root, after `make setup`):

    .venv/bin/python bench/bench_training_time.py [--n 10000] [--nhs DIR] [--frozen] [--whole-answers]

Builds ``--n`` distinct answers from the NHS train split (../shared/data/nhs_fft), each joining two
real answers (so about twice as long) with the union of their codes, and trains the tool's default
pipeline on them (:class:`opm_nlp.model.coding_model.CodingModel`, as `opm-nlp train`) with a fresh embedding
cache. Prints the training time and how many answers and tokens the fine-tuned networks learned from
(fine-tuning reads at most ``opm_nlp.classify.finetune.MAX_TOKENS`` tokens per network). ``--frozen`` trains
with the network frozen instead (`--no-fine-tune`), to see what the rest of training costs. No figure of
quality: the joined answers are not real ones.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nhs", type=Path, default=ROOT.parent / "shared" / "data" / "nhs_fft")
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--frozen", action="store_true", help="train with the network frozen (--no-fine-tune)")
    parser.add_argument("--whole-answers", action="store_true",
                        help="score whole answers only, not also their sentences (--no-sentence-scores)")
    args = parser.parse_args()
    os.environ["OPM_NLP_CACHE_DIR"] = tempfile.mkdtemp(prefix="opm-bench-cache-")
    warnings.simplefilter("ignore")

    import numpy as np
    import pandas as pd
    from bench_quality import nhs_codebook, read_split

    from opm_nlp.classify import finetune
    from opm_nlp.model.coding_model import CodingModel

    codebook = nhs_codebook(args.nhs)
    train = read_split(args.nhs, "train")
    train = train[train["text"].str.strip().ne("")].reset_index(drop=True)
    rng = np.random.default_rng(0)
    first, second = rng.integers(0, len(train), 3 * args.n), rng.integers(0, len(train), 3 * args.n)
    joined = pd.DataFrame({"text": train["text"].to_numpy()[first] + " " + train["text"].to_numpy()[second]})
    codes = train[codebook.ids].to_numpy()
    joined[codebook.ids] = codes[first] | codes[second]
    joined = joined.drop_duplicates("text").head(args.n).reset_index(drop=True)

    learned = []
    fit = finetune.FineTunedHead.fit

    def recording_fit(self, texts, Y, **kwargs):
        learned.append((len(texts), int(finetune.token_lengths(texts, self.model, self.max_length).sum())))
        return fit(self, texts, Y, **kwargs)

    finetune.FineTunedHead.fit = recording_fit
    tokens = int(finetune.token_lengths(joined["text"].tolist()).sum())
    start = time.perf_counter()
    model = CodingModel(codebook, fine_tune=0 if args.frozen else None, sentences=not args.whole_answers)
    model.fit(joined, "text")
    seconds = time.perf_counter() - start
    print(f"\n{len(joined):,} joined NHS answers ({tokens:,} tokens, {tokens / len(joined):.0f} per answer), "
          f"{len(codebook)} codes: {'training with the network frozen' if args.frozen else 'default training'}"
          f"{', whole answers only' if args.whole_answers else ''} "
          f"{seconds:.0f} s, fine-tuning "
          f"{model.metadata['embedding']['fine_tune_epochs']} epochs.\n")
    if learned:
        print("| network | answers learned from | tokens |\n|---|---:|---:|")
    for name, (n, t) in zip(("first half's", "second half's", "final"), learned):
        print(f"| {name} | {n:,} | {t:,} |")


if __name__ == "__main__":
    main()
