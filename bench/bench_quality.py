"""Quality benchmark on real human-coded answers (issue 5). Results go in docs/benchmarks.md.

Usage (from the repository root, after `make setup`):

    .venv/bin/python bench/bench_quality.py [--nhs DIR] [--backends onnx-int8,torch] [--without-examples]
                                            [--context] [--frozen] [--references] [--curve]

Data: the NHS Friends and Family Test benchmark (../shared/data/nhs_fft; fixed split, 31 codes). The
tool's default pipeline is trained on train.csv through the same code path as `opm-nlp train`
(:class:`opm_nlp.model.coding_model.CodingModel`) and scored once on test.csv, beside the reference methods:
TF-IDF + SVC as pxtextmining's SVC model, TF-IDF + logistic regression, and the tool's keyword
classifier (keywords = the words of each code's label; the data set has no stem lists). The codebook
is the labellers' published framework (definitions and example quotes; bench/nhs_codebook.py). With
--curve, a learning curve (F1 against the number of coded answers, several random draws each, with
and without the codebook's examples, and from the codebook alone) is drawn to docs/learning_curve.png.
Each micro- and macro-F1 comes with a 95% bootstrap interval over the test answers.
"""

from __future__ import annotations

import argparse
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

from opm_nlp.model.coding_model import CodingModel  # noqa: E402
from opm_nlp.codebook.codes import Codebook  # noqa: E402
from opm_nlp.classify.decision import suggest  # noqa: E402
from opm_nlp.classify.metrics import agreement_table, f1_intervals  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from nhs_codebook import build as build_nhs_codebook  # noqa: E402

_STOP = {"and", "of", "the", "to", "with", "for", "in", "on", "a", "not", "use"}


def nhs_codebook(nhs: Path) -> Codebook:
    """The labellers' framework as a codebook (definitions and example quotes, bench/nhs_codebook.py).

    The framework has no stem lists: the keyword method's stems are the words of each label.
    """
    data = build_nhs_codebook(nhs)
    for code in data["codes"]:
        words = [w for w in re.findall(r"[a-z]+", code["label"].lower()) if w not in _STOP and len(w) > 2]
        code["keywords"] = [w[:6] for w in words]
    return Codebook.from_dict(data)


def read_split(nhs: Path, name: str) -> pd.DataFrame:
    """``train`` or ``test`` of the benchmark, code columns named by the codebook's ids, empty text as ''."""
    codes = pd.read_csv(nhs / "codes.csv")
    frame = pd.read_csv(nhs / f"{name}.csv", dtype={"text": str}).rename(columns={c: c.lower() for c in codes["code"]})
    frame["text"] = frame["text"].fillna("")
    return frame


def held_out_fifth(train: pd.DataFrame, codebook: Codebook) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Four fifths of ``train`` to learn from and the other fifth to score (no codebook quote scored)."""
    order = np.random.RandomState(7).permutation(len(train))
    cut = int(0.8 * len(train))
    pool, held = train.iloc[order[:cut]], train.iloc[order[cut:]]
    return pool, held[~held["text"].isin({text for text, _ in codebook.examples()})]


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of one code's probabilities (equal-width bins)."""
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.mean() * abs(p[mask].mean() - y[mask].mean())
    return total


def summarise(name: str, Y: np.ndarray, predicted: np.ndarray, codes: list[str], seconds: float,
              proba: np.ndarray | None = None) -> dict:
    table = agreement_table(Y, predicted, codes)
    out = {"method": name, "micro_f1": float(table.loc["micro", "f1"]), "macro_f1": float(table.loc["macro", "f1"]),
           "fit_seconds": round(seconds, 1), "per_code_f1": {c: float(table.loc[c, "f1"]) for c in codes},
           **{f"{average}_f1_ci": list(interval) for average, interval in f1_intervals(Y, predicted).items()}}
    if proba is not None:
        out["ece_mean"] = float(np.mean([ece(Y[:, j], proba[:, j]) for j in range(Y.shape[1])]))
    return out


