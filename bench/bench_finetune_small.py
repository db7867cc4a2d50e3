r"""Does fine-tuning the embedding network pay off below 1,000 coded answers? Validated on train.csv only.

Usage (from the repository root, after `make setup`):

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OPM_NLP_CACHE_DIR=/tmp/opm_cache \
        .venv/bin/python -W ignore bench/bench_finetune_small.py [--nhs DIR] [--sizes 200,400,800]
        [--draws 0,1,2] [--arms frozen,ft2] [--validation 1500] [--threads 1]
        [--json bench/results/finetune_small.json] [--table FILE...]

For each draw k (outer loop), size n and arm, the default :class:`~opm_nlp.model.coding_model.CodingModel`
(embedding method, the framework's codebook with its examples from bench/nhs_codebook.py, sentence view,
decision rule ``auto``: what ``opm-nlp train`` fits) is trained on ``train.csv.sample(n, random_state=k)``
and tags ``.sample(1500, random_state=1000)`` (``--validation``) of the train.csv rows not in the sample and
not a codebook quote, as bench/bench_fewcoded.py draws them. test.csv is never read. The arms differ only
in ``fine_tune``:

- ``frozen``: ``fine_tune=0``, the network frozen (what the default does below ``MIN_ANSWERS`` = 1,000);
- ``ftN``: ``fine_tune=N``, the network fine-tuned for N epochs (cross-fitted halves feeding the stacker,
  the kept network scoring through int8), forced below ``MIN_ANSWERS``; ``ft2`` is the default recipe.

Scored: micro-/macro-F1 over the 31 codes of the suggestions :meth:`CodingModel.tag` gives (its 0/1
columns, under the model's decision rule), codes suggested per answer, and the wall (and CPU) seconds of
``fit`` alone. ``--threads`` caps PyTorch's threads, the BLAS pools (threadpoolctl) and the embedding
runner's answers side by side; with the ``*_NUM_THREADS`` variables set to the same number the fit runs on
that many threads, except the per-code regressions, which ``EmbeddingClassifier`` fits in its default two
joblib worker processes, as ``opm-nlp train`` does (CPU seconds count the main process only). Each fit is appended to ``--json`` as it finishes and a rerun skips fits already there
(keyed by arm, size, draw and threads). ``--table FILE...`` prints the table of earlier ``--json`` files:
mean ± sd over draws, Δ = the mean over draws of the arm's difference from ``frozen`` on the same draw
(same training and validation answers), and fits on more than one thread listed apart.

Measured on 2 cores shared with other work (``B`` = ``OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
OPENBLAS_NUM_THREADS=1 OPM_NLP_CACHE_DIR=/tmp/opm_cache .venv/bin/python -W ignore
bench/bench_finetune_small.py``), in this order, then ``B --table bench/results/finetune_small.json``:

    B                                                  (frozen and ft2; draw 0 at 200, 400, 800, then 1, 2)
    OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 OPM_NLP_CACHE_DIR=/tmp/opm_cache_cold \
        .venv/bin/python -W ignore bench/bench_finetune_small.py --threads 2 --sizes 400 --draws 0 --arms ft2
    B --arms ft4 --sizes 200,400                       (stopped by a SIGTERM from outside after draw 0)
    B --arms ft4 --sizes 200,400 --draws 1

``/tmp/opm_cache_cold`` held the base network's ONNX export and no embeddings (a first ``train`` on new
answers); every other fit but the first (200 answers, draw 0, frozen: 42 s) found the answers' frozen
embeddings in the cache, so its fit time is the training proper.

    | answers | arm | micro-F1 | macro-F1 | Δ micro | Δ macro | Δ macro per draw | codes / answer | fit (s) | draws |
    |---:|---|---:|---:|---:|---:|---|---:|---:|---:|
    | 200 | frozen | 0.625 ± 0.014 | 0.451 ± 0.017 | +0.000 | +0.000 | – | 1.33 | 19 (7–42) | 3 |
    | 200 | ft2 | 0.631 ± 0.014 | 0.460 ± 0.026 | +0.006 | +0.009 | +0.017, +0.014, -0.004 | 1.33 | 152 (142–164) | 3 |
    | 200 | ft4 | 0.641 ± 0.007 | 0.477 ± 0.022 | +0.008 | +0.019 | +0.016, +0.022 | 1.36 | 284 (270–298) | 2 |
    | 400 | frozen | 0.652 ± 0.013 | 0.504 ± 0.013 | +0.000 | +0.000 | – | 1.33 | 15 (9–18) | 3 |
    | 400 | ft2 | 0.655 ± 0.002 | 0.523 ± 0.013 | +0.004 | +0.018 | +0.023, +0.014, +0.017 | 1.37 | 175 (171–178) | 3 |
    | 400 | ft4 | 0.657 ± 0.000 | 0.526 ± 0.001 | +0.013 | +0.014 | +0.018, +0.010 | 1.41 | 308 (295–322) | 2 |
    | 800 | frozen | 0.674 ± 0.005 | 0.506 ± 0.022 | +0.000 | +0.000 | – | 1.33 | 20 (12–26) | 3 |
    | 800 | ft2 | 0.661 ± 0.004 | 0.515 ± 0.017 | -0.013 | +0.008 | +0.003, +0.012, +0.009 | 1.39 | 245 (219–279) | 3 |

    People give 1.31–1.34 codes per validation answer.

    | answers | arm | draw | threads | embedding cache | fit wall (s) | fit CPU (s) | load before | micro-F1 | macro-F1 |
    |---:|---|---:|---:|---|---:|---:|---:|---:|---:|
    | 400 | ft2 | 0 | 2 | /tmp/opm_cache_cold | 1274 | 852 | 2.29 | 0.657 | 0.528 |

- The frozen rows reproduce bench_fewcoded.py's ``default`` exactly (same samples and validation answers,
  0.625 / 0.451, 0.652 / 0.504, 0.674 / 0.506), a check that this is the same pipeline.
- **400 answers**: two epochs raise macro-F1 on every draw (+0.023, +0.014, +0.017; mean +0.018) with
  micro-F1 +0.009, +0.013, -0.010 (mean +0.004). **200 answers**: +0.017, +0.014, -0.004 (mean +0.009)
  with micro-F1 +0.010, +0.000, +0.008. **800 answers**: macro-F1 +0.003, +0.012, +0.009 (mean +0.008)
  but micro-F1 -0.012, -0.004, -0.022 (mean -0.013): more codes suggested (1.39 against 1.33 per answer).
- Four epochs: draws 0 and 1 only (draw 2 not run for lack of time; its Δ are over those two draws).
  Against two epochs on the same two draws: macro-F1 +0.000 and +0.009 at 200, -0.004 and -0.003 at
  400; micro-F1 +0.001, +0.006 at 200, -0.001, +0.004 at 400. Within noise, for ~1.8 times the fit time.
- Fit time with two epochs, single-threaded: 142-164 s at 200 answers, 171-178 s at 400, 219-279 s at 800,
  against 7-26 s frozen (warm embedding cache). The one fit on two threads (400 answers, draw 0, cold
  embedding cache) took 1,274 s wall, 852 s CPU: another process used a whole core throughout and the
  load rose to ~6, so its two PyTorch threads contended (the same fit single-threaded used 167 s CPU). It
  says nothing about a quiet 2-core machine, which was not available: there, one thread took 171-178 s
  with the embeddings cached, and a first fit also embeds its answers (the first fit here, 200 answers
  frozen, took 42 s against 7 s cached), so two epochs at 400 answers sit at or just over 3 minutes.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_quality import nhs_codebook, read_split  # noqa: E402

from opm_nlp.classify.metrics import agreement_table  # noqa: E402


def arm_epochs(name: str) -> int:
    """Fine-tuning epochs of an arm: ``frozen`` is 0, ``ftN`` is N.

    Parameters
    ----------
    name : str
        The arm's name.

    Returns
    -------
    int
        Epochs, the ``fine_tune`` parameter of :class:`~opm_nlp.model.coding_model.CodingModel`.
    """
    if name == "frozen":
        return 0
    match = re.fullmatch(r"ft(\d+)", name)
    if not match or int(match.group(1)) < 1:
        raise SystemExit(f"unknown arm {name!r}: use frozen or ftN (N epochs, N >= 1)")
    return int(match.group(1))


def limit_threads(threads: int) -> None:
    """Run PyTorch and the embedding runner on ``threads`` threads (BLAS: see :func:`fit_and_tag`).

    Parameters
    ----------
    threads : int
        Threads for PyTorch's intra-op pool and answers embedded side by side.
    """
    import torch

    from opm_nlp.embedding import encoder, runner

    torch.set_num_threads(threads)
    runner.default_threads = encoder.default_threads = lambda: threads


def split(train: pd.DataFrame, quotes: set[str], size: int, draw: int, n_valid: int):
    """The training sample and the validation answers of one (size, draw), as bench_fewcoded.py draws them.

    Parameters
    ----------
    train : DataFrame
        ``train.csv`` (:func:`bench_quality.read_split`).
    quotes : set of str
        The codebook's example texts (never validation answers).
    size, draw : int
        Coded answers and the random state of their sample.
    n_valid : int
        Validation answers.

    Returns
    -------
    tuple of DataFrame
        The sample and the validation answers.
    """
    sample = train.sample(size, random_state=draw)
    rest = train.drop(sample.index)
    return sample, rest[~rest["text"].isin(quotes)].sample(n_valid, random_state=1000)


def fit_and_tag(codebook, sample: pd.DataFrame, valid: pd.DataFrame, epochs: int, threads: int) -> dict:
    """Fit the default model with ``fine_tune=epochs`` on ``sample`` and tag ``valid``.

    Parameters
    ----------
    codebook : Codebook
        The NHS framework's codebook.
    sample, valid : DataFrame
        Coded training answers and validation answers (``text``, ``comment_id``, one column per code).
    epochs : int
        Fine-tuning epochs (0: frozen).
    threads : int
        BLAS threads (threadpoolctl) during fit and tag.

    Returns
    -------
    dict
        Validation micro-/macro-F1 and per-code F1 of the suggestions, codes per answer, the rule chosen,
        and the seconds of fit (wall and CPU) and of tagging.
    """
    from threadpoolctl import threadpool_limits

    from opm_nlp.model.coding_model import CodingModel

    load = float(Path("/proc/loadavg").read_text().split()[0]) if Path("/proc/loadavg").is_file() else None
    with threadpool_limits(threads):
        model = CodingModel(codebook, cache=True, fine_tune=epochs)
        wall, cpu = time.perf_counter(), time.process_time()
        model.fit(sample, "text")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if model.classifier.fine_tune != epochs:
            raise SystemExit(f"the model fine-tuned {model.classifier.fine_tune} epochs, not {epochs}")
        start = time.perf_counter()
        tagged = model.tag(valid, "text", "comment_id")
        tag_seconds = time.perf_counter() - start
    if not tagged["comment_id"].reset_index(drop=True).equals(valid["comment_id"].reset_index(drop=True)):
        raise SystemExit("tag returned the answers out of order")
    predicted = tagged[codebook.ids].to_numpy(dtype=int)
    table = agreement_table(valid[codebook.ids].to_numpy(dtype=int), predicted, codebook.ids)
    fine_tuned = getattr(model.classifier, "fine_tuned_", None)
    if fine_tuned is not None:
        fine_tuned.release()  # its network folder and export: the disk stays flat over many fits
    out = {"micro": float(table.loc["micro", "f1"]), "macro": float(table.loc["macro", "f1"]),
           "codes_per_answer": float(predicted.sum(axis=1).mean()),
           "people_codes_per_answer": float(valid[codebook.ids].to_numpy().sum(axis=1).mean()),
           "rule": model.decision.name, "fit_seconds": wall, "fit_cpu_seconds": cpu, "tag_seconds": tag_seconds,
           "load_before": load, "per_code": {c: float(table.loc[c, "f1"]) for c in codebook.ids}}
    del model, tagged
    gc.collect()
    return out


def table(results: list[dict]) -> str:
    """The markdown table of ``results``: mean ± sd over draws and the difference from ``frozen``.

    Parameters
    ----------
    results : list of dict
        Rows of the ``--json`` files.

    Returns
    -------
    str
        One table of the single-threaded fits (Δ: mean over draws of the paired difference from
        ``frozen``; per draw in the last column), and a list of the fits on more threads.
    """
    frame = pd.DataFrame(results).drop_duplicates(["arm", "answers", "draw", "threads"], keep="last")
    one = frame[frame["threads"] == 1]
    arms = sorted(one["arm"].unique(), key=arm_epochs)
    lines = ["| answers | arm | micro-F1 | macro-F1 | Δ micro | Δ macro | Δ macro per draw | codes / answer "
             "| fit (s) | draws |", "|---:|---|---:|---:|---:|---:|---|---:|---:|---:|"]
    for size, part in one.groupby("answers"):
        base = part[part["arm"] == "frozen"].set_index("draw")
        for arm in arms:
            got = part[part["arm"] == arm].set_index("draw").sort_index()
            if got.empty:
                continue
            m, s = got[["micro", "macro"]].mean(), got[["micro", "macro"]].std().fillna(0)
            paired = got.index.intersection(base.index)
            d_micro = (got.loc[paired, "micro"] - base.loc[paired, "micro"]).mean() if len(paired) else np.nan
            d_macro = got.loc[paired, "macro"] - base.loc[paired, "macro"]
            per_draw = ", ".join(f"{d:+.3f}" for d in d_macro) if arm != "frozen" else "–"
            fit = got["fit_seconds"]
            lines.append(f"| {size} | {arm} | {m['micro']:.3f} ± {s['micro']:.3f} | {m['macro']:.3f} ± "
                         f"{s['macro']:.3f} | {d_micro:+.3f} | {d_macro.mean() if len(paired) else np.nan:+.3f} "
                         f"| {per_draw} | {got['codes_per_answer'].mean():.2f} | {fit.mean():.0f} "
                         f"({fit.min():.0f}–{fit.max():.0f}) | {len(got)} |")
    people = one.groupby(["answers", "draw"])["people_codes_per_answer"].first()
    if len(people):
        lines.append(f"\nPeople give {people.min():.2f}–{people.max():.2f} codes per validation answer.")
    more = frame[frame["threads"] != 1]
    if len(more):
        lines += ["", "| answers | arm | draw | threads | embedding cache | fit wall (s) | fit CPU (s) | load before "
                  "| micro-F1 | macro-F1 |", "|---:|---|---:|---:|---|---:|---:|---:|---:|---:|"]
        for _, row in more.sort_values(["answers", "arm", "draw"]).iterrows():
            lines.append(f"| {row['answers']} | {row['arm']} | {row['draw']} | {row['threads']} | "
                         f"{row.get('cache_dir', '?')} | "
                         f"{row['fit_seconds']:.0f} | {row['fit_cpu_seconds']:.0f} | {row['load_before']} | "
                         f"{row['micro']:.3f} | {row['macro']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    """Run the fits the arguments ask for (skipping those already in ``--json``), or print ``--table``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nhs", type=Path, default=ROOT.parent / "shared" / "data" / "nhs_fft")
    parser.add_argument("--sizes", default="200,400,800")
    parser.add_argument("--draws", default="0,1,2")
    parser.add_argument("--arms", default="frozen,ft2", help="frozen and/or ftN (N epochs of fine-tuning)")
    parser.add_argument("--validation", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "finetune_small.json")
    parser.add_argument("--table", type=Path, nargs="+", help="only print the table of these --json files")
    args = parser.parse_args()
    if args.table:
        print(table([row for path in args.table for row in json.loads(path.read_text(encoding="utf-8"))]))
        return

    os.environ.setdefault("OPM_NLP_CACHE_DIR", tempfile.mkdtemp(prefix="opm-bench-cache-"))
    limit_threads(args.threads)
    codebook = nhs_codebook(args.nhs)
    train = read_split(args.nhs, "train")
    quotes = {text for text, _ in codebook.examples()}
    arms = [a for a in args.arms.split(",") if a]
    epochs = {arm: arm_epochs(arm) for arm in arms}
    results = json.loads(args.json.read_text(encoding="utf-8")) if args.json.is_file() else []
    done = {(r["arm"], r["answers"], r["draw"], r["threads"]) for r in results}
    for draw in map(int, args.draws.split(",")):
        for size in map(int, args.sizes.split(",")):
            sample, valid = split(train, quotes, size, draw, args.validation)
            for arm in arms:
                if (arm, size, draw, args.threads) in done:
                    continue
                out = fit_and_tag(codebook, sample, valid, epochs[arm], args.threads)
                results.append({"arm": arm, "epochs": epochs[arm], "answers": size, "draw": draw,
                                "threads": args.threads, "validation": len(valid),
                                "cache_dir": os.environ["OPM_NLP_CACHE_DIR"], **out})
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
                print(f"{size} answers, draw {draw}, {arm}: micro {out['micro']:.3f} macro {out['macro']:.3f}, "
                      f"{out['codes_per_answer']:.2f} codes/answer ({out['rule']}); fit {out['fit_seconds']:.0f} s "
                      f"wall, {out['fit_cpu_seconds']:.0f} s CPU (load {out['load_before']}), tag "
                      f"{out['tag_seconds']:.0f} s", file=sys.stderr, flush=True)
    print(table(results))


if __name__ == "__main__":
    main()
