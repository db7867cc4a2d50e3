"""Which encoder layers describe answers best? Tuning by cross-validation on the NHS train split only.

Usage (from the repository root, after `make setup`):

    .venv/bin/python bench/bench_layers.py [--nhs DIR] [--cv] [--small]

--cv: 5-fold cross-validation of the classifier (coded answers only) on ``train.csv`` with the
mean-pooled token states of different sets of MiniLM's layers (torch backend, all six layers embedded
once, then sliced). --small: the default pipeline (with codebook examples) trained on 0, 100 and 400
answers drawn from four fifths of ``train.csv``, scored on the other fifth, with one layer and with
three. The test split is not used. Results go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_quality import held_out_fifth, nhs_codebook, read_split  # noqa: E402

from opm_nlp.model.coding_model import CodingModel  # noqa: E402
from opm_nlp.classify.estimator import EmbeddingClassifier  # noqa: E402
from opm_nlp.embedding.encoder import Embedder  # noqa: E402
from opm_nlp.classify.metrics import agreement_table  # noqa: E402

#: layer sets to compare, numbered from the top (6 = the last layer of MiniLM-L6)
LAYER_SETS = {"6 (sentence embedding)": [6], "6, 5, 4 (default)": [6, 5, 4], "6, 5, 4, 3": [6, 5, 4, 3],
              "6, 4, 2": [6, 4, 2], "all six": [6, 5, 4, 3, 2, 1]}


class _Table:
    """An embedder that serves precomputed vectors."""

    def __init__(self, vectors: dict[str, np.ndarray]):
        self.vectors = vectors

    def encode(self, texts):
        return np.vstack([self.vectors[t] for t in texts])


def _f1(Y, P, ids) -> tuple[float, float]:
    table = agreement_table(Y, P, ids)
    return float(table.loc["micro", "f1"]), float(table.loc["macro", "f1"])


def cross_validate(train: pd.DataFrame, ids: list[str]) -> None:
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    texts = train["text"].tolist()
    Y = train[ids].to_numpy()
    six = Embedder(backend="torch", layers=6).encode(texts).reshape(len(texts), 6, -1)  # blocks: 6, 5, ..., 1
    splits = list(MultilabelStratifiedKFold(n_splits=5, shuffle=True, random_state=1).split(np.zeros((len(texts), 1)), Y))
    print("| layers pooled | C (embedding) | micro-F1 | macro-F1 |\n|---|---:|---:|---:|")
    for name, layers in LAYER_SETS.items():
        for C in ([3.0, 1.0] if name.endswith("(default)") else [3.0]):
            features = six[:, [6 - layer for layer in layers]].reshape(len(texts), -1)
            table = _Table(dict(zip(texts, features)))
            predicted = np.zeros_like(Y)
            for fit_rows, score_rows in splits:
                clf = EmbeddingClassifier(embedder=table, C_embedding=C, sentences=False)  # whole answers, as measured
                clf.fit([texts[i] for i in fit_rows], Y[fit_rows])
                predicted[score_rows] = clf.predict([texts[i] for i in score_rows])
            micro, macro = _f1(Y, predicted, ids)
            print(f"| {name} | {C:g} | {micro:.3f} | {macro:.3f} |", flush=True)


def small_data(train: pd.DataFrame, codebook, draws: int = 3) -> None:
    pool, held = held_out_fifth(train, codebook)
    Y = held[codebook.ids].to_numpy()
    print("\n| coded answers | layers | micro-F1 | macro-F1 |\n|---:|---:|---:|---:|")
    for n in (0, 100, 400):
        for layers in (1, 3):
            scores = []
            for draw in range(draws if n else 1):
                model = CodingModel(codebook, embedding_layers=layers, fine_tune=0)  # the frozen network's layers
                model.fit(None if n == 0 else pool.sample(n, random_state=draw), "text")
                predicted = (model.predict_proba(held["text"].tolist()) >= model.thresholds).astype(int)
                scores.append(_f1(Y, predicted, codebook.ids))
            micro, macro = np.mean(scores, axis=0)
            print(f"| {n} | {layers} | {micro:.3f} | {macro:.3f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nhs", type=Path, default=ROOT.parent / "shared" / "data" / "nhs_fft")
    parser.add_argument("--cv", action="store_true", help="compare layer sets by 5-fold CV on train")
    parser.add_argument("--small", action="store_true", help="one vs three layers with few coded answers")
    args = parser.parse_args()
    os.environ.setdefault("OPM_NLP_CACHE_DIR", tempfile.mkdtemp(prefix="opm-bench-cache-"))
    warnings.simplefilter("ignore")
    codebook = nhs_codebook(args.nhs)
    train = read_split(args.nhs, "train")
    if args.cv:
        cross_validate(train, codebook.ids)
    if args.small:
        small_data(train, codebook)


if __name__ == "__main__":
    main()
