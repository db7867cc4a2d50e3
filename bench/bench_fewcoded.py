r"""A few hundred coded answers: variants of the embedding classifier's heads, validated on train.csv only.

Usage (from the repository root, after `make setup`):

    OPM_NLP_CACHE_DIR=/tmp/opm_cache OMP_NUM_THREADS=1 .venv/bin/python bench/bench_fewcoded.py
        [--nhs DIR] [--sizes 200,400,800] [--draws 0,1,2] [--validation 1500] [--variants NAME,...] [--check]
        [--json bench/results/fewcoded.json] [--table FILE...]

For each size n and draw k the default pipeline's training rows are ``train.csv.sample(n, random_state=k)``
followed by the NHS framework's codebook rows (definitions and example quotes, bench/nhs_codebook.py);
the validation answers are ``.sample(1500, random_state=1000)`` (``--validation``) of the train.csv
rows not in the sample and not a codebook quote. test.csv is never read. Features are computed once:
every train.csv answer and codebook row is embedded once (three layers, the one-pass sentence view, the
on-disk cache) and the n-grams are fitted once per (n, k); each variant then costs only its logistic
regressions, its stackers and the decision rule (:func:`opm_nlp.classify.decision.choose_rule`, as
``fit`` calls it). ``--check`` first confirms that the re-implementation here, with the default
settings, gives the package's own scores (it does, to 4e-16).

Variants (the default's settings unless said; parts joined by ``+`` combine):

- ``default``: C 10 (n-grams), 3 (embedding), 1 (stackers); codebook rows weigh as coded answers.
- ``C_emb=x``, ``C_lex=x``, ``C_stack=x``: one setting changed (fixed, to see the headroom).
- ``C_cv``: C of each view chosen in fit from 0.1, 0.3, 1 and 3 times the default, by the mean over
  codes of the average precision of the view's out-of-fold scores on the coded answers.
- ``C_stack_cv``: the stackers' C chosen in fit from 0.03, 0.1, 0.3 and 1, by the out-of-fold log-loss
  on the coded answers (each code's relative to its prior's, averaged over codes).
- ``w_ex=x``: the codebook rows weigh x coded answers (sample_weight) in the views' regressions;
  ``w_ex=falling``: weight max(1, 400 / n_answers), more while few answers are coded.
- ``proto``: an extra stacker input, the cosine similarity of the answer's embedding to the mean of the
  code's codebook rows (leave-one-out for a codebook row itself).
- ``knn``: an extra stacker input, the answer's greatest cosine similarity to the code's positive
  training rows (out of fold).
- ``pair``: an extra stacker input from one regression shared by all codes on (answer, code) pairs, whose
  features are the answer's unit embedding times the code's codebook prototype elementwise (what makes
  an answer fit a prototype, learned from every code at once; out of fold).
- ``flag``: an extra stacker input, 1 for a codebook row and 0 for a coded answer (0 when scoring), so
  the stackers can calibrate the answers apart from the codebook's easier example quotes.
- ``folds=x``: x folds for the views' and stackers' out-of-fold scores instead of 5.

``--table FILE...`` prints the table of earlier ``--json`` files (deltas against ``default``).

Measured (validation micro/macro-F1, mean ± sd over draws 0, 1, 2; Δ: difference of the means from the
default's), from five runs (``B`` = ``OPM_NLP_CACHE_DIR=/tmp/opm_cache OMP_NUM_THREADS=1 .venv/bin/python
-W ignore bench/bench_fewcoded.py``), then ``--table`` over their five ``--json`` files:

    B --variants default,C_emb=1,C_emb=10,C_lex=3,C_lex=30,C_stack=0.1,C_stack=10,C_cv,w_ex=0.5,w_ex=2,w_ex=5,\
      w_ex=falling,proto,knn,proto+knn          (stopped after the 200-answer draws)
    B --sizes 200 --variants default,C_stack_cv,pair,C_cv+C_stack_cv+proto+knn
    B --sizes 400 --variants default,C_stack_cv,C_stack=0.1,proto+knn,pair,C_cv,w_ex=0.5
    B --sizes 800 --variants default,C_stack_cv,proto+knn,C_cv
    B --sizes 200,400 --variants default,flag,folds=10

| answers | variant | micro-F1 | macro-F1 | Δ micro | Δ macro | draws |
|---:|---|---:|---:|---:|---:|---:|
| 200 | default | 0.625 ± 0.014 | 0.451 ± 0.017 | +0.000 | +0.000 | 3 |
| 200 | C_emb=1 | 0.628 ± 0.017 | 0.451 ± 0.023 | +0.002 | -0.000 | 3 |
| 200 | C_emb=10 | 0.624 ± 0.013 | 0.448 ± 0.023 | -0.001 | -0.003 | 3 |
| 200 | C_lex=3 | 0.623 ± 0.011 | 0.451 ± 0.016 | -0.002 | +0.000 | 3 |
| 200 | C_lex=30 | 0.625 ± 0.022 | 0.454 ± 0.019 | -0.001 | +0.004 | 3 |
| 200 | C_stack=0.1 | 0.630 ± 0.016 | 0.455 ± 0.027 | +0.005 | +0.005 | 3 |
| 200 | C_stack=10 | 0.621 ± 0.019 | 0.443 ± 0.019 | -0.004 | -0.008 | 3 |
| 200 | C_cv | 0.624 ± 0.018 | 0.450 ± 0.024 | -0.001 | -0.001 | 3 |
| 200 | w_ex=0.5 | 0.625 ± 0.018 | 0.452 ± 0.025 | +0.000 | +0.001 | 3 |
| 200 | w_ex=2 | 0.624 ± 0.016 | 0.450 ± 0.014 | -0.002 | -0.001 | 3 |
| 200 | w_ex=5 | 0.616 ± 0.016 | 0.442 ± 0.016 | -0.010 | -0.009 | 3 |
| 200 | w_ex=falling | 0.624 ± 0.016 | 0.450 ± 0.014 | -0.002 | -0.001 | 3 |
| 200 | proto | 0.626 ± 0.017 | 0.451 ± 0.019 | +0.000 | +0.001 | 3 |
| 200 | knn | 0.624 ± 0.018 | 0.453 ± 0.014 | -0.002 | +0.002 | 3 |
| 200 | proto+knn | 0.625 ± 0.015 | 0.454 ± 0.014 | -0.000 | +0.003 | 3 |
| 200 | C_stack_cv | 0.630 ± 0.016 | 0.451 ± 0.021 | +0.005 | +0.000 | 3 |
| 200 | pair | 0.628 ± 0.014 | 0.452 ± 0.016 | +0.002 | +0.001 | 3 |
| 200 | C_cv+C_stack_cv+proto+knn | 0.627 ± 0.010 | 0.450 ± 0.021 | +0.002 | -0.000 | 3 |
| 200 | flag | 0.631 ± 0.008 | 0.432 ± 0.035 | +0.006 | -0.019 | 3 |
| 200 | folds=10 | 0.623 ± 0.012 | 0.449 ± 0.025 | -0.002 | -0.002 | 3 |
| 400 | default | 0.652 ± 0.013 | 0.504 ± 0.013 | +0.000 | +0.000 | 3 |
| 400 | C_stack=0.1 | 0.659 ± 0.017 | 0.509 ± 0.002 | +0.007 | +0.005 | 3 |
| 400 | C_cv | 0.655 ± 0.008 | 0.514 ± 0.005 | +0.003 | +0.010 | 3 |
| 400 | w_ex=0.5 | 0.660 ± 0.007 | 0.508 ± 0.010 | +0.008 | +0.003 | 3 |
| 400 | proto+knn | 0.659 ± 0.014 | 0.508 ± 0.013 | +0.007 | +0.004 | 3 |
| 400 | C_stack_cv | 0.659 ± 0.017 | 0.509 ± 0.002 | +0.007 | +0.005 | 3 |
| 400 | pair | 0.653 ± 0.010 | 0.512 ± 0.014 | +0.001 | +0.007 | 3 |
| 400 | flag | 0.653 ± 0.019 | 0.498 ± 0.008 | +0.001 | -0.007 | 3 |
| 400 | folds=10 | 0.662 ± 0.016 | 0.513 ± 0.008 | +0.010 | +0.009 | 3 |
| 800 | default | 0.674 ± 0.005 | 0.506 ± 0.022 | +0.000 | +0.000 | 3 |
| 800 | C_cv | 0.670 ± 0.007 | 0.510 ± 0.027 | -0.003 | +0.003 | 3 |
| 800 | proto+knn | 0.670 ± 0.005 | 0.509 ± 0.027 | -0.004 | +0.003 | 3 |
| 800 | C_stack_cv | 0.665 ± 0.005 | 0.507 ± 0.022 | -0.009 | +0.000 | 3 |

The validation answers differ between sizes and draws (drawn from what each sample leaves): compare the
variants within one size. No variant raises macro-F1 by 0.015 at both 200 and 400 answers without
lowering micro-F1: all are within about ±0.01 of the default, less than the draws' spread, except
``flag`` (macro -0.019 at 200) and ``w_ex=5`` (-0.009); the best at 400 (``C_cv`` +0.010, ``folds=10``
+0.009) gain nothing at 200 (-0.001, -0.002) and ``C_cv`` nothing at 800 (+0.003). The default is kept.
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
from fewcoded_heads import knn_view, mean_ap, pair_view, prototype_view, stack, view  # noqa: E402

from opm_nlp.classify.decision import DecisionRule, choose_rule, suggest  # noqa: E402
from opm_nlp.classify.metrics import agreement_table  # noqa: E402
from opm_nlp.classify.stacking import best_threshold, others_probability  # noqa: E402

DEFAULT = {"C_lex": 10.0, "C_emb": 3.0, "C_stack": 1.0, "w_ex": 1.0, "proto": False, "knn": False, "C_cv": False,
           "C_stack_cv": False, "pair": False, "flag": False, "folds": 5}
C_GRID = (0.1, 0.3, 1.0, 3.0)  # multiples of each view's default C tried by C_cv (x0.1 .. x3)
C_STACK_GRID = (0.03, 0.1, 0.3, 1.0)  # the stackers' C tried by C_stack_cv


def variant(name: str) -> dict:
    """The settings of a variant named as in the module docstring."""
    cfg = dict(DEFAULT)
    for part in name.split("+"):
        if part == "default":
            continue
        if part in ("proto", "knn", "C_cv", "C_stack_cv", "pair", "flag"):
            cfg[part] = True
        elif "=" in part:
            key, value = part.split("=")
            cfg[key] = value if value == "falling" else int(value) if key == "folds" else float(value)
        else:
            raise SystemExit(f"unknown variant part {part!r}")
    return cfg


class Features:
    """Every train.csv answer and codebook row embedded once, with its sentences (one-pass recipe)."""

    def __init__(self, texts: list[str]):
        from opm_nlp.classify.estimator import EmbeddingClassifier
        from opm_nlp.classify.sentence_view import embed_answers, fitted_recipe
        from opm_nlp.model.coding_model import CodingModel

        self.clf = EmbeddingClassifier(embedder=CodingModel(CODEBOOK, cache=True).embedder)
        self.clf.sentence_view_, self.clf.sentence_recipe_ = True, fitted_recipe(self.clf)
        start = time.perf_counter()
        self.X, (self.S, self.owner) = embed_answers(self.clf, texts, None)
        print(f"embedded {len(texts)} texts, {len(self.owner)} sentences in {time.perf_counter() - start:.0f} s",
              file=sys.stderr)
        self.texts = texts
        starts = np.searchsorted(self.owner, np.arange(len(texts) + 1))
        self.span = {row: (starts[row], starts[row + 1]) for row in range(len(texts))}

    def rows(self, rows: np.ndarray):
        """Embeddings and ``(S, owner)`` of ``rows`` (global indices), in that order."""
        pieces, owner = [], []
        for place, row in enumerate(rows):
            a, b = self.span[row]
            if b > a:
                pieces.append(np.arange(a, b))
                owner += [place] * (b - a)
        index = np.concatenate(pieces) if pieces else np.zeros(0, dtype=int)
        return self.X[rows], (self.S[index], np.asarray(owner, dtype=np.int64))


class Draw:
    """One (size, draw): its training rows' features, folds, and a memo of view scores shared by variants."""

    def __init__(self, features: Features, rows: np.ndarray, Y: np.ndarray, n_answers: int, val_rows, Y_val):
        self.Y, self.n_answers, self.Y_val = Y, n_answers, Y_val
        clf = features.clf
        texts = [features.texts[r] for r in rows]
        self.X_lex = clf._lexical(texts, None, fit=True)
        self.X_lex_val = clf._lexical([features.texts[r] for r in val_rows], None, fit=False)
        self.X_emb, self.sentences = features.rows(rows)
        self.X_emb_val, self.sentences_val = features.rows(val_rows)
        self.folds = clf._folds(Y)
        positives = Y.sum(axis=0)
        self.learnable = np.flatnonzero((positives >= 2) & (len(Y) - positives >= 2))
        self.prior = (positives + 0.5) / (len(Y) + 1.0)
        self.memo = {}

    def weights(self, w_ex) -> np.ndarray:
        w = (max(1.0, 400.0 / max(self.n_answers, 1)) if w_ex == "falling" else float(w_ex))
        return np.r_[np.ones(self.n_answers), np.full(len(self.Y) - self.n_answers, w)]

    def views(self, j: int, C_lex: float, C_emb: float, w_ex) -> tuple:
        key = (j, C_lex, C_emb, w_ex)
        if key not in self.memo:
            y, weight = self.Y[:, j], self.weights(w_ex)
            lex = self.memo.setdefault(("lex", j, C_lex, w_ex), None) or view(
                self.X_lex, y, self.folds, C_lex, True, weight, self.X_lex_val)
            self.memo[("lex", j, C_lex, w_ex)] = lex
            emb = self.memo.get(("emb", j, C_emb, w_ex)) or view(
                self.X_emb, y, self.folds, C_emb, False, weight, self.X_emb_val, self.sentences,
                self.sentences_val)
            self.memo[("emb", j, C_emb, w_ex)] = emb
            self.memo[key] = (np.column_stack([lex[0], emb[0], emb[1]]), np.column_stack([lex[2], emb[2], emb[3]]))
        return self.memo[key]

    def choose_C(self, w_ex) -> tuple[float, float]:
        """C of each view by the mean average precision of its out-of-fold scores on the coded answers."""
        chosen = []
        for name, base in (("lex", DEFAULT["C_lex"]), ("emb", DEFAULT["C_emb"])):
            best, best_C = -1.0, base
            for factor in C_GRID:
                C = base * factor
                oofs = np.zeros(self.Y.shape)
                for j in self.learnable:
                    self.views(j, C if name == "lex" else DEFAULT["C_lex"], C if name == "emb" else DEFAULT["C_emb"],
                               w_ex)
                    oofs[:, j] = self.memo[(name, j, C, w_ex)][0]
                score = mean_ap(oofs, self.Y, self.n_answers)
                if score > best + 1e-9:
                    best, best_C = score, C
            chosen.append(best_C)
        return tuple(chosen)

    def stacked(self, views: dict, C_stack: float) -> tuple[np.ndarray, np.ndarray]:
        """Out-of-fold and validation probabilities of the two stackers of every learnable code."""
        Y, folds = self.Y, self.folds
        oof = np.tile(self.prior, (len(Y), 1))
        val = np.tile(self.prior, (len(self.Y_val), 1))
        for j in self.learnable:
            oof[:, j], val[:, j] = stack(views[j][0], Y[:, j], folds, C_stack, views[j][1])
        others, others_val = others_probability(oof), others_probability(val)
        oof2, val2 = oof.copy(), val.copy()
        for j in self.learnable:
            Z, Z_val = views[j]
            oof2[:, j], val2[:, j] = stack(np.column_stack([Z, others[:, j]]), Y[:, j], folds, C_stack,
                                           np.column_stack([Z_val, others_val[:, j]]))
        return oof2, val2

    def choose_C_stack(self, views: dict) -> float:
        """The stackers' C of least out-of-fold log-loss on the coded answers, each code's relative to its
        prior's (so that every code counts alike), averaged over codes."""
        n, best, best_C = self.n_answers, np.inf, 1.0
        codes = [j for j in self.learnable if 0 < self.Y[:n, j].sum() < n]
        for C in C_STACK_GRID:
            oof = np.clip(self.stacked(views, C)[0][:n], 1e-6, 1 - 1e-6)
            losses = []
            for j in codes:
                y, prior = self.Y[:n, j], np.clip(self.Y[:n, j].mean(), 1e-6, 1 - 1e-6)
                loss = -np.mean(y * np.log(oof[:, j]) + (1 - y) * np.log(1 - oof[:, j]))
                losses.append(loss / -np.mean(y * np.log(prior) + (1 - y) * np.log(1 - prior)))
            if np.mean(losses) < best - 1e-9:
                best, best_C = float(np.mean(losses)), C
        return best_C

    def run(self, cfg: dict) -> dict:
        """Fit one variant; validation micro/macro-F1 and per-code F1 under the rule chosen by CV."""
        Y, folds = self.Y, self.folds
        C_lex, C_emb = self.choose_C(cfg["w_ex"]) if cfg["C_cv"] else (cfg["C_lex"], cfg["C_emb"])
        extra, extra_val = [], []
        if cfg["proto"]:
            t, v = self.memo.get("proto") or prototype_view(self.X_emb, Y, self.n_answers, self.X_emb_val)
            self.memo["proto"] = (t, v)
            extra.append(t), extra_val.append(v)
        if cfg["knn"]:
            t, v = self.memo.get("knn") or knn_view(self.X_emb, Y, folds, self.X_emb_val)
            self.memo["knn"] = (t, v)
            extra.append(t), extra_val.append(v)
        if cfg["pair"]:
            t, v = self.memo.get("pair") or pair_view(self.X_emb, Y, folds, self.n_answers, self.X_emb_val)
            self.memo["pair"] = (t, v)
            extra.append(t), extra_val.append(v)
        if cfg["flag"]:  # 1 for a codebook row, 0 for a coded answer (and every answer scored)
            flag = np.r_[np.zeros(self.n_answers), np.ones(len(Y) - self.n_answers)]
            extra.append(np.tile(flag[:, None], (1, Y.shape[1]))), extra_val.append(np.zeros(self.Y_val.shape))
        views = {}
        for j in self.learnable:
            Z, Z_val = self.views(j, C_lex, C_emb, cfg["w_ex"])
            views[j] = (np.column_stack([Z] + [e[:, j] for e in extra]),
                        np.column_stack([Z_val] + [e[:, j] for e in extra_val]))
        C_stack = self.choose_C_stack(views) if cfg["C_stack_cv"] else cfg["C_stack"]
        oof2, val2 = self.stacked(views, C_stack)
        thresholds = np.full(Y.shape[1], 1.01)
        for j in self.learnable:
            thresholds[j] = best_threshold(Y[:, j], oof2[:, j])
        rule = choose_rule(Y, oof2, self.n_answers, self.learnable, thresholds)
        out = {"C_lex": C_lex, "C_emb": C_emb, "C_stack": C_stack, "rule": rule.name, "val_scores": val2}
        for name, r in (("", rule), ("thr_", DecisionRule(thresholds))):
            predicted = suggest(r, val2)[0].astype(int)
            table = agreement_table(self.Y_val, predicted, CODEBOOK.ids)
            out[f"{name}micro"], out[f"{name}macro"] = float(table.loc["micro", "f1"]), float(table.loc["macro", "f1"])
            if not name:
                out["per_code"] = {c: float(table.loc[c, "f1"]) for c in CODEBOOK.ids}
        return out


