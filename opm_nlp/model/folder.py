"""The model folder: how a trained model is written to disk and read back, checked.

A saved model is a folder of data, no code::

    model/
      metadata.json      "kind": "opm-nlp model", format version, package versions, embedding model id and
                         weights hash, codebook fingerprint, code order, thresholds, training counts,
                         cross-validated metrics, file hashes
      classifier.json    the fitted classifier's structure, parameters and vocabularies (plain JSON, each
                         part tagged with its type; :mod:`opm_nlp.classify.state`)
      classifier.npz     its arrays (coefficients, idf, thresholds...; numpy ``.npy`` files in a zip, read
                         without pickle)
      codebook.yaml      the codebook it was trained with
      README.md          the model card

Loading a folder runs no code from it: every file is parsed as data and checked (hashes, keys,
types, dtypes, shapes), and anything damaged or edited fails with one :class:`ModelError` line. A
folder of format 1 held a pickle (``classifier.joblib``), which loading would execute: it is refused,
with the command that converts it (:mod:`opm_nlp.model.convert`) or retraining as the way on.

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

import hashlib
import json
import os
import platform
import shutil
import tempfile
import warnings
from importlib import metadata as importlib_metadata
from pathlib import Path

from opm_nlp.classify.state_parts import NONE_TYPE, is_of_type
from opm_nlp.codebook.codes import Codebook, parse_codebook
from opm_nlp.exceptions import ModelError
from opm_nlp.model.arrays import read_arrays, write_arrays

#: Version of the folder format. Format 1 held the classifier as a pickle (see :func:`old_format_hint`).
FORMAT_VERSION = 2
#: What ``metadata.json`` says a model folder is (and what lets ``train --out`` replace one).
MODEL_KIND = "opm-nlp model"
#: Files whose sha256 ``metadata.json`` records, checked before loading.
MODEL_FILES = ("classifier.json", "classifier.npz", "codebook.yaml")
#: The pickle of a format-1 folder; never loaded, except by ``opm-nlp model convert --trust-pickle``.
PICKLE_FILE = "classifier.joblib"
_VERSIONED = ("opm-nlp", "scikit-learn", "numpy", "pandas", "joblib", "sentence-transformers", "torch",
              "transformers", "spacy")
#: Types of the metadata a model needs to load (a key left out takes its default).
_METADATA_TYPES = {"method": str, "codes": list, "review_margin": (int, float), "context_col": (str, NONE_TYPE),
                   "versions": dict, "codebook": dict, "files": dict, "embedding": (dict, NONE_TYPE)}
_EMBEDDING_TYPES = {"model": (str, NONE_TYPE), "weights_sha256": (str, NONE_TYPE), "backend": (str, NONE_TYPE),
                    "layers": int, "fine_tune_epochs": int, "fine_tune_int8": bool, "sentences": bool}


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


def old_format_hint(folder: str | Path) -> str:
    """How to go on with a format-1 folder (a pickled classifier): retrain, or convert if trusted."""
    return (f"Retrain it (opm-nlp train ... --out {folder}), or, only if you trust where the folder came from, "
            f"convert it: opm-nlp model convert {folder} --out NEW_FOLDER --trust-pickle")


def read_metadata(folder: str | Path) -> dict:
    """A folder's ``metadata.json`` as a dict, or a :class:`ModelError` saying what is wrong with it."""
    folder = Path(folder)
    meta_path = folder / "metadata.json"
    if not meta_path.is_file():
        raise ModelError(f"{folder} is not an opm-nlp model folder (no metadata.json). "
                         f"Train one with: opm-nlp train ... --out {folder}")
    try:
        metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # JSON and UTF-8 errors are ValueErrors
        where = f" (line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise ModelError(f"{meta_path}: not valid JSON{where}; retrain the model.") from None
    if not isinstance(metadata, dict):
        raise ModelError(f"{meta_path}: expected a JSON object, found {type(metadata).__name__}; retrain the model.")
    return metadata


