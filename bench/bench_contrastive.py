"""Does a contrastive (SetFit-style) fine-tune of the embedding network help with a few hundred coded answers?
Train split only.

Usage (from the repository root, after `make setup`):

    OPM_NLP_CACHE_DIR=/tmp/opm_cache .venv/bin/python bench/bench_contrastive.py [--nhs DIR]
        [--sizes 400] [--draws 0] [--losses supcon] [--steps 108] [--threads 2] [--no-frozen]

Answers ``pool.sample(size, random_state=draw)`` from four fifths of the NHS ``train.csv`` (the NHS
framework's codebook, bench/nhs_codebook.py, with its examples and definitions) train the default pipeline
(:class:`~opm_nlp.model.coding_model.CodingModel`, frozen network) and the same pipeline on the embeddings of
a network first fine-tuned contrastively on those answers plus the codebook's examples and definitions.
Both are scored on the other fifth of ``train.csv`` (``held_out_fifth``); the test split is not used.

Losses (``--losses``):

- ``pairs``: SetFit's: pairs of texts, cosine similarity pulled to 1 for pairs that share a code and to 0
  for pairs that share none (mean squared error), half of the pairs of each kind.
- ``supcon``: supervised contrastive loss over a batch of texts (temperature 0.1): each text is pulled
  towards the texts of the batch that share one of its codes, away from the others. Batches hold texts
  of similar length (as :class:`~opm_nlp.classify.finetune.FineTunedHead` batches them), each text once
  per pass; ``pairs`` batches are random, padded to their longest text (~3 times the cost per step).

The network (all-MiniLM-L6-v2, mean pooling) trains for ``--steps`` steps of 32 texts at learning rate
2e-5 on ``--threads`` PyTorch threads; the classifier's out-of-fold scores then come from a network that
saw every training answer (no cross-fitting): the gap between the out-of-fold F1 and the held-out F1 is
printed beside the frozen pipeline's to show how much that misleads the decision rule. Results are in
docs/benchmarks.md ("Tried and not kept").
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_quality import held_out_fifth, nhs_codebook, read_split  # noqa: E402

from opm_nlp.classify.decision import suggest  # noqa: E402
from opm_nlp.classify.metrics import agreement_table  # noqa: E402
from opm_nlp.model.coding_model import CodingModel  # noqa: E402

BATCH = 32
LR = 2e-5


def _batches(Y: np.ndarray, loss: str, steps: int, rng: np.random.RandomState, lengths: np.ndarray):
    """Index arrays, one per step: (anchors, partners, targets) for ``pairs``, a batch of rows for ``supcon``
    (rows of similar length, as fine-tuning batches them: little padding)."""
    share = (Y @ Y.T) > 0
    coded = np.flatnonzero(Y.sum(axis=1) > 0)
    batches = []
    for _ in range(steps):
        if loss == "supcon":
            if not batches:
                order = np.argsort(lengths + rng.uniform(0, 3, len(Y)), kind="stable")
                batches = [order[i:i + BATCH] for i in range(0, len(order), BATCH)]
                rng.shuffle(batches)
            yield batches.pop()
            continue
        half = BATCH // 2
        anchors = rng.choice(coded, half)
        partners = np.array([rng.choice(np.flatnonzero(share[a] & (np.arange(len(Y)) != a)) if k % 2 == 0
                                        else np.flatnonzero(~share[a])) for k, a in enumerate(anchors)])
        yield anchors, partners, (np.arange(half) % 2 == 0).astype(np.float32)


def contrastive(texts: list[str], Y: np.ndarray, loss: str, steps: int, seed: int = 0):
    """A :class:`FineTunedHead` holding the network fine-tuned contrastively (no head); its folder is the model."""
    import torch

    from opm_nlp.classify.finetune import TRAIN_MAX_LENGTH, FineTunedHead, _mean_normalised, token_lengths

    torch.manual_seed(seed)
    rng = np.random.RandomState(seed)
    holder = FineTunedHead(seed=seed)
    tokenizer, network = holder._network()
    optimiser = torch.optim.AdamW(network.parameters(), lr=LR)
    network.train()

    def embed(rows):
        inputs = tokenizer([texts[i] for i in rows], padding=True, truncation=True, max_length=TRAIN_MAX_LENGTH,
                           return_tensors="pt")
        return _mean_normalised(network(**inputs).last_hidden_state, inputs["attention_mask"])

    targets_all = torch.from_numpy(Y.astype(np.float32))
    for batch in _batches(Y, loss, steps, rng, token_lengths(texts)):
        if loss == "supcon":
            z = embed(batch)
            sim = z @ z.T / 0.1
            eye = torch.eye(len(batch), dtype=torch.bool)
            positive = ((targets_all[batch] @ targets_all[batch].T) > 0) & ~eye
            log_prob = sim.masked_fill(eye, -1e9).log_softmax(dim=1)
            has = positive.any(dim=1)
            if not has.any():
                continue
            value = -(log_prob * positive).sum(1)[has] / positive.sum(1)[has]
            value = value.mean()
        else:
            anchors, partners, target = batch
            z = embed(np.concatenate([anchors, partners]))
            cosine = (z[:len(anchors)] * z[len(anchors):]).sum(1)
            value = torch.nn.functional.mse_loss(cosine, torch.from_numpy(target))
        optimiser.zero_grad()
        value.backward()
        optimiser.step()
    holder.weights_ = {name: value.detach().numpy().copy() for name, value in network.state_dict().items()}
    return holder


def score(model: CodingModel, coded, held, ids) -> dict:
    """Micro-/macro-F1 on ``held``, out-of-fold micro-F1 on the ``coded`` training answers, codes per answer."""
    predicted = suggest(model.decision, model.predict_proba(held["text"].tolist()))[0].astype(int)
    table = agreement_table(held[ids].to_numpy(), predicted, ids)
    clf = model.classifier
    n = len(clf.oof_scores_)
    oof = suggest(clf.decision_, clf.oof_scores_)[0].astype(int)
    oof_table = agreement_table(coded[ids].to_numpy()[:n], oof, ids)
    return {"micro": table.loc["micro", "f1"], "macro": table.loc["macro", "f1"],
            "oof_micro": oof_table.loc["micro", "f1"], "per_answer": predicted.sum(1).mean()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nhs", type=Path, default=ROOT.parent / "shared" / "data" / "nhs_fft")
    parser.add_argument("--sizes", default="400")
    parser.add_argument("--draws", default="0")
    parser.add_argument("--losses", default="supcon", help="comma-separated: pairs, supcon")
    parser.add_argument("--steps", default="108", help="comma-separated numbers of steps to try")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-frozen", action="store_true", help="leave out the frozen pipeline")
    args = parser.parse_args()
    os.environ.setdefault("OPM_NLP_CACHE_DIR", tempfile.mkdtemp(prefix="opm-bench-cache-"))
    warnings.simplefilter("ignore")
    import torch

    torch.set_num_threads(args.threads)
    codebook = nhs_codebook(args.nhs)
    ids = codebook.ids
    pool, held = held_out_fifth(read_split(args.nhs, "train"), codebook)
    print(f"Held-out fifth of train: {len(held)} answers.\n\n| coded answers | draw | network | micro-F1 | macro-F1 | "
          f"OOF micro-F1 | codes/answer | fine-tune s (CPU s) | fit s (CPU s) |\n|---:|---:|---|---:|---:|---:|---:|---:|---:|",
          flush=True)
    for size in (int(s) for s in args.sizes.split(",")):
        for draw in (int(d) for d in args.draws.split(",")):
            coded = pool.sample(size, random_state=draw)
            runs = [] if args.no_frozen else [("frozen", None, 0)]
            runs += [(loss, loss, int(s)) for loss in args.losses.split(",") if loss for s in args.steps.split(",")]
            for name, loss, steps in runs:
                start, cpu = time.perf_counter(), time.process_time()
                folder = None
                if loss:
                    examples = CodingModel(codebook)._examples()
                    texts = coded["text"].astype(str).tolist() + examples[0]
                    Y = np.vstack([coded[ids].to_numpy(), examples[1]])
                    folder = str(contrastive(texts, Y, loss, steps, seed=draw).network_folder())
                tuned, tuned_cpu = time.perf_counter() - start, time.process_time() - cpu
                model = CodingModel(codebook, embedding_model=folder, fine_tune=0).fit(coded, "text")
                seconds, seconds_cpu = time.perf_counter() - start, time.process_time() - cpu
                r = score(model, coded, held, ids)
                label = name if not loss else f"{name}, {steps} steps"
                print(f"| {size} | {draw} | {label} | {r['micro']:.3f} | {r['macro']:.3f} | {r['oof_micro']:.3f} | "
                      f"{r['per_answer']:.2f} | {tuned:.0f} ({tuned_cpu:.0f}) | {seconds:.0f} ({seconds_cpu:.0f}) |", flush=True)


if __name__ == "__main__":
    main()
