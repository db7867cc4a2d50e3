"""Converting a model folder of format 1, whose classifier is a pickle, to the current format.

A folder of format 1 held the fitted classifier as ``classifier.joblib``, a pickle: loading it runs
whatever code the file names, and the hash beside it in ``metadata.json`` proves nothing against
someone who edits both. opm-nlp never loads such a folder; :func:`convert_model_folder` unpickles it
once, on the caller's explicit word that the folder is trusted (``--trust-pickle``), and writes the same
model as data (:mod:`opm_nlp.model.folder`). The scores of the converted model are those of the original.

Examples
--------
>>> convert_model_folder("models/old", "models/old_v2", trust_pickle=True)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

from opm_nlp.codebook.codes import parse_codebook
from opm_nlp.exceptions import ModelError
from opm_nlp.model.folder import PICKLE_FILE, check_model_out, load_model_files, read_metadata, sha256

#: What ``--trust-pickle`` accepts, said where it is refused.
PICKLE_RISK = ("Converting unpickles classifier.joblib, and a pickle runs any code it holds when it is loaded: "
               "a folder from someone else could take over your account.")

# Where the classes a format-1 pickle names lived before the package was split into stages: a pickle
# names its classes' modules, so folders saved before the move load through these aliases.
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


def convert_model_folder(folder: str | Path, out: str | Path, trust_pickle: bool = False) -> Path:
    """Write the model of a format-1 ``folder`` (a pickled classifier) to ``out`` in the current format.

    Parameters
    ----------
    folder : str or Path
        A model folder of format 1; it is read, never changed.
    out : str or Path
        The folder to write: missing, empty or an earlier model folder
        (:func:`~opm_nlp.model.folder.check_model_out`); not ``folder`` itself.
    trust_pickle : bool
        Must be True: the caller vouches for ``folder``, whose pickle is loaded (and so may run code).

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    ModelError
        Without ``trust_pickle``; if ``folder`` is not a complete, unaltered model folder of format 1
        (hashes and codebook fingerprint as its metadata records), or ``out`` is in the way.
    """
    import joblib

    from opm_nlp.classify.estimator import EmbeddingClassifier
    from opm_nlp.classify.keyword import KeywordClassifier
    from opm_nlp.model.coding_model import CodingModel

    folder, out = Path(folder), Path(out)
    if not trust_pickle:
        raise ModelError(f"Refusing to convert {folder} without --trust-pickle. {PICKLE_RISK} Pass --trust-pickle "
                         f"only for a folder you trained yourself or got from someone you trust; else retrain "
                         f"the model (opm-nlp train ... --out DIR).")
    metadata = read_metadata(folder)
    if metadata.get("format_version") != 1 or not (folder / PICKLE_FILE).is_file():
        raise ModelError(f"{folder} is not a model folder of format 1 with {PICKLE_FILE} "
                         f"(format {metadata.get('format_version')!r}); there is nothing to convert.")
    if out.resolve() == folder.resolve():
        raise ModelError(f"--out is the folder being converted ({folder}); the original is kept as it is: "
                         f"choose another --out.")
    files = metadata.get("files")
    for name in (PICKLE_FILE, "codebook.yaml"):
        if not (folder / name).is_file() or not isinstance(files, dict) or sha256(folder / name) != files.get(name):
            raise ModelError(f"{folder / name} is missing or differs from the file saved with this model "
                             f"(sha256 mismatch); refusing to convert it.")
    codebook = parse_codebook((folder / "codebook.yaml").read_text(encoding="utf-8"),
                              source=str(folder / "codebook.yaml"))
    if codebook.fingerprint != (metadata.get("codebook") or {}).get("fingerprint"):
        raise ModelError(f"{folder}: codebook.yaml does not match the fingerprint in metadata.json.")
    check_model_out(out)  # before unpickling: nothing is run for an --out that would be refused
    with _old_module_paths():
        classifier = joblib.load(folder / PICKLE_FILE)
    method = metadata.get("method")
    kind = {"embedding": EmbeddingClassifier, "keyword": KeywordClassifier}.get(method)
    if kind is None or not isinstance(classifier, kind):
        raise ModelError(f"{folder / PICKLE_FILE} holds a {type(classifier).__name__}, not the classifier of a "
                         f"'{method}' model; retrain the model.")
    model = CodingModel(codebook, method=method)
    model.classifier = classifier
    created = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    model.metadata = {**metadata, "converted": {"from_format_version": 1, "date": created}}
    model.save(out)
    load_model_files(out)  # the converted folder loads as data, or this says why not
    return out