def _check_metadata(metadata: dict, meta_path: Path) -> None:
    """Refuse metadata whose values a model cannot load with (``metadata.json`` is not hashed: check it)."""
    def refuse(problem: str):
        raise ModelError(f"{meta_path}: {problem}. Retrain the model, or restore its original metadata.json.")

    for key in ("method", "codebook", "files"):
        if key not in metadata:
            refuse(f"'{key}' is missing")
    for table, values, where in ((_METADATA_TYPES, metadata, ""), (_EMBEDDING_TYPES, metadata.get("embedding"), "embedding.")):
        for key, types in table.items():
            if isinstance(values, dict) and key in values and not is_of_type(values[key], types):
                refuse(f"'{where}{key}' is {type(values[key]).__name__}, not of the type a model records")
    if metadata["method"] not in ("embedding", "keyword"):
        refuse(f"unknown method {metadata['method']!r}")
    if metadata["method"] == "embedding" and not isinstance(metadata.get("embedding"), dict):
        refuse("an embedding model needs its 'embedding' record")
    if not 0 <= metadata.get("review_margin", 0.15) <= 1:
        refuse("'review_margin' must be between 0 and 1")
    embedding = metadata.get("embedding") or {}
    if embedding.get("layers", 1) < 1 or embedding.get("fine_tune_epochs", 0) < 0:
        refuse("'embedding.layers' must be at least 1 and 'embedding.fine_tune_epochs' at least 0")
    files = metadata["files"]
    if sorted(files) != sorted(MODEL_FILES) or not all(isinstance(v, str) for v in files.values()):
        refuse(f"'files' lists {sorted(files)}, expected the hashes of {list(MODEL_FILES)}")


def read_model_info(folder: str | Path) -> tuple[Codebook, dict]:
    """A model folder's codebook and metadata, checked, without loading the classifier.

    Enough for work that needs the codes, thresholds and model identity (reviewing, reporting),
    at no cost in time or memory.

    Raises
    ------
    ModelError
        If the folder is not a model folder, is of format 1 (a pickled classifier), lacks a file, or
        its metadata or codebook is malformed or does not match.
    """
    folder = Path(folder)
    metadata = read_metadata(folder)
    version = metadata.get("format_version")
    if version == 1 or (folder / PICKLE_FILE).exists():
        raise ModelError(f"{folder} is a model folder of format 1, whose classifier is a pickle "
                         f"({PICKLE_FILE}); opm-nlp does not load pickles, because loading one can run any code "
                         f"it holds. {old_format_hint(folder)}")
    if version != FORMAT_VERSION:
        raise ModelError(f"{folder}: model format {version!r} is not supported by this opm-nlp "
                         f"(expects {FORMAT_VERSION}); retrain the model.")
    _check_metadata(metadata, folder / "metadata.json")
    for name in MODEL_FILES:
        if not (folder / name).is_file():
            raise ModelError(f"{folder}: {name} is missing; the model folder is incomplete. Retrain it.")
    codebook_path = folder / "codebook.yaml"
    try:
        text = codebook_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise ModelError(f"{codebook_path}: not a readable UTF-8 text file; retrain the model.") from None
    codebook = parse_codebook(text, source=str(codebook_path))
    if codebook.fingerprint != metadata["codebook"].get("fingerprint"):
        raise ModelError(f"{folder}: codebook.yaml does not match the fingerprint in metadata.json.")
    if metadata.get("codes", codebook.ids) != codebook.ids:
        raise ModelError(f"{folder}: the codes in metadata.json are not those of codebook.yaml, in its order.")
    return codebook, metadata


def _own_files(folder: Path) -> set[str] | None:
    """The files of the model in ``folder`` (metadata, card and hashed files), or None if it holds none."""
    try:
        metadata = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(metadata, dict):
        return None
    files = metadata.get("files")
    # a folder of format 1 says what it is by its version and file hashes; later ones also by "kind"
    if not isinstance(files, dict) or not (metadata.get("kind") == MODEL_KIND
                                           or isinstance(metadata.get("format_version"), int)):
        return None
    return {"metadata.json", "README.md", *(name for name in files if isinstance(name, str) and "/" not in name)}


def check_model_out(folder: str | Path) -> None:
    """Refuse to write a model to ``folder`` when that would delete anything but an earlier model.

    ``folder`` may be missing, empty, or an opm-nlp model folder holding only the model's own files
    (those its ``metadata.json`` lists, the metadata and the model card); writing a model replaces it.

    Raises
    ------
    ModelError
        Naming a few of the files in the way.
    """
    folder = Path(folder)
    if not folder.exists():
        return
    if not folder.is_dir():
        raise ModelError(f"{folder} exists and is not a folder; choose another --out.")
    present = sorted(p.name for p in folder.iterdir())
    if not present:
        return
    own = _own_files(folder)
    extra = present if own is None else [name for name in present if name not in own]
    if not extra:
        return
    shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
    what = ("is not an opm-nlp model folder" if own is None else "holds files that are not the model's")
    raise ModelError(f"{folder} {what} ({shown}); writing the model there would delete them. "
                     f"Choose another --out, or move those files away.")


