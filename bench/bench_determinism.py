"""Speed and determinism of the embedding encoder: does an answer get the same vector whatever is embedded
with it? Results go in docs/benchmarks.md ("int8 embeddings").

Usage (from the repository root, after `make setup`):

    .venv/bin/python bench/bench_determinism.py [--n 2000] [--runs 3] [--compare] [--sentences]

The answers are built as in bench_tagging.py (each joins two NHS answers, so all are distinct); with
``--sentences`` the texts are their sentences instead (those of answers of two or more, as the sentence
view embeds them), which are short, so a forward pass's fixed cost weighs more. For each
backend, the shipped encoder (``Embedder``, the last three layers, no cache) embeds them all at once;
then shuffled, in pieces of 20 answers, on one thread, and the first 200 each on its own. An answer
counts as differing when any of these gives it a vector that is not bitwise the one it got at once.

``--compare`` measures, on the same answers, the ways of running the network that could make the
default deterministic:

- padded batches: answers sorted by length, up to 64 (and, for ONNX, 2,048 tokens) per forward pass,
  padded to the longest, the runtime's threads on all cores;
- each answer alone: one answer per forward pass, unpadded, on one thread, answers side by side on a
  thread per core (the encoder's way);

for the ONNX export with dynamic int8 (the ``onnx-int8`` backend), float32, and static int8 (QDQ,
activation scales calibrated once on bench/calibration_sentences.txt, generic English sentences written
for this purpose; MatMuls only, as onnxruntime cannot quantise the fused Attention statically), run with
onnxruntime directly; and for PyTorch float32.
Speeds are medians of ``--runs`` runs, the variants taking turns, so a busy machine slows all alike.
Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench_tagging import make_answers  # the answers of the tagging benchmark

LAYERS = 3
CALIBRATION = Path(__file__).with_name("calibration_sentences.txt")


def differing(encode: Callable[[list[str]], np.ndarray], texts: list[str], at_once: np.ndarray,
              single_thread: Callable[[list[str]], np.ndarray] | None = None) -> int:
    """Answers whose vector, embedded shuffled / in pieces of 20 / on one thread / alone, is not ``at_once``'s."""
    perm = np.random.default_rng(0).permutation(len(texts))
    runs = [encode([texts[i] for i in perm])[np.argsort(perm)],
            np.concatenate([encode(texts[i:i + 20]) for i in range(0, len(texts), 20)])]
    if single_thread is not None:
        runs.append(single_thread(texts))
    bad = np.zeros(len(texts), dtype=bool)
    for other in runs:
        bad |= ~np.all(other == at_once, axis=1)
    alone = min(200, len(texts))
    bad[:alone] |= ~np.all(np.concatenate([encode([t]) for t in texts[:alone]]) == at_once[:alone], axis=1)
    return int(bad.sum())


