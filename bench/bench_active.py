"""Which answers to code next (issue 20): answers picked by `review next` versus at random.

Usage (from the repository root, after `make setup`):

    .venv/bin/python bench/bench_active.py [--seeds 0,1,2] [--start 100] [--step 100] [--stop 1000] [--nhs DIR]

On the NHS benchmark (../shared/data/nhs_fft, fixed split): start from ``--start`` answers of train.csv
drawn at random, then add ``--step`` answers at a time up to ``--stop``, either picked by
:func:`opm_nlp.review.next_batch.pick_next_batch` (what `opm-nlp review next` runs, blind, with the model
trained on the answers coded so far) or drawn at random from the rest of train.csv. After every step the
model (the default pipeline with the network frozen, `train --no-fine-tune`, so neither order crosses
the fine-tuning threshold; codebook examples on) is trained on the answers coded so far and scored on
test.csv. Both orders share the start and the training settings; each seed draws another start and
another random order. Embeddings come from the on-disk cache ($OPM_NLP_CACHE_DIR).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_quality import nhs_codebook, read_split  # noqa: E402

from opm_nlp.classify.decision import suggest  # noqa: E402
from opm_nlp.classify.metrics import agreement_table  # noqa: E402
from opm_nlp.model.coding_model import CodingModel  # noqa: E402
from opm_nlp.review.next_batch import pick_next_batch  # noqa: E402


def score(train: pd.DataFrame, test: pd.DataFrame, codebook) -> tuple[CodingModel, float, float]:
    """Train the frozen default on ``train``; micro- and macro-F1 on ``test``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = CodingModel(codebook, fine_tune=0).fit(train, "text")
    predicted = suggest(model.decision, model.predict_proba(test["text"].tolist()))[0].astype(int)
    table = agreement_table(test[codebook.ids].to_numpy(), predicted, codebook.ids)
    return model, float(table.loc["micro", "f1"]), float(table.loc["macro", "f1"])


def run_seed(seed: int, train: pd.DataFrame, test: pd.DataFrame, codebook, sizes: list[int]) -> list[dict]:
    rng = np.random.default_rng(seed)
    start = rng.choice(len(train), size=sizes[0], replace=False)
    rows = []
    first = None
    for order in ("random", "active"):
        chosen = list(start)
        for size in sizes:
            begun = time.perf_counter()
            if size == sizes[0] and first is not None:
                model, micro, macro = first
            else:
                model, micro, macro = score(train.iloc[chosen], test, codebook)
                first = first or (model, micro, macro)
            positives = int(train.iloc[chosen][codebook.ids].to_numpy().sum(axis=0).astype(bool).sum())
            rows.append({"seed": seed, "order": order, "answers": len(chosen), "micro_f1": micro,
                         "macro_f1": macro, "codes_with_examples": positives})
            if size == sizes[-1]:
                break
            add = sizes[sizes.index(size) + 1] - size
            if order == "random":
                rest = np.setdiff1d(np.arange(len(train)), chosen)
                chosen += rng.choice(rest, size=add, replace=False).tolist()
            else:
                coded = train.iloc[chosen][["comment_id", "text"]]
                batch = pick_next_batch(train[["comment_id", "text"]], codebook, add, model=model,
                                        coded=[(coded, "coded so far")], text_col="text", id_col="comment_id",
                                        seed=seed * 1000 + size, source="train.csv")
                position = {rid: i for i, rid in enumerate(train["comment_id"].astype(str))}
                chosen += [position[rid] for rid in batch.frame["comment_id"]]
            print(f"seed {seed} {order} {len(chosen) - add}: micro {micro:.3f} macro {macro:.3f} "
                  f"({time.perf_counter() - begun:.0f} s)", file=sys.stderr, flush=True)
        print(f"seed {seed} {order} {len(chosen)}: micro {micro:.3f} macro {macro:.3f}", file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nhs", type=Path, default=ROOT.parent / "shared" / "data" / "nhs_fft")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--start", type=int, default=100)
    parser.add_argument("--step", type=int, default=100)
    parser.add_argument("--stop", type=int, default=1000)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "active.json")
    args = parser.parse_args()

    codebook = nhs_codebook(args.nhs)
    train, test = read_split(args.nhs, "train"), read_split(args.nhs, "test")
    train = train[train["text"].str.strip().ne("")].reset_index(drop=True)
    sizes = list(range(args.start, args.stop + 1, args.step))
    rows = []
    for seed in map(int, args.seeds.split(",")):
        rows += run_seed(seed, train, test, codebook, sizes)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))  # after every seed: a long run keeps what it measured
    frame = pd.DataFrame(rows)
    table = frame.groupby(["answers", "order"])[["micro_f1", "macro_f1", "codes_with_examples"]].agg(["mean", "std"])
    seeds = frame["seed"].nunique()
    print(f"\n| coded answers | random: micro-F1 | macro-F1 | codes seen | review next: micro-F1 | macro-F1 | "
          f"codes seen |\n|---:|---:|---:|---:|---:|---:|---:|")

    def cell(answers, order, metric, digits=3):
        mean, sd = table.loc[(answers, order), (metric, "mean")], table.loc[(answers, order), (metric, "std")]
        return f"{mean:.{digits}f}" + (f" ± {sd:.{digits}f}" if seeds > 1 else "")

    for answers in sizes:
        print(f"| {answers:,} | " + " | ".join(cell(answers, order, metric, d) for order in ("random", "active")
                                               for metric, d in (("micro_f1", 3), ("macro_f1", 3),
                                                                 ("codes_with_examples", 1))) + " |")
    target = table.loc[(sizes[-1], "random"), ("macro_f1", "mean")]
    active = table.xs("active", level="order")[("macro_f1", "mean")]
    reached = active[active >= target]
    print(f"\nMean over {seeds} seed(s). Random order's macro-F1 at {sizes[-1]:,} answers: {target:.3f}; review next "
          + (f"reaches it at {reached.index.min():,} answers." if len(reached) else f"does not reach it by "
             f"{sizes[-1]:,} (best {active.max():.3f})."))


if __name__ == "__main__":
    main()