def write_model_folder(folder: str | Path, classifier, codebook: Codebook, metadata: dict, card: str) -> dict:
    """Write a model folder, replacing ``folder`` as a whole, atomically.

    Parameters
    ----------
    folder : str or Path
        The folder to write: missing, empty, or a model folder holding only its own files
        (:func:`check_model_out`).
    classifier : EmbeddingClassifier or KeywordClassifier
        The fitted estimator, written as ``classifier.json`` and ``classifier.npz``
        (:func:`~opm_nlp.classify.state.classifier_state`).
    codebook : Codebook
        The codebook it was trained with.
    metadata : dict
        Written as ``metadata.json``, with ``kind``, ``format_version`` and ``files`` (the hashes) set.
    card : str
        The model card (Markdown), written as ``README.md``.

    Returns
    -------
    dict
        The metadata as written.

    Raises
    ------
    ModelError
        If ``folder`` holds anything but an earlier model, or the classifier cannot be stored as data.
    """
    from opm_nlp.classify.state import classifier_state

    folder = Path(folder)
    check_model_out(folder)
    state, arrays = classifier_state(classifier)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        (staging / "classifier.json").write_text(
            json.dumps(state, indent=1, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
        write_arrays(staging / "classifier.npz", arrays)
        (staging / "codebook.yaml").write_text(codebook.to_yaml(), encoding="utf-8")
        metadata = {"kind": MODEL_KIND, **metadata}
        metadata.update(kind=MODEL_KIND, format_version=FORMAT_VERSION,
                        files={name: sha256(staging / name) for name in MODEL_FILES})
        (staging / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
        (staging / "README.md").write_text(card, encoding="utf-8")
        _replace(folder, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return metadata


def _replace(folder: Path, staging: Path) -> None:
    if not folder.exists():
        os.replace(staging, folder)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=folder.parent))
    os.replace(folder, old)  # onto the empty folder just made
    try:
        os.replace(staging, folder)
    except OSError:
        os.replace(old, folder)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number a model holds")


def load_model_files(folder: str | Path, codebook: Codebook | None = None) -> tuple[Codebook, dict, object]:
    """A model folder's codebook, metadata and fitted classifier, each checked; no code from the folder runs.

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
    classifier : EmbeddingClassifier or KeywordClassifier
        The fitted estimator (an embedding classifier still needs its embedder set).

    Raises
    ------
    ModelError
        If a file is missing, differs from the hash recorded at save time, or is malformed (a key,
        type, dtype or shape the classifier does not have), the folder is of format 1, or the codebook
        does not match.

    Warns
    -----
    UserWarning
        If the model was saved with another scikit-learn or numpy.
    """
    from opm_nlp.classify.estimator import EmbeddingClassifier
    from opm_nlp.classify.state import classifier_from_state

    folder = Path(folder)
    saved_codebook, metadata = read_model_info(folder)
    for name in MODEL_FILES:
        if sha256(folder / name) != metadata["files"][name]:
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
    state_path = folder / "classifier.json"
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"), parse_constant=_refuse_constant)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{state_path}: not valid JSON ({' '.join(str(exc).split())[:120]}); retrain the "
                         f"model, or restore its original files.") from None
    arrays = read_arrays(folder / "classifier.npz")
    try:
        classifier = classifier_from_state(state, arrays)
    # the state is checked part by part (ModelError); the others are a net for a check that was missed
    except (ModelError, TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
        raise ModelError(f"{state_path}: {' '.join(str(exc).split())}; the classifier is damaged. Retrain the "
                         f"model, or restore its original files.") from None
    embedding = metadata["method"] == "embedding"
    if embedding != isinstance(classifier, EmbeddingClassifier) or classifier.n_codes_ != len(saved_codebook):
        raise ModelError(f"{state_path}: holds a {type(classifier).__name__} of {classifier.n_codes_} codes, which "
                         f"does not fit the folder's '{metadata['method']}' model of {len(saved_codebook)} codes; "
                         f"retrain the model.")
    return saved_codebook, metadata, classifier
