"""Cross-validated quality of the two sentence recipes (issue 19, item 4). Results go in docs/benchmarks.md.

The classifier's sentence view embeds each sentence of an answer of two or more either alone (a
second forward pass) or pooled from the answer's own forward pass (one pass; opm_nlp/embedding/onepass.py).
This compares them, network frozen, coded answers only (no codebook), the default embedder (onnx-int8,
the last three layers): 5-fold cross-validation on the NHS train split, the same folds for every recipe,
then, once, trained on all of train and scored on test.

Usage (from the repository root):

    .venv/bin/python bench/bench_sentence_recipe.py [--nhs DIR] [--recipes alone,one-pass] [--no-test]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score
from sklearn.model_selection import KFold

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from opm_nlp.classify.estimator import EmbeddingClassifier  # noqa: E402
from opm_nlp.embedding.encoder import Embedder, default_layers  # noqa: E402


def read_split(nhs: Path, name: str) -> tuple[list[str], np.ndarray]:
    codes = pd.read_csv(nhs / "codes.csv")["code"].tolist()
    frame = pd.read_csv(nhs / f"{name}.csv", dtype={"text": str})
    return frame["text"].fillna("").tolist(), frame[codes].to_numpy().astype(int)


def scores(Y: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    return (f1_score(Y, predicted, average="micro", zero_division=0),
            f1_score(Y, predicted, average="macro", zero_division=0))


def fit_predict(recipe: str, texts, Y, new_texts, embedder) -> np.ndarray:
    sentences = recipe != "whole"
    clf = EmbeddingClassifier(embedder=embedder, sentences=sentences,
                              sentence_recipe=recipe if sentences else "one-pass")
    clf.fit(texts, Y)
    if sentences:
        assert clf.sentence_recipe_ == recipe, clf.sentence_recipe_
    return clf.predict(new_texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nhs", type=Path, default=ROOT.parent / "shared" / "data" / "nhs_fft")
    parser.add_argument("--recipes", default="alone,one-pass", help="any of alone, one-pass, whole (no sentences)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--no-test", action="store_true", help="cross-validation only")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    texts, Y = read_split(args.nhs, "train")
    embedder = Embedder(layers=default_layers(None))  # cached embeddings: the recipes share the answers'
    recipes = args.recipes.split(",")
    rows = []
    for fold, (fit_rows, held) in enumerate(KFold(args.folds, shuffle=True, random_state=0).split(texts)):
        for recipe in recipes:
            start = time.perf_counter()
            predicted = fit_predict(recipe, [texts[i] for i in fit_rows], Y[fit_rows], [texts[i] for i in held],
                                    embedder)
            micro, macro = scores(Y[held], predicted)
            rows.append({"split": f"cv{fold}", "recipe": recipe, "micro": micro, "macro": macro,
                         "seconds": time.perf_counter() - start})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    if not args.no_test:
        test_texts, test_Y = read_split(args.nhs, "test")
        for recipe in recipes:
            micro, macro = scores(test_Y, fit_predict(recipe, texts, Y, test_texts, embedder))
            rows.append({"split": "test", "recipe": recipe, "micro": micro, "macro": macro})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    frame = pd.DataFrame(rows)
    if args.json:
        args.json.write_text(frame.to_json(orient="records", indent=1))
    cv = frame[frame["split"] != "test"].pivot(index="split", columns="recipe", values=["micro", "macro"])
    print(f"\n| recipe | CV micro-F1 (mean ± SD of {args.folds} folds) | CV macro-F1 | test micro-F1 | test macro-F1 |")
    print("|---|---:|---:|---:|---:|")
    for recipe in recipes:
        test = frame[(frame["split"] == "test") & (frame["recipe"] == recipe)]
        test_text = "– | –" if test.empty else f"{test['micro'].iloc[0]:.3f} | {test['macro'].iloc[0]:.3f}"
        print(f"| {recipe} | {cv[('micro', recipe)].mean():.3f} ± {cv[('micro', recipe)].std():.3f} | "
              f"{cv[('macro', recipe)].mean():.3f} ± {cv[('macro', recipe)].std():.3f} | {test_text} |")
    if {"alone", "one-pass"} <= set(recipes):
        for metric in ("micro", "macro"):
            delta = cv[(metric, "one-pass")] - cv[(metric, "alone")]
            print(f"\none-pass − alone, CV {metric}-F1: {delta.mean():+.4f} (per fold "
                  f"{', '.join(f'{d:+.4f}' for d in delta)}; SD {delta.std():.4f})")


if __name__ == "__main__":
    main()
