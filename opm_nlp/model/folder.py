"""The model folder: how a trained model is written to disk and read back, checked.

A saved model is a folder::

    model/
      metadata.json      versions, embedding model id and weights hash, codebook fingerprint,
                         code order, thresholds, training counts, cross-validated metrics, file hashes
      classifier.joblib  the fitted scikit-learn estimator (no embedding weights)
      codebook.yaml      the codebook it was trained with
      README.md          the model card

This module knows the files, not the model: :meth:`CodingModel.save <opm_nlp.model.coding_model.CodingModel.save>`
and :meth:`~opm_nlp.model.coding_model.CodingModel.load` build on :func:`write_model_folder` and
:func:`load_model_files`.

Examples
--------
>>> from opm_nlp.model.folder import read_model_info
>>> codebook, metadata = read_model_info("models/opm_default")  # doctest: +SKIP
>>> metadata["thresholds"]["goal_setting"]                        # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import tempfile
import warnings
from importlib import metadata as importlib_metadata
from pathlib import Path

from opm_nlp.codebook.codes import Codebook, parse_codebook
from opm_nlp.exceptions import ModelError

#: Version of the folder format; a folder of another version is refused (retrain the model).
FORMAT_VERSION = 1
#: Files whose sha256 ``metadata.json`` records, checked before loading.
_FILES = ("classifier.joblib", "codebook.yaml")
_VERSIONED = ("opm-nlp", "scikit-learn", "numpy", "pandas", "joblib", "sentence-transformers", "torch",
              "transformers", "spacy")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a model depends on."""
    versions = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            pass
    return versions


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_model_info(folder: str | Path) -> tuple[Codebook, dict]:
    """A model folder's codebook and metadata, checked, without loading the classifier.

    Enough for work that needs the codes, thresholds and model identity (reviewing, reporting),
    at no cost in time or memory.

    Raises
    ------
    ModelError
        If the folder is not a model folder, lacks a file, or its codebook does not match its metadata.
    """
    folder = Path(folder)
    meta_path = folder / "metadata.json"
    if not meta_path.is_file():
        raise ModelError(f"{folder} is not an opm-nlp model folder (no metadata.json). "
                         f"Train one with: opm-nlp train ... --out {folder}")
    try:
        metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelError(f"{meta_path}: not valid JSON (line {exc.lineno}); retrain the model.") from None
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{folder}: model format {metadata.get('format_version')!r} is not supported "
                         f"by this opm-nlp (expects {FORMAT_VERSION}); retrain the model.")
    for name in _FILES:
        if not (folder / name).is_file():
            raise ModelError(f"{folder}: {name} is missing; the model folder is incomplete. Retrain it.")
    codebook_path = folder / "codebook.yaml"
    codebook = parse_codebook(codebook_path.read_text(encoding="utf-8"), source=str(codebook_path))
    if codebook.fingerprint != metadata.get("codebook", {}).get("fingerprint"):
        raise ModelError(f"{folder}: codebook.yaml does not match the fingerprint in metadata.json.")
    return codebook, metadata


def write_model_folder(folder: str | Path, classifier, codebook: Codebook, metadata: dict, card: str) -> dict:
    """Write a model folder, replacing ``folder`` as a whole, atomically.

    Parameters
    ----------
    folder : str or Path
        The folder to write; an existing one must be a model folder (or empty).
    classifier : object
        The fitted estimator, pickled with joblib.
    codebook : Codebook
        The codebook it was trained with.
    metadata : dict
        Written as ``metadata.json``, with ``files`` set to the hashes this function returns.
    card : str
        The model card (Markdown), written as ``README.md``.

    Returns
    -------
    dict
        ``{file name: sha256}`` of ``classifier.joblib`` and ``codebook.yaml``.

    Raises
    ------
    ModelError
        If ``folder`` exists and is not a model folder.
    """
    import joblib

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        joblib.dump(classifier, staging / "classifier.joblib", compress=3)
        (staging / "codebook.yaml").write_text(codebook.to_yaml(), encoding="utf-8")
        files = {name: sha256(staging / name) for name in _FILES}
        metadata = {**metadata, "files": files}
        (staging / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
        (staging / "README.md").write_text(card, encoding="utf-8")
        if folder.exists():
            if not (folder / "metadata.json").is_file() and any(folder.iterdir()):
                raise ModelError(f"{folder} exists and is not an opm-nlp model folder; choose another --out.")
            old = folder.with_name(f".{folder.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(folder, old)
            os.replace(staging, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return files


def load_model_files(folder: str | Path, codebook: Codebook | None = None) -> tuple[Codebook, dict, object]:
    """A model folder's codebook, metadata and fitted classifier, each checked.

    Parameters
    ----------
    folder : str or Path
        A folder written by :func:`write_model_folder`.
    codebook : Codebook, optional
        If given, it must have the fingerprint the model was trained with.

    Returns
    -------
    codebook : Codebook
        The codebook saved in the folder.
    metadata : dict
        ``metadata.json``.
    classifier : object
        The unpickled estimator (an embedding classifier still needs its embedder set).

    Raises
    ------
    ModelError
        If a file is missing or differs from the hash recorded at save time (joblib runs code
        when it loads, so a changed file is refused), or the codebook does not match.

    Warns
    -----
    UserWarning
        If the model was saved with another scikit-learn or numpy.
    """
    import joblib

    folder = Path(folder)
    saved_codebook, metadata = read_model_info(folder)
    for name in _FILES:
        if sha256(folder / name) != metadata.get("files", {}).get(name):
            raise ModelError(f"{folder / name} differs from the file saved with this model (sha256 mismatch); "
                             f"refusing to load it. Retrain the model or restore the original file.")
    if codebook is not None and codebook.fingerprint != saved_codebook.fingerprint:
        raise ModelError(
            f"Codebook {codebook.source or ''} (fingerprint {codebook.fingerprint}) is not the one the model "
            f"in {folder} was trained with ({saved_codebook.fingerprint}). Retrain the model with this "
            f"codebook, or use the codebook saved in the model folder."
        )
    current = package_versions()
    for name, version in metadata.get("versions", {}).items():
        if name in ("scikit-learn", "numpy") and current.get(name) not in (None, version):
            warnings.warn(f"Model in {folder} was saved with {name} {version}; this is {current[name]}. "
                          f"Scores may differ slightly; retrain to be sure.", UserWarning, stacklevel=3)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Trying to unpickle estimator.*")
        with _old_module_paths():
            classifier = joblib.load(folder / "classifier.joblib")
    return saved_codebook, metadata, classifier


# Where the classes a saved classifier names lived before the package was split into stages. A
# pickle names its classes' modules, so folders saved before the move load through these aliases.
_MOVED = {
    ("opm_nlp.classifier", "EmbeddingClassifier"): "opm_nlp.classify.estimator",
    ("opm_nlp.classifier", "KeywordClassifier"): "opm_nlp.classify.keyword",
    ("opm_nlp.finetune", "FineTunedHead"): "opm_nlp.classify.finetune",
}


@contextlib.contextmanager
def _old_module_paths():
    """Let a pickle that names a class at its old module find it at its new one, while it loads."""
    import importlib
    import sys
    import types

    added: dict[str, types.ModuleType] = {}
    for (old, name), new in _MOVED.items():
        if old in sys.modules:
            continue  # a real module of that name: leave it alone
        module = added.setdefault(old, types.ModuleType(old))
        setattr(module, name, getattr(importlib.import_module(new), name))
    sys.modules.update(added)
    try:
        yield
    finally:
        for old in added:
            sys.modules.pop(old, None)
