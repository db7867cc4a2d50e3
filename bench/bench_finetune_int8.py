"""The fine-tuned view run as int8 instead of float32: quality on a validation part of the NHS train split.

Usage (from the repository root, after `make setup`):

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OPM_NLP_CACHE_DIR=/tmp/opm_cache \\
        .venv/bin/python bench/bench_finetune_int8.py [--nhs DIR] [--work DIR] [--n 1000] [--n-valid 1500]
        [--draw 0] [--top-layers K] [--speed [--speed-answers 2000] [--rounds 2]]

The default pipeline (the NHS framework's codebook with its examples, bench/nhs_codebook.py) is trained
on ``train.csv.sample(n, random_state=draw)``, so with 1,000 answers it fine-tunes the network; it is
scored on ``n_valid`` other rows of train.csv (``random_state=draw + 1``). The test split is never read.
Three ways of running the fine-tuned view are compared, micro- and macro-F1 over the codes:

- ``float32``: the kept network's ONNX float32 export, the stacker learned from the cross-fitted halves'
  float32 scores (models saved before int8 became the default);
- ``int8 kept``: the same fitted model with the kept network's export quantised to int8 (the frozen
  network's recipe), the stacker unchanged;
- ``int8 all``: the halves' networks scored their held-out answers through int8 exports too, and the
  per-code regressions and stackers are refitted on those scores (the same networks: no fine-tuning again);
  what training now does.

With ``--top-layers k``, fine-tuning trains only the network's top ``k`` layers and the head (the word
embeddings and the lower layers stay pretrained), the variant whose lower layers tagging could share with
the frozen view.

With ``--speed``, the tagging speed of three model folders, alternated ``--rounds`` times on
``--speed-answers`` two-answer texts (bench_tagging.py's answers and library path; a fresh process per run,
no embedding cache, exports made beforehand): the default refitted with the network frozen
(``model_frozen``), the float32 model (``model``) and the "int8 all" model saved with its int8 export
(``model_int8``; what training now gives).

The fitted model, the halves' networks and their out-of-fold scores are kept in ``--work`` (default
``bench/results/finetune_int8``) and reused by later runs, as are the refitted model and the scores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_quality import nhs_codebook, read_split  # noqa: E402

from opm_nlp.classify import finetune  # noqa: E402
from opm_nlp.classify.metrics import agreement_table  # noqa: E402
from opm_nlp.model.coding_model import CodingModel  # noqa: E402


def use_int8(head) -> None:
    """Make ``head`` score through the int8 export of its network (embeddings cached apart from float32's)."""
    from opm_nlp.embedding.encoder import Embedder

    embedder = Embedder(str(head.network_folder()), backend="onnx-int8")
    embedder.model_id = f"fine-tuned/{head.weights_sha256[:16]}"
    head._embedder = embedder


def train_top_layers(k: int) -> None:
    """From now on, fine-tuning trains only the top ``k`` layers of the network and the head."""
    original = finetune.FineTunedHead._network

    def network(self):
        tokenizer, model = original(self)
        depth = model.config.num_hidden_layers
        for name, parameter in model.named_parameters():
            parameter.requires_grad = any(name.startswith(f"encoder.layer.{i}.") for i in range(depth - k, depth))
        return tokenizer, model

    finetune.FineTunedHead._network = network


def fit_default(sample, codebook, work: Path):
    """The default model fitted on ``sample`` (kept in ``work/model``), and the cross-fitting record:
    texts, codes, folds, float32 out-of-fold scores and the halves' networks (``work/halves.npz``)."""
    folder, halves_path = work / "model", work / "halves.npz"
    if folder.is_dir() and halves_path.is_file():
        with np.load(halves_path, allow_pickle=False) as data:
            record = {k: data[k] for k in data.files}
        return CodingModel.load(folder, cache=True), record
    fitted, record = [], {}
    original_fit, original_cross = finetune.FineTunedHead.fit, finetune.cross_fitted

    def fit(self, *args, **kwargs):
        fitted.append(self)
        return original_fit(self, *args, **kwargs)

    def cross(texts, Y, folds, **kwargs):
        kwargs["quantize"] = False  # the float32 recipe; the int8 variants are made from it
        oof, final = original_cross(texts, Y, folds, **kwargs)
        record.update(texts=np.asarray([str(t) for t in texts]), Y=np.asarray(Y), folds=np.asarray(folds),
                      oof_float=oof, params=np.asarray(json.dumps({k: v for k, v in kwargs.items()
                                                                  if k != "progress"})))
        return oof, final

    finetune.FineTunedHead.fit, finetune.cross_fitted = fit, cross
    try:
        model = CodingModel(codebook, cache=True).fit(sample, "text")
    finally:
        finetune.FineTunedHead.fit, finetune.cross_fitted = original_fit, original_cross
    if model.classifier.fine_tune == 0 or len(fitted) != 3:
        raise SystemExit(f"the model did not fine-tune three networks ({len(fitted)}); train on more answers")
    for k, head in enumerate(fitted[:2]):
        record[f"half{k}.head.weight"], record[f"half{k}.head.bias"] = head.head_
        record[f"half{k}.names"] = np.asarray(sorted(head.weights_))
        for name, value in head.weights_.items():
            record[f"half{k}.w.{name}"] = value
    model.save(folder)
    np.savez(halves_path, **record)
    return CodingModel.load(folder, cache=True), record


def half_head(record: dict, k: int):
    """The ``k``-th cross-fitting network, rebuilt from the record."""
    params = json.loads(str(record["params"]))
    head = finetune.FineTunedHead(**{**params, "quantize": False})
    head.weights_ = {str(name): record[f"half{k}.w.{name}"] for name in record[f"half{k}.names"]}
    head.head_ = (record[f"half{k}.head.weight"], record[f"half{k}.head.bias"])
    head.n_codes_ = head.head_[0].shape[0]
    head._loaded = head._embedder = None
    return head


def int8_oof(record: dict, work: Path) -> np.ndarray:
    """Out-of-fold scores of the training answers from the halves' networks run as int8."""
    path = work / "oof_int8.npy"
    if path.is_file():
        return np.load(path)
    texts, folds = record["texts"].tolist(), record["folds"]
    oof = np.zeros(record["oof_float"].shape)
    for k, part in enumerate(np.unique(folds)):
        head = half_head(record, k)
        held = np.flatnonzero(folds == part)
        # the float32 scores of the record come back from the rebuilt network, as a check
        check = head.decision_function([texts[i] for i in held[:50]], cache=False)
        if not np.allclose(check, record["oof_float"][held[:50]], atol=1e-4):
            raise SystemExit(f"half {k} does not give back its recorded float32 scores")
        use_int8(head)
        oof[held] = head.decision_function([texts[i] for i in held], cache=False)
        head.release()
    np.save(path, oof)
    return oof


def refit_on(sample, codebook, record: dict, oof: np.ndarray, final, folder: Path) -> CodingModel:
    """The default model refitted with ``oof`` as the fine-tuned view's cross-fitted scores and ``final``
    as its kept network (no fine-tuning); kept in ``folder``."""
    if folder.is_dir():
        return CodingModel.load(folder, cache=True)
    original = finetune.cross_fitted

    def cross(texts, Y, folds, **kwargs):
        if [str(t) for t in texts] != record["texts"].tolist() or not np.array_equal(folds, record["folds"]):
            raise SystemExit("the refit's training answers or folds differ from the recorded fit's")
        return oof, final

    finetune.cross_fitted = cross
    try:
        model = CodingModel(codebook, cache=True).fit(sample, "text")
    finally:
        finetune.cross_fitted = original
    model.save(folder)
    return CodingModel.load(folder, cache=True)


def tagging_speed(sample, codebook, work: Path, args) -> None:
    """Answers per second of ``tag`` with the frozen, float32 and int8 models, measured in alternation."""
    from bench_tagging import TAG_SNIPPET, make_answers, timed_snippet

    if not (work / "model_frozen").is_dir():
        CodingModel(codebook, cache=True, fine_tune=0).fit(sample, "text").save(work / "model_frozen")
    if not (work / "model_int8").is_dir():
        model = CodingModel.load(work / "model_int8_oof", cache=True)
        model.classifier.fine_tuned_.quantize = True
        model.metadata["embedding"]["fine_tune_int8"] = True
        model.save(work / "model_int8")
    folders = {"frozen": work / "model_frozen", "fine-tuned, float32": work / "model",
               "fine-tuned, int8": work / "model_int8"}
    runs = Path(tempfile.mkdtemp(prefix="opm-bench-speed-"))
    answers = runs / "answers.csv"
    frame = make_answers(args.nhs, args.speed_answers, seed=1)  # distinct answers only: may be fewer
    frame.to_csv(answers, index=False)
    n = len(frame)
    speeds = {name: [] for name in folders}
    for round_ in range(args.rounds):
        for name, folder in folders.items():
            load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").is_file() else "?"
            seconds = timed_snippet(TAG_SNIPPET, [str(folder), str(answers), str(runs / "tagged.csv"), "onnx-int8"],
                                    runs / "cache")
            speeds[name].append(n / seconds)
            print(f"  round {round_ + 1}, {name}: {speeds[name][-1]:.1f} answers/s (load {load})", file=sys.stderr)
    print("\n| model | tag (answers/s), each round | ÷ frozen, mean of rounds |\n|---|---|---:|")
    for name, values in speeds.items():
        ratio = np.mean([v / f for v, f in zip(values, speeds["frozen"])])
        print(f"| {name} | {', '.join(f'{v:.1f}' for v in values)} | {ratio:.2f} |")


def f1(Y: np.ndarray, predicted: np.ndarray, ids: list[str]) -> tuple[float, float]:
    table = agreement_table(Y, predicted, ids)
    return float(table.loc["micro", "f1"]), float(table.loc["macro", "f1"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nhs", type=Path, default=ROOT.parent / "shared" / "data" / "nhs_fft")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "results" / "finetune_int8")
    parser.add_argument("--n", type=int, default=1000, help="coded training answers")
    parser.add_argument("--n-valid", type=int, default=1500, help="validation answers (other train.csv rows)")
    parser.add_argument("--draw", type=int, default=0)
    parser.add_argument("--top-layers", type=int, default=0, help="fine-tune only this many top layers (0: all)")
    parser.add_argument("--speed", action="store_true", help="also time tagging: frozen, float32, int8")
    parser.add_argument("--speed-answers", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    os.environ.setdefault("OPM_NLP_CACHE_DIR", tempfile.mkdtemp(prefix="opm-bench-cache-"))
    work = args.work / f"n{args.n}_draw{args.draw}{f'_top{args.top_layers}' if args.top_layers else ''}"
    if args.top_layers:
        train_top_layers(args.top_layers)
    work.mkdir(parents=True, exist_ok=True)
    codebook = nhs_codebook(args.nhs)
    train = read_split(args.nhs, "train")
    sample = train.sample(args.n, random_state=args.draw)
    valid = train.drop(sample.index).sample(args.n_valid, random_state=args.draw + 1)
    texts, Y = valid["text"].tolist(), valid[codebook.ids].to_numpy()

    model, record = fit_default(sample, codebook, work)
    final = model.classifier.fine_tuned_
    float_view = final.decision_function(texts)
    rows = [("float32", model)]
    kept = CodingModel.load(work / "model", cache=True)
    use_int8(kept.classifier.fine_tuned_)
    rows.append(("int8 kept", kept))
    oof8 = int8_oof(record, work)
    refit = refit_on(sample, codebook, record, oof8, final, work / "model_int8_oof")
    use_int8(refit.classifier.fine_tuned_)
    rows.append(("int8 all", refit))
    int8_view = kept.classifier.fine_tuned_.decision_function(texts)

    oof_float = record["oof_float"]
    print(f"\n{args.n} coded answers (draw {args.draw}), {len(texts)} validation answers of train.csv, "
          f"{len(codebook.ids)} codes")
    print(f"fine-tuned view, validation: mean |int8 - float32| {np.abs(int8_view - float_view).mean():.3f} "
          f"(float32 SD {float_view.std():.3f}), side of 0 changed {np.mean((int8_view > 0) != (float_view > 0)):.1%}")
    print(f"fine-tuned view, out of fold: mean |int8 - float32| {np.abs(oof8 - oof_float).mean():.3f} "
          f"(float32 SD {oof_float.std():.3f}), side of 0 changed {np.mean((oof8 > 0) != (oof_float > 0)):.1%}")
    print("\n| fine-tuned view | micro-F1 | macro-F1 |\n|---|---:|---:|")
    results = {}
    for name, fitted in rows:
        micro, macro = f1(Y, fitted.classifier.predict(texts), codebook.ids)
        results[name] = {"micro_f1": micro, "macro_f1": macro}
        print(f"| {name} | {micro:.4f} | {macro:.4f} |")
    (work / "results.json").write_text(json.dumps(results, indent=1))
    if args.speed:
        tagging_speed(sample, codebook, work, args)


if __name__ == "__main__":
    main()