def check(features: Features, draw: Draw, rows, val_rows) -> None:
    """The package's own fit on the same rows scores the validation answers as the default here does."""
    from opm_nlp.classify.estimator import EmbeddingClassifier

    n = draw.n_answers
    texts = [features.texts[r] for r in rows]
    clf = EmbeddingClassifier(embedder=features.clf.embedder, n_jobs=1)
    clf.fit(texts[:n], draw.Y[:n], examples=(texts[n:], draw.Y[n:]))
    theirs = clf.predict_proba([features.texts[r] for r in val_rows])
    ours = draw.run(dict(DEFAULT))["val_scores"]
    print(f"check: largest difference from the package's scores {np.abs(theirs - ours).max():.2e}", file=sys.stderr)
    if not np.allclose(theirs, ours, atol=1e-6):
        raise SystemExit("the re-implementation differs from the package")


def main() -> None:
    global CODEBOOK
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nhs", type=Path, default=ROOT.parent / "shared" / "data" / "nhs_fft")
    parser.add_argument("--sizes", default="200,400,800")
    parser.add_argument("--draws", default="0,1,2")
    parser.add_argument("--validation", type=int, default=1500)
    parser.add_argument("--variants", default="default,C_cv,w_ex=2,w_ex=5,w_ex=falling,proto,knn,proto+knn")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "fewcoded.json")
    parser.add_argument("--table", type=Path, nargs="+", help="only print the table of these --json files")
    args = parser.parse_args()
    names = [v for v in args.variants.split(",") if v]
    if args.table:
        results = [row for path in args.table for row in json.loads(path.read_text(encoding="utf-8"))]
        seen = list(dict.fromkeys(["default"] + [row["variant"] for row in results]))
        print(table(results, seen))
        return

    CODEBOOK = nhs_codebook(args.nhs)
    train = read_split(args.nhs, "train")
    pairs = CODEBOOK.examples()
    book_Y = np.zeros((len(pairs), len(CODEBOOK.ids)), dtype=np.int8)
    book_Y[np.arange(len(pairs)), [CODEBOOK.ids.index(c) for _, c in pairs]] = 1
    texts = train["text"].tolist() + [t for t, _ in pairs]
    Y_all = np.vstack([train[CODEBOOK.ids].to_numpy().astype(np.int8), book_Y])
    features = Features(texts)
    book_rows = np.arange(len(train), len(texts))
    quotes = {t for t, _ in pairs}
    results = []
    for size in map(int, args.sizes.split(",")):
        for k in map(int, args.draws.split(",")):
            sample = train.sample(size, random_state=k)
            rest = train.drop(sample.index)
            rest = rest[~rest["text"].isin(quotes)].sample(args.validation, random_state=1000)
            rows = np.r_[train.index.get_indexer(sample.index), book_rows]
            val_rows = train.index.get_indexer(rest.index)
            draws = {}  # by the number of folds of the views and stackers
            for name in names:
                cv = variant(name)["folds"]
                if cv not in draws:
                    features.clf.cv = cv
                    draws[cv] = Draw(features, rows, Y_all[rows], size, val_rows, Y_all[val_rows])
                    if args.check and cv == DEFAULT["folds"] and not results:
                        check(features, draws[cv], rows, val_rows)
                start = time.perf_counter()
                out = draws[cv].run(variant(name))
                out.pop("val_scores")
                results.append({"variant": name, "answers": size, "draw": k, **out})
                print(f"{size} answers, draw {k}, {name}: micro {out['micro']:.3f} macro {out['macro']:.3f} "
                      f"(per-code thresholds {out['thr_micro']:.3f} / {out['thr_macro']:.3f}; C {out['C_lex']:g}/"
                      f"{out['C_emb']:g}/{out['C_stack']:g}; {out['rule']}) {time.perf_counter() - start:.0f} s",
                      file=sys.stderr)
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=1))
    print(table(results, names))


def table(results: list[dict], names: list[str]) -> str:
    """Mean ± sd over draws of each variant's validation F1 and its difference from the first of ``names``."""
    frame = pd.DataFrame(results)
    lines = ["| answers | variant | micro-F1 | macro-F1 | Δ micro | Δ macro | draws |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    frame = frame.drop_duplicates(["variant", "answers", "draw"])
    for size, part in frame.groupby("answers"):
        base = part[part["variant"] == names[0]][["micro", "macro"]].mean()
        for name in names:
            got = part[part["variant"] == name]
            if got.empty:
                continue
            m, s = got[["micro", "macro"]].mean(), got[["micro", "macro"]].std().fillna(0)
            lines.append(f"| {size} | {name} | {m['micro']:.3f} ± {s['micro']:.3f} | {m['macro']:.3f} ± "
                         f"{s['macro']:.3f} | {m['micro'] - base['micro']:+.3f} | {m['macro'] - base['macro']:+.3f} "
                         f"| {len(got)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