def run_default(train, test, codebook, backend="onnx-int8", context_col=None, cache=False,
                examples=True, fine_tune=None, sentences=True) -> tuple[dict, CodingModel]:
    start = time.perf_counter()
    model = CodingModel(codebook, backend=backend, cache=cache, codebook_examples=examples, fine_tune=fine_tune,
                        sentences=sentences)
    model.fit(train, "text", context_col=context_col)
    seconds = time.perf_counter() - start
    contexts = None if context_col is None else test[context_col].astype(str).tolist()
    proba = model.predict_proba(test["text"].tolist(), contexts)
    predicted = suggest(model.decision, proba)[0].astype(int)
    epochs = model.metadata["embedding"]["fine_tune_epochs"]
    name = (f"opm-nlp default ({backend}{', question as context' if context_col else ''}"
            f"{', without codebook examples' if not examples else ''}"
            f"{', whole answers only' if not sentences else ''}"
            f"{f', fine-tuned {epochs} epochs' if epochs else ', network frozen'})")
    return summarise(name, test[codebook.ids].to_numpy(), predicted, codebook.ids, seconds, proba), model


def run_references(train, test, codebook) -> list[dict]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import SVC

    Y_train, Y_test = train[codebook.ids].to_numpy(), test[codebook.ids].to_numpy()
    results = []
    for name, estimator in [
        ("TF-IDF 1-2-grams + SVC (C=15, balanced), as pxtextmining", SVC(C=15, class_weight="balanced",
                                                                         probability=True, random_state=0)),
        ("TF-IDF 1-2-grams + logistic regression (balanced)", LogisticRegression(class_weight="balanced",
                                                                                   max_iter=2000)),
    ]:
        start = time.perf_counter()
        vectorizer = TfidfVectorizer(ngram_range=(1, 2))
        X_train = vectorizer.fit_transform(train["text"])
        model = OneVsRestClassifier(estimator, n_jobs=2).fit(X_train, Y_train)
        seconds = time.perf_counter() - start
        proba = model.predict_proba(vectorizer.transform(test["text"]))
        results.append(summarise(name, Y_test, (proba >= 0.5).astype(int), codebook.ids, seconds, proba))
    start = time.perf_counter()
    keyword = CodingModel(codebook, method="keyword").fit(train, "text")
    proba = keyword.predict_proba(test["text"].tolist())
    results.append(summarise("opm-nlp keyword/stem query (label words as stems)", Y_test, (proba >= 0.5).astype(int),
                             codebook.ids, time.perf_counter() - start))
    return results


