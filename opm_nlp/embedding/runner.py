"""Running the embedding network on answers, each answer on its own: the same answer, the same vector.

An answer's embedding must not depend on the answers embedded with it, or the same answer would get
other scores in another file, chunk size, cache state or engine. Batching breaks that in two ways:
dynamic int8 quantisation scales a batch's activations by the batch's largest value, and padding and
batch size change the order of float sums (float32 last bits, for torch too). Thread count changes
float sums as well, and Dask's workers run with ``OMP_NUM_THREADS=1``.

So each answer runs alone, unpadded, on one thread; answers run side by side on a pool of threads
(onnxruntime and torch release the GIL). The vector then depends only on the answer, the network and
the machine's instruction set. For int8 on 2 cores this is as fast as padded batches (docs/benchmarks.md,
"int8 embeddings"): no padding, and both cores busy with whole answers.

:class:`OnnxEncoder` runs an ONNX export (:mod:`opm_nlp.embedding.onnx`) with onnxruntime and
tokenizers; :class:`TorchEncoder` runs a sentence-transformers model in PyTorch. Both can describe an
answer by the mean-pooled token states of the network's last layers (:func:`pool`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

#: Most texts embedded without a progress bar: a bar for a few answers only flickers.
QUIET_UP_TO = 64


def default_threads() -> int:
    """Answers embedded at once: the CPUs this process may use (the vectors do not depend on it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def pool(states: Sequence[np.ndarray], mask: np.ndarray) -> np.ndarray:
    """Mean-pool each layer's token states over the real tokens, L2-normalise, and put them side by side."""
    weights = mask[:, :, None].astype(np.float32)
    count = np.clip(weights.sum(axis=1), 1e-9, None)
    blocks = []
    for hidden in states:
        pooled = (hidden * weights).sum(axis=1) / count
        blocks.append(pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None))
    return np.concatenate(blocks, axis=1)


def each_alone(inputs: Sequence[Any], embed: Callable[[Any], np.ndarray], threads: int,
               progress: str | None) -> np.ndarray:
    """``embed`` each input on a pool of ``threads`` threads; the vectors, stacked in input order.

    ``progress`` labels a progress bar on stderr (none if ``None``).
    """
    from tqdm.auto import tqdm

    if not inputs:
        return np.zeros((0, 0), dtype=np.float32)
    with (ThreadPoolExecutor(max(1, threads)) as workers,
          tqdm(total=len(inputs), desc=progress, unit="answer", disable=progress is None) as bar):
        vectors = []
        for vector in workers.map(embed, inputs):
            vectors.append(vector)
            bar.update(1)
    return np.stack(vectors).astype(np.float32, copy=False)


class OnnxEncoder:
    """Mean-pooled, L2-normalised embeddings from an ONNX transformer (as sentence-transformers does);
    with several outputs (the last layers), each pooled and normalised, side by side.

    Parameters
    ----------
    session : onnxruntime.InferenceSession
        The export of :func:`~opm_nlp.embedding.onnx.export_onnx`, loaded with one intra-op thread.
    tokenizer : tokenizers.Tokenizer
        The model's tokenizer, truncating to the model's length and not padding.
    """

    def __init__(self, session, tokenizer):
        self.session = session
        self.tokenizer = tokenizer
        self.inputs = {i.name for i in session.get_inputs()}

    def _embed(self, encoding) -> np.ndarray:
        ids = np.asarray([encoding.ids], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids),
                "token_type_ids": np.asarray([encoding.type_ids], dtype=np.int64)}
        states = self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})
        return pool(states, feed["attention_mask"])[0]

    def encode(self, texts: list[str], threads: int = 1, progress: str | None = None) -> np.ndarray:
        """Embed ``texts``, shape (len(texts), outputs x dimension), each alone (see the module docstring)."""
        return each_alone(self.tokenizer.encode_batch(texts), self._embed, threads, progress)


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """PyTorch on one intra-op thread meanwhile (its float sums depend on the thread count)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class TorchEncoder:
    """A sentence-transformers model run in PyTorch: its own sentence embedding (``layers=1``, any
    pooling) or the mean-pooled last ``layers`` layers (as :func:`pool`), top one first.

    Parameters
    ----------
    model : SentenceTransformer
        The loaded model.
    layers : int
        How many of its last layers describe each text; 1 is the model's sentence embedding.
    """

    def __init__(self, model, layers: int = 1):
        self.model = model
        self.layers = layers

    def _embed(self, features: dict) -> np.ndarray:
        import torch

        with torch.no_grad():
            if self.layers == 1:  # the model's own pooling, normalised as sentence-transformers does
                vector = self.model(features)["sentence_embedding"]
                return torch.nn.functional.normalize(vector, p=2, dim=1)[0].numpy()
            inputs = {k: features[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in features}
            states = self.model[0].auto_model(**inputs, output_hidden_states=True).hidden_states
            return pool([s.numpy() for s in states[::-1][:self.layers]], features["attention_mask"].numpy())[0]

    def encode(self, texts: list[str], threads: int = 1, progress: str | None = None) -> np.ndarray:
        """Embed ``texts``, shape (len(texts), layers x dimension), each alone (see the module docstring)."""
        tokenize = getattr(self.model, "preprocess", None) or self.model.tokenize  # renamed in v6
        # tokenised here, one text at a time: Hugging Face tokenizers refuse concurrent use
        features = [tokenize([text]) for text in texts]
        with one_torch_thread():
            return each_alone(features, self._embed, threads, progress)
