"""Coverage of the report's theme-frequency intervals on real human-coded answers (issue 18).

Usage (from the repository root, after `make setup`):

    .venv/bin/python bench/bench_coverage.py --work DIR [--nhs DIR] [--draws 200] [--sizes 50,100,200]

Data: the NHS Friends and Family Test benchmark (../shared/data/nhs_fft; fixed split, 31 codes). A model
is trained on train.csv with the network frozen (as `opm-nlp train --no-fine-tune`: minutes, not hours)
and scores test.csv once; the model's test scores, thresholds and out-of-fold (cross-validated) scores on
train.csv are cached in ``DIR/scores.npz``, so later runs only simulate. The test split plays a wave whose
true prevalence per code is known (its human codes). For each audit size, audits are drawn at random
(without replacement) from the test split, ``--draws`` times; per code and draw the estimators of
:mod:`opm_nlp.report.estimate` give a 95% interval, and the share of intervals that contain the true
prevalence is the coverage. Printed as a Markdown table for docs/benchmarks.md; the full figures go to
``DIR/coverage.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_quality import nhs_codebook, read_split  # noqa: E402


def cached_scores(nhs: Path, work: Path) -> dict[str, np.ndarray]:
    """Test scores, test codes, thresholds and out-of-fold train scores; trained once, then read from ``work``."""
    path = work / "scores.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    from opm_nlp.model.coding_model import CodingModel

    codebook = nhs_codebook(nhs)
    train, test = read_split(nhs, "train"), read_split(nhs, "test")
    started = time.perf_counter()
    model = CodingModel(codebook, cache=True, fine_tune=0)
    model.fit(train, "text")
    print(f"trained on {len(train)} answers, network frozen, in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    usable = train["text"].str.strip() != ""
    arrays = {
        "codes": np.array(codebook.ids),
        "test_scores": model.predict_proba(test["text"].tolist()),
        "test_labels": test[codebook.ids].to_numpy(dtype=int),
        "thresholds": np.asarray(model.thresholds, dtype=float),
        "oof_scores": np.asarray(model.classifier.oof_scores_, dtype=float),
        "train_labels": train.loc[usable, codebook.ids].to_numpy(dtype=int),
    }
    work.mkdir(parents=True, exist_ok=True)
    model.save(work / "model")
    np.savez(path, **arrays)
    return arrays


#: Estimator variants compared (name -> keyword arguments of prediction_powered, and whether 0/1 suggestions).
VARIANTS = {
    "plain PPI, scores": ({"pseudo": 0.0, "power_tuning": False}, False),
    "plain PPI, 0/1 suggestions": ({"pseudo": 0.0, "power_tuning": False}, True),
    "PPI++, scores": ({"pseudo": 0.0, "power_tuning": True}, False),
    "plain PPI, scores, 0.25 pseudo-answers": ({"pseudo": 0.25, "power_tuning": False}, False),
    "plain PPI, scores, 0.5 pseudo-answers": ({"pseudo": 0.5, "power_tuning": False}, False),
    "plain PPI, scores, 1 pseudo-answer": ({"pseudo": 1.0, "power_tuning": False}, False),
    "plain PPI, 0/1 suggestions, 0.5 pseudo-answers": ({"pseudo": 0.5, "power_tuning": False}, True),
    "PPI++, scores, 0.5 pseudo-answers": ({"pseudo": 0.5, "power_tuning": True}, False),
    "PPI++, scores, 1 pseudo-answer": ({"pseudo": 1.0, "power_tuning": True}, False),
    "default (opm_nlp.report.estimate)": ({}, False),
}


def simulate(data: dict, sizes: list[int], draws: int, seed: int = 0) -> dict:
    """Coverage, relative width and effective n of each variant, per audit size; model-only coverage beside."""
    from opm_nlp.report.estimate import model_only, prediction_powered

    scores, labels = data["test_scores"], data["test_labels"].astype(float)
    suggested = (scores >= data["thresholds"]).astype(float)
    codes = [str(c) for c in data["codes"]]
    n_answers, n_codes = labels.shape
    truth = labels.mean(axis=0)
    rng = np.random.default_rng(seed)
    model = [model_only(suggested[:, k]) for k in range(n_codes)]
    results = {"answers": n_answers, "codes": n_codes,
               "model_only_coverage": float(np.mean([m.low <= t <= m.high for m, t in zip(model, truth)])),
               "sizes": {}}
    for size in sizes:
        hits = {name: np.zeros((draws, n_codes), bool) for name in VARIANTS}
        width = {name: np.zeros((draws, n_codes)) for name in VARIANTS}
        eff = {name: np.zeros((draws, n_codes)) for name in VARIANTS}
        classical_hits, classical_width = np.zeros((draws, n_codes), bool), np.zeros((draws, n_codes))
        for d in range(draws):
            audit = np.zeros(n_answers, bool)
            audit[rng.choice(n_answers, size, replace=False)] = True
            for k in range(n_codes):
                y = np.where(audit, labels[:, k], np.nan)
                for name, (kwargs, binary) in VARIANTS.items():
                    est = prediction_powered(suggested[:, k] if binary else scores[:, k], y, audit, **kwargs)
                    hits[name][d, k] = est.low <= truth[k] <= est.high
                    width[name][d, k] = est.high - est.low
                    eff[name][d, k] = est.effective_n
                classical_hits[d, k] = est.classical.low <= truth[k] <= est.classical.high
                classical_width[d, k] = est.classical.high - est.classical.low
        row = {"audit_only_coverage": float(classical_hits.mean()),
               "audit_only_width_pct": float(100 * classical_width.mean()), "variants": {}}
        for name in VARIANTS:
            per_code = hits[name].mean(axis=0)
            worst = int(np.argmin(per_code))
            row["variants"][name] = {
                "coverage": float(hits[name].mean()), "worst_code": codes[worst],
                "worst_coverage": float(per_code[worst]), "worst_prevalence": float(truth[worst]),
                "width_pct": float(100 * width[name].mean()),
                "width_vs_audit_only": float(width[name].mean() / classical_width.mean()),
                "mean_effective_n": float(np.mean(np.minimum(eff[name], n_answers))),
            }
        results["sizes"][str(size)] = row
        print(f"audit {size}: done", file=sys.stderr)
    return results


def adjusted_coverage(data: dict, waves: int, wave_size: int, seed: int = 1) -> dict:
    """Coverage of adjusted classify-and-count (no audit), s and t from out-of-fold scores on train.csv.

    Waves: the whole test split, and ``waves`` random sub-waves of ``wave_size`` answers from it.
    """
    from opm_nlp.report.estimate import adjusted

    thresholds = data["thresholds"]
    oof = (data["oof_scores"] >= thresholds).astype(int)
    y_train = data["train_labels"]
    suggested = (data["test_scores"] >= thresholds).astype(int)
    labels = data["test_labels"]
    counts = [(int(np.sum((oof[:, k] == 1) & (y_train[:, k] == 1))), int(np.sum((oof[:, k] == 1) & (y_train[:, k] == 0))),
               int(np.sum((oof[:, k] == 0) & (y_train[:, k] == 1))), int(np.sum((oof[:, k] == 0) & (y_train[:, k] == 0))))
              for k in range(labels.shape[1])]
    rng = np.random.default_rng(seed)
    samples = [np.arange(len(labels))] + [rng.choice(len(labels), wave_size, replace=False) for _ in range(waves)]
    hits, widths, errors = [], [], []
    for index in samples:
        for k, (tp, fp, fn, tn) in enumerate(counts):
            est = adjusted(suggested[index, k], tp, fp, fn, tn, draws=1000)
            truth = labels[index, k].mean()
            hits.append(est.low <= truth <= est.high)
            widths.append(est.high - est.low)
            errors.append(abs(est.estimate - truth))
    whole = hits[: labels.shape[1]]
    return {"whole_test_coverage": float(np.mean(whole)), "sub_wave_coverage": float(np.mean(hits[labels.shape[1]:])),
            "sub_waves": waves, "sub_wave_size": wave_size, "width_pct": float(100 * np.mean(widths)),
            "mean_abs_error_pct": float(100 * np.mean(errors))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nhs", type=Path, default=ROOT.parent / "shared/data/nhs_fft")
    parser.add_argument("--work", type=Path, required=True, help="folder for the trained model and cached scores")
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--sizes", default="50,100,200")
    args = parser.parse_args()
    data = cached_scores(args.nhs, args.work)
    results = simulate(data, [int(s) for s in args.sizes.split(",")], args.draws)
    results["adjusted"] = adjusted_coverage(data, waves=args.draws, wave_size=300)
    (args.work / "coverage.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    print_table(results)


def print_table(results: dict) -> None:
    """The figures of docs/benchmarks.md as Markdown."""
    print(f"{results['answers']} test answers, {results['codes']} codes; model-only Wilson intervals (0/1 "
          f"suggestions counted as true) cover {results['model_only_coverage']:.3f}.\n")
    print("| estimator | audit | coverage | worst code (coverage, prevalence) | width, points | width / audit-only | effective n |")
    print("|---|---:|---:|---|---:|---:|---:|")
    for size, row in results["sizes"].items():
        print(f"| audit only (Wilson) | {size} | {row['audit_only_coverage']:.3f} | | {row['audit_only_width_pct']:.1f} | 1.00 | {size} |")
        for name, v in row["variants"].items():
            print(f"| {name} | {size} | {v['coverage']:.3f} | {v['worst_code']} ({v['worst_coverage']:.2f}, "
                  f"{100 * v['worst_prevalence']:.1f}%) | {v['width_pct']:.1f} | {v['width_vs_audit_only']:.2f} | "
                  f"{v['mean_effective_n']:.0f} |")
    a = results["adjusted"]
    print(f"\nadjusted (no audit): whole test split coverage {a['whole_test_coverage']:.3f}; {a['sub_waves']} sub-waves "
          f"of {a['sub_wave_size']}: coverage {a['sub_wave_coverage']:.3f}, mean width {a['width_pct']:.1f} points, "
          f"mean |error| {a['mean_abs_error_pct']:.1f} points")


if __name__ == "__main__":
    main()