def cosines(vectors: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """Mean and min cosine to the reference, over every answer and each of the pooled layers."""
    n = len(vectors)
    cos = (vectors.reshape(n, LAYERS, -1) * reference.reshape(n, LAYERS, -1)).sum(axis=2)
    return float(cos.mean()), float(cos.min())


def speed(variants: dict[str, Callable[[list[str]], np.ndarray]], texts: list[str], runs: int) -> dict[str, float]:
    """Median answers per second of each variant, the variants taking turns."""
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for encode in variants.values():
        encode(texts[:50])  # warm up
    for _ in range(runs):
        for name, encode in variants.items():
            start = time.perf_counter()
            encode(texts)
            rates[name].append(len(texts) / (time.perf_counter() - start))
    return {name: float(np.median(r)) for name, r in rates.items()}


def shipped(texts: list[str], runs: int) -> np.ndarray:
    """The shipped encoder, per backend; returns the torch vectors (the reference for cosines)."""
    from opm_nlp.embedding.encoder import BACKENDS, Embedder

    encoders = {b: (lambda ts, b=b: Embedder(backend=b, cache=False, layers=LAYERS).encode(ts)) for b in BACKENDS}
    rates = speed(encoders, texts, runs)
    vectors = {b: encoders[b](texts) for b in BACKENDS}
    print(f"\n{len(texts):,} texts, the last {LAYERS} layers, no cache\n")
    print("| backend | texts/s | texts with a differing vector | cosine to torch, mean / min |")
    print("|---|---:|---:|---:|")
    for backend in BACKENDS:
        one = (lambda ts, b=backend: Embedder(backend=b, cache=False, layers=LAYERS, threads=1).encode(ts))
        bad = differing(encoders[backend], texts, vectors[backend], one)
        mean, low = cosines(vectors[backend], vectors["torch"])
        print(f"| {backend} | {rates[backend]:.0f} | {bad:,} of {len(texts):,} | {mean:.4f} / {low:.4f} |", flush=True)
    return vectors["torch"]


def compare(texts: list[str], runs: int, reference: np.ndarray) -> None:
    """Ways of running the network: padded batches or each answer alone; ONNX dynamic int8, fp32 and static
    int8, and PyTorch."""
    import onnxruntime

    from opm_nlp.embedding.cache import cache_root
    from opm_nlp.embedding.encoder import Embedder
    from opm_nlp.embedding.runner import OnnxEncoder, default_threads

    onnxruntime.set_default_logger_severity(3)  # calibration's sessions would warn of unused initializers
    embedder = Embedder(backend="onnx-int8", cache=False, layers=LAYERS)
    encoder = embedder._load()  # makes the export; its tokenizer is the encoder's
    folder = cache_root() / "onnx" / embedder.cache_key_base()
    static = folder.parent / f"{folder.name}-static-int8.onnx"
    if not static.is_file():
        quantize_static(folder / "model.onnx", static, encoder.tokenizer)

    def session(path: Path, threads: int):
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def padded(path: Path):
        run = session(path, default_threads())
        return lambda ts: padded_batches(run, encoder.tokenizer, ts)

    def alone(path: Path):
        run = OnnxEncoder(session(path, 1), encoder.tokenizer)
        return lambda ts: run.encode(ts, threads=default_threads())

    files = {"dynamic int8": folder / "model.int8.onnx", "float32": folder / "model.onnx", "static int8": static}
    variants = {}
    for name, path in files.items():
        variants[f"ONNX {name}, padded batches"] = padded(path)
        variants[f"ONNX {name}, each answer alone"] = alone(path)
    model = Embedder(backend="torch", cache=False, layers=LAYERS)._load().model
    variants["PyTorch float32, padded batches"] = lambda ts: torch_padded(model, ts)
    variants["PyTorch float32, each answer alone"] = (
        lambda ts: Embedder(backend="torch", cache=False, layers=LAYERS).encode(ts))
    rates = speed(variants, texts, runs)
    print(f"\nRunning the network, {len(texts):,} texts, the last {LAYERS} layers\n")
    print("| network, how texts are run | texts/s | texts with a differing vector | cosine to torch, mean / min |")
    print("|---|---:|---:|---:|")
    for name, encode in variants.items():
        vectors = encode(texts)
        mean, low = cosines(vectors, reference)
        one = one_thread(encode) if name == "PyTorch float32, padded batches" else None
        print(f"| {name} | {rates[name]:.0f} | {differing(encode, texts, vectors, one):,} of {len(texts):,} | "
              f"{mean:.4f} / {low:.4f} |", flush=True)


def one_thread(encode: Callable[[list[str]], np.ndarray]) -> Callable[[list[str]], np.ndarray]:
    """``encode`` with PyTorch on one thread, as on a Dask worker (``OMP_NUM_THREADS=1``)."""
    from opm_nlp.embedding.runner import one_torch_thread

    def run(texts: list[str]) -> np.ndarray:
        with one_torch_thread():
            return encode(texts)
    return run


def torch_padded(model, texts: list[str], batch_size: int = 64) -> np.ndarray:
    """PyTorch in padded batches of answers of similar length, on all cores."""
    import torch

    from opm_nlp.embedding.runner import pool

    tokenize = getattr(model, "preprocess", None) or model.tokenize
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = None
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            rows = order[start:start + batch_size]
            features = tokenize([texts[i] for i in rows])
            inputs = {k: features[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in features}
            states = model[0].auto_model(**inputs, output_hidden_states=True).hidden_states
            vectors = pool([s.numpy() for s in states[::-1][:LAYERS]], features["attention_mask"].numpy())
            out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32) if out is None else out
            out[rows] = vectors
    return out


def padded_batches(session, tokenizer, texts: list[str], batch_size: int = 64, max_tokens: int = 2048) -> np.ndarray:
    """Padded batches of answers of similar length, as the encoder ran them before it ran each alone."""
    from opm_nlp.embedding.runner import pool

    encodings = tokenizer.encode_batch(texts)
    lengths = np.array([len(e.ids) for e in encodings])
    order = np.argsort(lengths, kind="stable")
    out = np.zeros((len(texts), 0), dtype=np.float32)
    start = 0
    while start < len(order):
        stop = start + 1
        while stop < len(order) and stop - start < batch_size and (stop - start + 1) * lengths[order[stop]] <= max_tokens:
            stop += 1
        rows = order[start:stop]
        width = lengths[rows].max()
        ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, i in enumerate(rows):
            ids[row, :lengths[i]], mask[row, :lengths[i]] = encodings[i].ids, 1
        vectors = pool(session.run(None, {"input_ids": ids, "attention_mask": mask,
                                          "token_type_ids": np.zeros_like(ids)}), mask)
        if not out.shape[1]:
            out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
        out[rows] = vectors
        start = stop
    return out


def quantize_static(source: Path, target: Path, tokenizer) -> None:
    """Static int8 (QDQ) of the float32 export, activation scales from the calibration sentences."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType
    from onnxruntime.quantization import quantize_static as quantize

    sentences = [line.strip() for line in CALIBRATION.read_text(encoding="utf-8").splitlines() if line.strip()]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter([{"input_ids": np.array([e.ids], np.int64), "attention_mask": np.ones((1, len(e.ids)), np.int64),
                                "token_type_ids": np.zeros((1, len(e.ids)), np.int64)}
                               for e in tokenizer.encode_batch(sentences)])

        def get_next(self):
            return next(self.feeds, None)

    quantize(str(source), str(target), Reader(), quant_format=QuantFormat.QDQ, op_types_to_quantize=["MatMul"],
             per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nhs", type=Path, default=ROOT.parent / "shared" / "data" / "nhs_fft")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compare", action="store_true", help="also compare ways of running the network")
    parser.add_argument("--sentences", action="store_true",
                        help="embed the sentences of the answers (as tagging's sentence view does) instead")
    args = parser.parse_args()
    # exports in a cache of their own, removed at the end: the user's embedding cache is not touched
    cache = os.environ["OPM_NLP_CACHE_DIR"] = tempfile.mkdtemp(prefix="opm-bench-determinism-")
    try:
        texts = make_answers(args.nhs, args.n, seed=1)["answer"].tolist()
        if args.sentences:
            from opm_nlp.embedding.segment import sentences

            texts = list(dict.fromkeys(s for parts in sentences(texts) if len(parts) > 1 for s in parts))
        reference = shipped(texts, args.runs)
        if args.compare:
            compare(texts, args.runs, reference)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print(f"\nCPU: {cpu_name()}, {os.cpu_count()} cores", file=sys.stderr)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    main()
