"""How far the stopping forecast is from the gains more coding really brings (NHS split).

For each draw and starting size N: a random order of `train.csv`; the model `opm-nlp train` makes
(network frozen, embeddings cached) is trained on the first N, N+100 and N+500 answers of that order and
scored on `test.csv` (micro- and macro-F1 over the 31 codes); the forecast that training on N answers
records (`opm_nlp.classify.forecast`) predicts the gains N -> N+100 and N -> N+500. Prints each pair,
the mean absolute error, and the forecast's time against training's.

    .venv/bin/python bench/bench_forecast.py                     # sizes 200 400 800, draws 0 1 2
    .venv/bin/python bench/bench_forecast.py --sizes 400 --draws 0
"""

from __future__ import annotations

import argparse
import json
import sys
import time
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
from opm_nlp.model.training import TrainingData, train_model  # noqa: E402
from opm_nlp.model.options import TrainOptions  # noqa: E402


def score(model: CodingModel, test: pd.DataFrame, codes: list[str]) -> tuple[float, float]:
    predicted = suggest(model.decision, model.predict_proba(test["text"].tolist()))[0].astype(int)
    table = agreement_table(test[codes].to_numpy(), predicted, codes)
    return float(table.loc["micro", "f1"]), float(table.loc["macro", "f1"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nhs", type=Path, default=ROOT.parent / "shared" / "data" / "nhs_fft")
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 400, 800])
    parser.add_argument("--draws", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    codebook = nhs_codebook(args.nhs)
    codes = codebook.ids
    train, test = read_split(args.nhs, "train"), read_split(args.nhs, "test")
    train = train.assign(response_id=[f"t{i}" for i in range(len(train))])
    options = TrainOptions(fine_tune=0)
    rows = []
    for draw in args.draws:
        order = train.sample(frac=1.0, random_state=draw)
        for n in args.sizes:
            measured = {}
            for size in (n, n + 100, n + 500):
                data = TrainingData(order.iloc[:size], text_col="text", id_col="response_id")
                start = time.perf_counter()
                model = train_model(codebook, data, options)
                seconds = time.perf_counter() - start
                measured[size] = score(model, test, codes)
                if size == n:
                    forecast = model.metadata["forecast"]
                    forecast_seconds = forecast["seconds"]
                    train_seconds = seconds - forecast_seconds
            for extra in (100, 500):
                row = {"draw": draw, "answers": n, "extra": extra}
                for k, metric in enumerate(("micro_f1", "macro_f1")):
                    row[f"{metric}_predicted"] = forecast["gains"][str(extra)][metric]
                    row[f"{metric}_measured"] = measured[n + extra][k] - measured[n][k]
                row["forecast_s"], row["train_s"] = forecast_seconds, round(train_seconds, 1)
                rows.append(row)
                print(json.dumps(row), flush=True)
    frame = pd.DataFrame(rows)
    for metric in ("micro_f1", "macro_f1"):
        frame[f"{metric}_error"] = frame[f"{metric}_predicted"] - frame[f"{metric}_measured"]
    summary = frame.groupby(["answers", "extra"]).agg(
        **{f"{m}_{s}": (f"{m}_{s}", "mean") for m in ("micro_f1", "macro_f1") for s in ("predicted", "measured")},
        micro_abs_error=("micro_f1_error", lambda e: float(np.abs(e).mean())),
        macro_abs_error=("macro_f1_error", lambda e: float(np.abs(e).mean())),
        forecast_s=("forecast_s", "mean"), train_s=("train_s", "mean"))
    print(summary.round(3).to_string())
    print(f"mean absolute error: micro {np.abs(frame['micro_f1_error']).mean():.3f}, "
          f"macro {np.abs(frame['macro_f1_error']).mean():.3f}; forecast time / training time "
          f"{(frame['forecast_s'] / frame['train_s']).max():.2f} at most")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
