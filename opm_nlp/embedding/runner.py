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

from opm_nlp.embedding.onepass import span_mask

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


def pool_spans(states: Sequence[np.ndarray], mask: np.ndarray) -> np.ndarray:
    """Each span's vector from one answer's token states (each of shape (1, tokens, dim)) and the
    spans' token ``mask`` (:func:`~opm_nlp.embedding.onepass.span_mask`), pooled as :func:`pool` pools
    a whole answer; NaN rows for spans with no token."""
    if not len(mask):
        return np.zeros((0, sum(s.shape[-1] for s in states)), dtype=np.float32)
    vectors = pool(states, mask).astype(np.float32, copy=False)
    vectors[mask.sum(axis=1) == 0] = np.nan
    return vectors


def map_alone(inputs: Sequence[Any], embed: Callable[[Any], Any], threads: int, progress: str | None) -> list:
    """``embed`` each input on a pool of ``threads`` threads; the results, in input order.

    ``progress`` labels a progress bar on stderr (none if ``None``).
    """
    from tqdm.auto import tqdm

    with (ThreadPoolExecutor(max(1, threads)) as workers,
          tqdm(total=len(inputs), desc=progress, unit="answer", disable=progress is None) as bar):
        results = []
        for result in workers.map(embed, inputs):
            results.append(result)
            bar.update(1)
    return results


def each_alone(inputs: Sequence[Any], embed: Callable[[Any], np.ndarray], threads: int,
               progress: str | None) -> np.ndarray:
    """``embed`` each input on a pool of ``threads`` threads; the vectors, stacked in input order."""
    if not inputs:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack(map_alone(inputs, embed, threads, progress)).astype(np.float32, copy=False)


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

    def _states(self, encoding) -> list[np.ndarray]:
        ids = np.asarray([encoding.ids], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids),
                "token_type_ids": np.asarray([encoding.type_ids], dtype=np.int64)}
        return self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})

    def _embed(self, encoding) -> np.ndarray:
        states = self._states(encoding)
        return pool(states, np.ones((1, len(encoding.ids)), dtype=np.int64))[0]

    def _embed_spans(self, item) -> tuple[np.ndarray, np.ndarray]:
        encoding, spans = item
        states = self._states(encoding)
        mask = span_mask(encoding.offsets, encoding.special_tokens_mask, spans)
        return pool(states, np.ones((1, len(encoding.ids)), dtype=np.int64))[0], pool_spans(states, mask)

    def encode(self, texts: list[str], threads: int = 1, progress: str | None = None) -> np.ndarray:
        """Embed ``texts``, shape (len(texts), outputs x dimension), each alone (see the module docstring)."""
        return each_alone(self.tokenizer.encode_batch(texts), self._embed, threads, progress)

    def encode_spans(self, texts: list[str], spans: list[list[tuple[int, int]]], threads: int = 1,
                     progress: str | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each text's vector (as :meth:`encode`) and its spans' vectors pooled from the same forward
        pass (:mod:`opm_nlp.embedding.onepass`; NaN rows for spans past the model's length)."""
        return map_alone(list(zip(self.tokenizer.encode_batch(texts), spans)), self._embed_spans, threads, progress)


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

    def _run(self, features: dict) -> tuple[np.ndarray, list[np.ndarray]]:
        """The text's vector and the token states it was pooled from (top layer first)."""
        import torch

        with torch.no_grad():
            if self.layers == 1:  # the model's own pooling, normalised as sentence-transformers does
                out = self.model(features)
                vector = torch.nn.functional.normalize(out["sentence_embedding"], p=2, dim=1)[0].numpy()
                return vector, [out["token_embeddings"].numpy()]
            inputs = {k: features[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in features}
            states = self.model[0].auto_model(**inputs, output_hidden_states=True).hidden_states
            states = [s.numpy() for s in states[::-1][:self.layers]]
            return pool(states, features["attention_mask"].numpy())[0], states

    def _embed(self, features: dict) -> np.ndarray:
        return self._run(features)[0]

    def _embed_spans(self, item) -> tuple[np.ndarray, np.ndarray]:
        features, mask = item
        vector, states = self._run(features)
        return vector, pool_spans(states, mask)

    def _features(self, texts: list[str]) -> list[dict]:
        tokenize = getattr(self.model, "preprocess", None) or self.model.tokenize  # renamed in v6
        # tokenised here, one text at a time: Hugging Face tokenizers refuse concurrent use
        return [tokenize([text]) for text in texts]

    def encode(self, texts: list[str], threads: int = 1, progress: str | None = None) -> np.ndarray:
        """Embed ``texts``, shape (len(texts), layers x dimension), each alone (see the module docstring)."""
        features = self._features(texts)
        with one_torch_thread():
            return each_alone(features, self._embed, threads, progress)

    def _span_mask(self, text: str, features: dict, spans: list[tuple[int, int]]) -> np.ndarray:
        """Which of the model's tokens of ``text`` each span pools; no token at all (NaN vectors, so
        the spans are embedded alone) if the offsets' tokenisation is not the model's."""
        ids = features["input_ids"][0].tolist()
        found = self.model.tokenizer(text, return_offsets_mapping=True, return_special_tokens_mask=True,
                                     truncation=True, max_length=len(ids))
        if found["input_ids"] != ids:
            return np.zeros((len(spans), len(ids)), dtype=np.float32)
        return span_mask(found["offset_mapping"], found["special_tokens_mask"], spans)

    def encode_spans(self, texts: list[str], spans: list[list[tuple[int, int]]], threads: int = 1,
                     progress: str | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each text's vector (as :meth:`encode`) and its spans' vectors pooled from the same forward
        pass (:mod:`opm_nlp.embedding.onepass`; NaN rows for spans past the model's length)."""
        features = self._features(texts)
        items = [(f, self._span_mask(t, f, s)) for t, f, s in zip(texts, features, spans)]
        with one_torch_thread():
            return map_alone(items, self._embed_spans, threads, progress)