def learning_curve(train, test, codebook, sizes, draws, out_png: Path) -> list[dict]:
    """F1 on the test split against the number of coded answers, with and without the codebook's examples.

    0 answers is the model from the codebook alone (`opm-nlp train` without --data).
    """
    rows = []
    Y_test = test[codebook.ids].to_numpy()
    for size in sizes:
        for examples in (True, False):
            if size == 0 and not examples:
                continue
            for draw in range(draws if 0 < size < len(train) else 1):
                sample = train.sample(n=min(size, len(train)), random_state=draw)
                model = CodingModel(codebook, cache=True, codebook_examples=examples)
                model.fit(sample if size else None, "text")
                predicted = suggest(model.decision, model.predict_proba(test["text"].tolist()))[0].astype(int)
                table = agreement_table(Y_test, predicted, codebook.ids)
                rows.append({"answers": len(sample) if size else 0, "codebook_examples": examples, "draw": draw,
                             "micro_f1": float(table.loc["micro", "f1"]), "macro_f1": float(table.loc["macro", "f1"])})
                print(f"  curve: {rows[-1]['answers']} answers, examples {examples}, draw {draw}: "
                      f"micro {rows[-1]['micro_f1']:.3f} macro {rows[-1]['macro_f1']:.3f}", file=sys.stderr)
    frame = pd.DataFrame(rows)
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4))
    axes = figure.subplots()
    summary = frame.groupby(["codebook_examples", "answers"])[["micro_f1", "macro_f1"]].agg(["mean", "std"]).fillna(0)
    for examples, style in ((True, "-"), (False, ":")):
        part = summary.loc[examples]
        part = part[part.index > 0]
        for (metric, label), color in zip((("micro_f1", "micro-F1"), ("macro_f1", "macro-F1")), ("C0", "C1")):
            suffix = "" if examples else ", coded answers only"
            axes.errorbar(part.index, part[(metric, "mean")], yerr=part[(metric, "std")], marker="o", linestyle=style,
                          color=color, capsize=3, label=label + suffix)
    if (True, 0) in summary.index:
        for metric, color in (("micro_f1", "C0"), ("macro_f1", "C1")):
            axes.axhline(summary.loc[(True, 0), (metric, "mean")], color=color, linestyle="--", linewidth=0.8)
        axes.text(summary.index.get_level_values(1).max(), summary.loc[(True, 0), ("micro_f1", "mean")],
                  "codebook alone (0 answers)", ha="right", va="bottom", fontsize=8)
    axes.set_xscale("log")
    axes.set_xlabel("coded training answers (log scale)")
    axes.set_ylabel("F1 on the NHS test split")
    axes.set_title("How many answers must people code?")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(out_png, dpi=110)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nhs", type=Path, default=ROOT.parent / "shared" / "data" / "nhs_fft")
    parser.add_argument("--backends", default="onnx-int8", help="comma-separated backends for the default pipeline")
    parser.add_argument("--without-examples", action="store_true",
                        help="also run the default without the codebook's examples and definitions")
    parser.add_argument("--context", action="store_true", help="also run with the survey question as context")
    parser.add_argument("--frozen", action="store_true",
                        help="also run with the network kept frozen (train --no-fine-tune); with --context, also both")
    parser.add_argument("--whole-answers", action="store_true",
                        help="also run without scoring sentences (train --no-sentence-scores); with --frozen, also both")
    parser.add_argument("--references", action="store_true", help="also run the reference methods")
    parser.add_argument("--curve", action="store_true", help="also draw the learning curve")
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "quality.json")
    args = parser.parse_args()

    os.environ.setdefault("OPM_NLP_CACHE_DIR", tempfile.mkdtemp(prefix="opm-bench-cache-"))
    codebook = nhs_codebook(args.nhs)
    train, test = read_split(args.nhs, "train"), read_split(args.nhs, "test")

    results = []

    def run(**options) -> None:
        result, _ = run_default(train, test, codebook, **options)
        results.append(result)
        print(f"{result['method']}: micro {result['micro_f1']:.3f} macro {result['macro_f1']:.3f} "
              f"ECE {result['ece_mean']:.4f} fit {result['fit_seconds']:.0f} s", file=sys.stderr)

    for backend in filter(None, args.backends.split(",")):
        run(backend=backend)
    if args.without_examples:
        run(examples=False)
    if args.context:
        run(context_col="question")
    if args.frozen:
        for context_col in [None] + (["question"] if args.context else []):
            for sentences in [True] + ([False] if args.whole_answers else []):
                run(context_col=context_col, fine_tune=0, sentences=sentences)
    if args.whole_answers:
        run(sentences=False)
    if args.references:
        results += run_references(train, test, codebook)
    curve = learning_curve(train, test, codebook, [0, 50, 100, 200, 400, 800, len(train)], args.draws,
                           ROOT / "docs" / "learning_curve.png") if args.curve else []

    print("\n| method | micro-F1 (95% interval) | macro-F1 (95% interval) | mean ECE | fit (s) |\n"
          "|---|---:|---:|---:|---:|")
    for r in results:
        ece_text = f"{r['ece_mean']:.3f}" if "ece_mean" in r else "–"
        micro, macro = r["micro_f1_ci"], r["macro_f1_ci"]
        print(f"| {r['method']} | {r['micro_f1']:.3f} ({micro[0]:.3f}–{micro[1]:.3f}) | "
              f"{r['macro_f1']:.3f} ({macro[0]:.3f}–{macro[1]:.3f}) | {ece_text} | {r['fit_seconds']:.0f} |")
    if results:
        print("\nPer code (F1):\n\n| code | " + " | ".join(r["method"] for r in results) + " |")
        print("|---|" + "---:|" * len(results))
        for code in codebook.ids:
            print(f"| {code} | " + " | ".join(f"{r['per_code_f1'][code]:.2f}" for r in results) + " |")
    if curve:
        frame = pd.DataFrame(curve).groupby(["answers", "codebook_examples"])[["micro_f1", "macro_f1"]].agg(
            ["mean", "std", "count"])
        print("\nLearning curve (mean ± sd over draws):\n\n| coded answers | codebook examples | micro-F1 | macro-F1 "
              "| draws |\n|---:|---|---:|---:|---:|")
        for (n, examples), row in frame.iterrows():
            print(f"| {n} | {'yes' if examples else 'no'} | {row[('micro_f1', 'mean')]:.3f} ± {np.nan_to_num(row[('micro_f1', 'std')]):.3f} | "
                  f"{row[('macro_f1', 'mean')]:.3f} ± {np.nan_to_num(row[('macro_f1', 'std')]):.3f} | "
                  f"{int(row[('micro_f1', 'count')])} |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"results": results, "learning_curve": curve}, indent=1))


if __name__ == "__main__":
    main()
