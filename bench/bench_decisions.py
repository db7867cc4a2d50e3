"""Decision rules at a few hundred coded answers: per-code thresholds against the rule chosen by cross-validation.

Usage (from the repository root, after `make setup`):

    OPM_NLP_CACHE_DIR=/tmp/opm_cache .venv/bin/python bench/bench_decisions.py [--nhs DIR] [--work DIR]
        [--sizes 200,400,800,all] [--draws 3] [--plain] [--plain-draws 3] [--fine-tune-from N]

Learning curve: the default pipeline (the NHS framework's codebook with its examples, bench/nhs_codebook.py)
trained on ``train.csv.sample(size, random_state=draw)`` and scored once on ``test.csv``. Each fit is
scored twice on the same test scores: with per-code thresholds (every model before the decision rule;
``decision="thresholds"``) and with the rule the classifier chose by cross-validation on its training
answers (the default, ``decision="auto"``). Both come from one fit because the rule acts on the
scores only: the rule is chosen by the very function ``EmbeddingClassifier.fit`` calls
(:func:`opm_nlp.classify.decision.choose_rule`) on the out-of-fold scores that fit produced. Each fit's
scores are kept in ``--work`` (default ``bench/results/decisions``) and reused by later runs.

With ``--plain``, the plain-codebook figure of issue 19, through the CLI: a codebook of ``codes.csv``'s
ids and labels with the definition "Comments about <label in lower case>.",
``train.csv.sample(400, random_state=k)`` for k = 0, 1, 2, ``opm-nlp train`` then ``opm-nlp tag`` on
``test.csv``, micro-/macro-F1 over the 31 codes. "Before" applies the per-code thresholds the model
folder records (``thresholds`` of ``classifier.npz``) to the scores ``tag`` wrote; "after" is what
``tag`` suggested. Also the mean number of codes suggested per test answer against people's.

``--fine-tune-from N`` fine-tunes the network from N coded answers instead of the default's threshold
(``opm_nlp.classify.finetune.MIN_ANSWERS``; the plain-codebook runs pass ``--fine-tune`` when 400 >= N),
for the "Tried and not kept" figures; give it its own ``--work``. It draws no figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_quality import nhs_codebook, read_split  # noqa: E402

from opm_nlp.classify.metrics import agreement_table  # noqa: E402


def _f1(Y: np.ndarray, predicted: np.ndarray, ids: list[str]) -> tuple[float, float]:
    table = agreement_table(Y, predicted, ids)
    return float(table.loc["micro", "f1"]), float(table.loc["macro", "f1"])


def fit_scores(sample: pd.DataFrame, test: pd.DataFrame, codebook, path: Path) -> dict:
    """Fit the default on ``sample``; keep the out-of-fold scores of every training row (coded answers,
    then the codebook's examples), their codes, and the test scores, in ``path`` (reused when there)."""
    if path.exists():
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    from opm_nlp.classify.estimator import EmbeddingClassifier
    from opm_nlp.model.coding_model import CodingModel

    captured = {}
    original = EmbeddingClassifier._fit_heads

    def capture(self, X_lexical, X_embedding, Y, *args, **kwargs):
        learnable, oof = original(self, X_lexical, X_embedding, Y, *args, **kwargs)
        captured.update(Y=np.asarray(Y).copy(), oof=oof.copy(), learnable=np.asarray(learnable))
        return learnable, oof

    EmbeddingClassifier._fit_heads = capture
    try:
        model = CodingModel(codebook, cache=True).fit(sample if len(sample) else None, "text")
    finally:
        EmbeddingClassifier._fit_heads = original
    out = {**captured, "n_answers": np.asarray(len(captured["Y"]) - model.classifier.n_examples_),
           "base_thresholds": np.asarray(getattr(model.classifier, "base_thresholds_", model.classifier.thresholds_)),
           "test_scores": model.predict_proba(test["text"].tolist()),
           "fine_tune": np.asarray(model.classifier.fine_tune)}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    return out


def curve(train, test, codebook, sizes, draws: int, work: Path) -> list[dict]:
    """One fit per (size, draw), scored with per-code thresholds and with the rule chosen by cross-validation."""
    from opm_nlp.classify.decision import DecisionRule, choose_rule, suggest

    Y_test = test[codebook.ids].to_numpy()
    rows = []
    for size in sizes:
        n = len(train) if size == "all" else int(size)
        for draw in range(draws if 0 < n < len(train) else 1):
            data = fit_scores(train.sample(n=n, random_state=draw), test, codebook, work / f"curve_{size}_{draw}.npz")
            chosen = choose_rule(data["Y"], data["oof"], int(data["n_answers"]), data["learnable"],
                                 data["base_thresholds"])
            for rule_name, rule in (("per-code thresholds", DecisionRule(data["base_thresholds"])),
                                    ("chosen by CV", chosen)):
                predicted = suggest(rule, data["test_scores"])[0].astype(int)
                micro, macro = _f1(Y_test, predicted, codebook.ids)
                rows.append({"answers": n, "draw": draw, "decision": rule_name, "rule": rule.name,
                             "micro_f1": micro, "macro_f1": macro, "codes_per_answer": predicted.sum(axis=1).mean(),
                             "fine_tune": int(data["fine_tune"])})
                print(f"  {n} answers, draw {draw}, {rule_name} ({rule.name}): micro {micro:.3f} macro {macro:.3f}, "
                      f"{rows[-1]['codes_per_answer']:.2f} codes per answer", file=sys.stderr)
    return rows


def plain_codebook(nhs: Path, train: pd.DataFrame, test: pd.DataFrame, draws: int, work: Path,
                   fine_tune: bool | None = None) -> list[dict]:
    """Issue 19's plain-codebook figure at 400 answers, through `opm-nlp train` and `opm-nlp tag`."""
    codes = pd.read_csv(nhs / "codes.csv")
    ids = codes["code"].tolist()
    folder = work / "plain"
    folder.mkdir(parents=True, exist_ok=True)
    book = {"name": "NHS plain", "version": "1", "codes": [
        {"id": c, "label": label, "definition": f"Comments about {label.lower()}."}
        for c, label in zip(codes["code"], codes["label"])]}
    (folder / "codebook.yaml").write_text(yaml.safe_dump(book, sort_keys=False), encoding="utf-8")
    test[["comment_id", "text", *ids]].to_csv(folder / "test.csv", index=False)
    Y_test = test[ids].to_numpy()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rows = []
    for k in range(draws):
        sample = train.sample(400, random_state=k)
        sample[["comment_id", "text", *ids]].to_csv(folder / f"train400_{k}.csv", index=False)
        model, tagged = folder / f"model_{k}", folder / f"tagged_{k}.csv"
        if not tagged.exists():
            for command in (["train", "--codebook", folder / "codebook.yaml", "--data", folder / f"train400_{k}.csv",
                             "--text-col", "text", "--id-col", "comment_id", "--out", model, "--quiet",
                             *({True: ["--fine-tune"], False: ["--no-fine-tune"]}.get(fine_tune, []))],
                            ["tag", model, folder / "test.csv", "--text-col", "text", "--id-col", "comment_id",
                             "--out", tagged, "--quiet"]):
                out = subprocess.run([sys.executable, "-m", "opm_nlp", *map(str, command)], env=env, check=True,
                                     capture_output=True, text=True)
                print(out.stdout.strip(), file=sys.stderr)
        frame = pd.read_csv(tagged, dtype={"text": str})
        if not frame["comment_id"].equals(test["comment_id"].reset_index(drop=True)):
            raise SystemExit(f"{tagged}: answers out of order")
        with np.load(model / "classifier.npz") as arrays:
            thresholds = arrays["thresholds"]
        metadata = json.loads((model / "metadata.json").read_text(encoding="utf-8"))
        scores = frame[[f"score_{c}" for c in ids]].to_numpy(dtype=float)
        before = (np.nan_to_num(scores, nan=0.0) >= thresholds).astype(int)
        after = frame[ids].to_numpy(dtype=int)
        for name, predicted in (("per-code thresholds", before), ("chosen by CV", after)):
            micro, macro = _f1(Y_test, predicted, ids)
            rows.append({"draw": k, "decision": name, "rule": metadata["decision"]["rule"] if name != "per-code "
                         "thresholds" else "per-code thresholds", "micro_f1": micro, "macro_f1": macro,
                         "codes_per_answer": predicted.sum(axis=1).mean()})
            print(f"  plain codebook, 400 answers, draw {k}, {name} ({rows[-1]['rule']}): micro {micro:.3f} "
                  f"macro {macro:.3f}, {rows[-1]['codes_per_answer']:.2f} codes per answer", file=sys.stderr)
    return rows


def draw_curve(rows: list[dict], out_png: Path) -> None:
    """F1 against coded answers (log scale), per-code thresholds dotted, the rule chosen by CV solid."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    frame = pd.DataFrame(rows)
    summary = frame.groupby(["decision", "answers"])[["micro_f1", "macro_f1"]].agg(["mean", "std"]).fillna(0)
    figure = Figure(figsize=(6, 4))
    axes = figure.subplots()
    for decision, style in (("chosen by CV", "-"), ("per-code thresholds", ":")):
        part = summary.loc[decision]
        part = part[part.index > 0]
        for (metric, label), color in zip((("micro_f1", "micro-F1"), ("macro_f1", "macro-F1")), ("C0", "C1")):
            axes.errorbar(part.index, part[(metric, "mean")], yerr=part[(metric, "std")], marker="o", linestyle=style,
                          color=color, capsize=3, label=f"{label}, {decision}")
    if 0 in summary.loc["chosen by CV"].index:
        alone = summary.loc[("chosen by CV", 0)]
        for metric, color in (("micro_f1", "C0"), ("macro_f1", "C1")):
            axes.axhline(alone[(metric, "mean")], color=color, linestyle="--", linewidth=0.8)
        axes.text(frame["answers"].max(), alone[("micro_f1", "mean")], "codebook alone (0 answers)", ha="right",
                  va="bottom", fontsize=8)
    axes.set_xscale("log")
    axes.set_xlabel("coded training answers (log scale)")
    axes.set_ylabel("F1 on the NHS test split")
    axes.set_title("How many answers must people code?")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out_png, dpi=110)


def _table(rows: list[dict], by: list[str]) -> str:
    frame = pd.DataFrame(rows)
    summary = frame.groupby(by, sort=False)[["micro_f1", "macro_f1", "codes_per_answer"]].agg(["mean", "std", "count"])
    lines = [f"| {' | '.join(by)} | micro-F1 | macro-F1 | codes per answer | draws |",
             "|" + "---|" * len(by) + "---:|---:|---:|---:|"]
    for key, row in summary.iterrows():
        key = key if isinstance(key, tuple) else (key,)
        cells = [f"{row[(m, 'mean')]:.3f} ± {np.nan_to_num(row[(m, 'std')]):.3f}" for m in ("micro_f1", "macro_f1")]
        lines.append(f"| {' | '.join(map(str, key))} | {' | '.join(cells)} | {row[('codes_per_answer', 'mean')]:.2f} | "
                     f"{int(row[('micro_f1', 'count')])} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nhs", type=Path, default=ROOT.parent / "shared" / "data" / "nhs_fft")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "results" / "decisions")
    parser.add_argument("--sizes", default="0,50,100,200,400,800,all",
                        help="comma-separated training sizes (0: the codebook alone; 'all': train.csv)")
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--plain", action="store_true", help="also the plain-codebook figure at 400 answers (CLI)")
    parser.add_argument("--plain-draws", type=int, default=3)
    parser.add_argument("--fine-tune-from", type=int, default=None,
                        help="fine-tune from this many coded answers instead of the default's threshold (no figure drawn)")
    args = parser.parse_args()
    if args.fine_tune_from is not None:
        from opm_nlp.classify import finetune

        finetune.MIN_ANSWERS = args.fine_tune_from  # CodingModel reads it when it fits

    os.environ.setdefault("OPM_NLP_CACHE_DIR", tempfile.mkdtemp(prefix="opm-bench-cache-"))
    train, test = read_split(args.nhs, "train"), read_split(args.nhs, "test")
    people = test[pd.read_csv(args.nhs / "codes.csv")["code"]].to_numpy().sum(axis=1).mean()
    rows = curve(train, test, nhs_codebook(args.nhs), [s for s in args.sizes.split(",") if s], args.draws, args.work)
    print("\nLearning curve, the NHS framework's codebook (mean ± sd over draws):\n")
    print(_table(rows, ["answers", "decision"]))
    if args.fine_tune_from is None:
        draw_curve(rows, ROOT / "docs" / "learning_curve.png")
    fine_tune = None if args.fine_tune_from is None else 400 >= args.fine_tune_from
    plain = plain_codebook(args.nhs, train, test, args.plain_draws, args.work, fine_tune) if args.plain else []
    if plain:
        print("\nPlain codebook (ids, labels, 'Comments about <label>.'), 400 coded answers, through the CLI:\n")
        print(_table(plain, ["decision"]))
    print(f"\nPeople give {people:.2f} codes per test answer.")
    print("Rules chosen: " + "; ".join(sorted({f"{r.get('answers', 400)}: {r['rule']}" for r in rows + plain
                                                if r["decision"] == "chosen by CV"})))
    (args.work / "decisions.json").write_text(json.dumps({"curve": rows, "plain": plain}, indent=1, default=float))


if __name__ == "__main__":
    main()
