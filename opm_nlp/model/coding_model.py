"""The model bundle: codebook + embedding model + fitted classifier + thresholds, saved to a folder.

A saved model is a folder::

    model/
      metadata.json      versions, embedding model id and weights hash, codebook fingerprint,
                         code order, thresholds, training counts, cross-validated metrics, file hashes
      classifier.joblib  the fitted scikit-learn estimator (no embedding weights)
      codebook.yaml      the codebook it was trained with
      README.md          the model card

Examples
--------
>>> from opm_nlp import load_codebook
>>> from opm_nlp.model.coding_model import CodingModel
>>> model = CodingModel(load_codebook("codebook/opm_behavior_change.yaml"))  # doctest: +SKIP
>>> model.fit(coded, text_col="answer").save("models/opm")                  # doctest: +SKIP
>>> CodingModel.load("models/opm").tag(new_wave, text_col="answer", id_col="response_id")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import platform
import shutil
import tempfile
import warnings
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np
import pandas as pd

from opm_nlp.classify.estimator import EmbeddingClassifier, KeywordClassifier
from opm_nlp.codebook.codes import Codebook, parse_codebook
from opm_nlp.embedding.encoder import DEFAULT_BACKEND
from opm_nlp.classify.metrics import agreement_table, f1_intervals
from opm_nlp.exceptions import DataError, ModelError
from opm_nlp.columns import NEEDS_REVIEW_COL, SCORE_PREFIX, SUGGESTED_COL, UNCERTAIN_COL, output_columns

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
METHODS = ("embedding", "keyword")
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


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()



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


def resolve_carry(columns, text_col: str, id_col: str, carry: list[str] | None, codebook: Codebook) -> list[str]:
    """Columns to copy into a tagged table: ``carry``, checked, or every column the output does not add."""
    added = set(output_columns(codebook))
    if carry is None:
        clashes = [c for c in columns if c in added]
        if clashes:
            logger.warning("columns %s are replaced by the model's output", clashes)
        return [c for c in columns if c not in (id_col, text_col) and c not in added]
    unknown = [c for c in carry if c not in columns]
    if unknown:
        raise DataError(f"Column(s) {unknown} to carry not found. Columns: {list(columns)}.")
    return list(carry)


class CodingModel:
    """Suggests codes from a codebook for survey answers.

    Parameters
    ----------
    codebook : Codebook
        The codes to suggest.
    method : {'embedding', 'keyword'}
        ``embedding`` learns from coded answers (:class:`~opm_nlp.classify.estimator.EmbeddingClassifier`);
        ``keyword`` is the stem-word query of the codebook's keywords (no learning).
    embedding_model : str, optional
        sentence-transformers model folder or name; default the packaged all-MiniLM-L6-v2.
    review_margin : float
        An answer needs review when a code's score is within this distance of its threshold.
    backend : {'onnx-int8', 'onnx', 'torch'}
        How the embedding network runs (:class:`~opm_nlp.embedding.encoder.Embedder`); default onnx-int8.
    cache : bool
        Use the on-disk embedding cache.
    codebook_examples : bool
        Also learn from the codebook's examples and definitions.
    embedding_layers : int, optional
        Describe answers by the embedding model's last this-many layers
        (:class:`~opm_nlp.embedding.encoder.Embedder`); default three where the model allows, else one.
    fine_tune : int, optional
        Epochs of fine-tuning the embedding network on the coded answers, as a third view of each
        answer (:mod:`opm_nlp.classify.finetune`); 0 keeps the network frozen. Training takes minutes instead of
        seconds, the saved model grows by ~40 MB, and tagging runs the network twice. Default (``None``):
        two epochs when there are at least :data:`~opm_nlp.classify.finetune.MIN_ANSWERS` coded answers and
        the embedding model can be fine-tuned, else 0; :meth:`fine_tune_epochs` says which.
    sentences : bool
        Also score each sentence of an answer of several sentences, and learn from the best sentence's
        score (:class:`~opm_nlp.classify.estimator.EmbeddingClassifier`).
    """

    def __init__(self, codebook: Codebook, method: str = "embedding", embedding_model: str | None = None,
                 review_margin: float = 0.15, backend: str = DEFAULT_BACKEND, cache: bool = True,
                 codebook_examples: bool = True, embedding_layers: int | None = None, fine_tune: int | None = None,
                 sentences: bool = True):
        if method not in METHODS:
            raise ModelError(f"Unknown method '{method}'. Use one of {list(METHODS)}.")
        if fine_tune and method != "embedding":
            raise ModelError(f"Fine-tuning applies to the embedding method only, not '{method}'.")
        if fine_tune:
            from opm_nlp.classify.finetune import check_model

            check_model(embedding_model)  # before any work, not after minutes of embedding
        self.codebook = codebook
        self.method = method
        self.embedding_model = embedding_model
        self.review_margin = review_margin
        self.backend = backend
        self.cache = cache
        self.codebook_examples = codebook_examples
        self.embedding_layers = embedding_layers
        self.fine_tune = fine_tune
        self.sentences = sentences
        self.classifier = None
        self.metadata: dict = {}
        self._embedder = None
        if embedding_layers is not None:
            self.embedder  # noqa: B018 -- checks the layers against the model now, before any work

    # -- training ---------------------------------------------------------------------------
    @property
    def embedder(self):
        """The :class:`~opm_nlp.embedding.encoder.Embedder` (created on first use; ``None`` for keywords)."""
        if self.method != "embedding":
            return None
        if self._embedder is None:
            from opm_nlp.embedding.encoder import Embedder, default_layers

            layers = self.embedding_layers or default_layers(self.embedding_model)
            self._embedder = Embedder(self.embedding_model, backend=self.backend, cache=self.cache, layers=layers)
        return self._embedder

    def _new_classifier(self, n_answers: int):
        if self.method == "keyword":
            return KeywordClassifier([code.keywords for code in self.codebook.codes])
        return EmbeddingClassifier(embedder=self.embedder, fine_tune=self.fine_tune_epochs(n_answers),
                                   fine_tune_model=self.embedding_model, sentences=self.sentences)

    def fine_tune_epochs(self, n_answers: int) -> int:
        """Epochs of fine-tuning that training on ``n_answers`` coded answers will run (see ``fine_tune``)."""
        if self.fine_tune is not None:
            return self.fine_tune
        from opm_nlp.classify.finetune import DEFAULT_EPOCHS, MIN_ANSWERS, can_fine_tune

        if self.method != "embedding" or n_answers < MIN_ANSWERS or not can_fine_tune(self.embedding_model):
            return 0
        return DEFAULT_EPOCHS

    def fit(self, coded: pd.DataFrame | None, text_col: str = "text", sources: list[str] | None = None,
            context_col: str | None = None, progress: bool = False) -> CodingModel:
        """Train on a wide coded table (one 0/1 column per code id).

        Answers with empty text are left out of training and counted in ``metadata['training']``.
        ``context_col`` names a column that says what each answer responds to (e.g. the survey
        question, when one file holds answers to several); tagging then needs the same column.

        Unless ``codebook_examples=False``, the embedding method also learns from the codebook's
        examples and definitions (:meth:`Codebook.examples`), so that codes with few coded answers get
        useful suggestions; ``coded`` may then be ``None`` for a model from the codebook alone.
        ``progress`` shows progress bars of the slow steps of training (embedding, fine-tuning, each code)
        on stderr.
        """
        examples = self._examples()
        if coded is None and self.method == "embedding":
            if examples is None:
                raise DataError("No coded answers to train on, and the codebook's examples are switched off, so "
                                "there is nothing to learn from. Pass coded data, or use the codebook's examples.")
            if context_col is not None:
                raise DataError(f"A context column ('{context_col}') needs coded answers that have it; the "
                                f"codebook's examples have none. Leave out --context-col, or pass coded data.")
            bare = [code.id for code in self.codebook.codes if not code.examples]
            if bare:
                raise DataError(f"To train from the codebook alone, every code needs examples; {len(bare)} have none "
                                f"({', '.join(bare[:5])}{', ...' if len(bare) > 5 else ''}). Add examples to the "
                                f"codebook, or pass coded data.")
        if coded is None:  # the codebook alone (its examples, or for keywords its stems)
            coded = pd.DataFrame(columns=[text_col, *self.codebook.ids])
        missing = [c for c in self.codebook.ids if c not in coded.columns]
        if missing:
            raise DataError(f"Coded data lacks code column(s) {missing}; expected one 0/1 column per code id.")
        texts = coded[text_col].fillna("").astype(str).str.strip()
        usable = texts.ne("").to_numpy()
        X = texts[usable].tolist()
        Y = coded.loc[usable, self.codebook.ids].to_numpy(dtype=int)
        contexts = self._contexts(coded, context_col, "the coded data")
        contexts = None if contexts is None else [c for c, ok in zip(contexts, usable) if ok]
        if self.method == "embedding" and len(X) < 10 and examples is None:
            raise DataError(
                f"Only {len(X)} coded answers with text; the embedding method needs at least 10, or a "
                f"codebook with examples. Code more answers, or use --method keyword."
            )
        classifier = self._new_classifier(len(X))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if self.method == "keyword":
                classifier.fit(X, Y)
            else:
                classifier.fit(X, Y, contexts=contexts, examples=examples, progress=progress)
        few = []
        for warning in caught:
            message = str(warning.message)
            if message.startswith("Code #"):
                index = int(message[6:].split(" ", 1)[0])
                few.append(self.codebook.ids[index])
            else:
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        self.classifier = classifier
        positives = Y.sum(axis=0)
        self.metadata = {
            "format_version": FORMAT_VERSION,
            "created": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
            "method": self.method,
            "versions": package_versions(),
            "embedding": self._embedding_metadata(),
            "codebook": {"name": self.codebook.name, "version": self.codebook.version,
                         "fingerprint": self.codebook.fingerprint},
            "codes": self.codebook.ids,
            "thresholds": {c: round(float(t), 6) for c, t in zip(self.codebook.ids, classifier.thresholds_)},
            "review_margin": self.review_margin,
            "context_col": context_col if self.method == "embedding" else None,
            "training": {
                "answers": len(X),
                "empty_answers_skipped": int((~usable).sum()),
                "sources": sources or [],
                "positives": {c: int(p) for c, p in zip(self.codebook.ids, positives)},
                "codebook_examples": 0 if examples is None else len(examples[0]),
                "few_examples": few,
            },
            "cv_metrics": self._cv_metrics(Y),
        }
        return self

    def _examples(self) -> tuple[list[str], np.ndarray] | None:
        """The codebook's examples as texts and a 0/1 matrix, or None when not used or there are none."""
        if self.method != "embedding" or not self.codebook_examples:
            return None
        pairs = self.codebook.examples()
        if not pairs:
            return None
        column = {code_id: j for j, code_id in enumerate(self.codebook.ids)}
        Y = np.zeros((len(pairs), len(column)), dtype=np.int8)
        Y[np.arange(len(pairs)), [column[code_id] for _, code_id in pairs]] = 1
        return [text for text, _ in pairs], Y

    def _embedding_metadata(self) -> dict | None:
        if self.method != "embedding":
            return None
        return {"model": self.embedder.model_id, "weights_sha256": self.embedder.weights_sha256,
                "backend": self.backend, "layers": self.embedder.layers, "fine_tune_epochs": self.classifier.fine_tune,
                "sentences": bool(getattr(self.classifier, "sentence_view_", False))}

    def _cv_metrics(self, Y: np.ndarray) -> dict | None:
        scores = getattr(self.classifier, "oof_scores_", None)
        if scores is None or len(scores) == 0:  # keywords, or the codebook alone: nothing to cross-validate
            return None
        predicted = (scores >= self.classifier.thresholds_).astype(int)
        table = agreement_table(Y, predicted, self.codebook.ids)
        intervals = f1_intervals(Y, predicted)
        return {
            "folds": self.classifier.cv,
            "note": "out-of-fold scores; thresholds were chosen on the same folds, so slightly optimistic",
            "per_code": {c: {k: _round(table.loc[c, k]) for k in ("precision", "recall", "f1", "kappa")}
                         for c in self.codebook.ids},
            "micro_f1": _round(table.loc["micro", "f1"]),
            "macro_f1": _round(table.loc["macro", "f1"]),
            # 95% bootstrap intervals over the coded answers (evaluation.f1_intervals)
            "micro_f1_interval": [_round(v) for v in intervals["micro"]],
            "macro_f1_interval": [_round(v) for v in intervals["macro"]],
        }

    # -- scoring and tagging ----------------------------------------------------------------
    def _check_fitted(self) -> None:
        if self.classifier is None:
            raise ModelError("This model has not been trained; call fit() or CodingModel.load().")

    def predict_proba(self, texts, contexts=None) -> np.ndarray:
        """Scores (n_answers, n_codes) for answer texts (and their contexts, if trained with them)."""
        self._check_fitted()
        if contexts is None:
            return self.classifier.predict_proba(list(texts))
        return self.classifier.predict_proba(list(texts), contexts=list(contexts))

    @property
    def context_col(self) -> str | None:
        """Column of contexts (e.g. the survey question) the model was trained with, if any."""
        return self.metadata.get("context_col")

    def _contexts(self, frame: pd.DataFrame, column: str | None, source: str) -> list[str] | None:
        if column is None or self.method != "embedding":
            return None
        if column not in frame.columns:
            raise DataError(f"Context column '{column}' not found in {source}. Columns: {list(frame.columns)}. "
                            f"The model was trained with it (--context-col); the answers need it too.")
        return frame[column].fillna("").astype(str).str.strip().tolist()

    @property
    def thresholds(self) -> np.ndarray:
        """Decision threshold per code, in codebook order."""
        self._check_fitted()
        return np.asarray(self.classifier.thresholds_, dtype=float)

    def tag(self, frame: pd.DataFrame, text_col: str, id_col: str, carry: list[str] | None = None,
            progress: bool = False, chunk_size: int = 1024, source: str = "the answers",
            review_margin: float | None = None) -> pd.DataFrame:
        """Suggest codes for each answer of ``frame``.

        ``review_margin`` (default: the model's) sets how close to its threshold a code's score must be
        for the answer to be flagged for review.

        Returns
        -------
        DataFrame
            ``id_col``, ``text_col``, the carried columns, one 0/1 column per code id (the suggestion),
            ``score_<code>`` per code, ``suggested_codes`` (ids joined by ``"; "``),
            ``uncertain_codes`` (codes scored near their threshold) and ``needs_review`` (0/1).
            Empty answers are kept: no codes, empty scores, flagged for review.
        """
        self._check_fitted()
        carry = resolve_carry(frame.columns, text_col, id_col, carry, self.codebook)
        texts = frame[text_col].fillna("").astype(str).str.strip()
        contexts = self._contexts(frame, self.context_col, source)
        has_text = texts.ne("").to_numpy()
        scores = np.full((len(frame), len(self.codebook)), np.nan)
        rows = np.flatnonzero(has_text)
        from tqdm.auto import tqdm

        with tqdm(total=len(rows), desc="tagging", unit="answer", disable=not progress or len(rows) < chunk_size) as bar:
            for start in range(0, len(rows), chunk_size):
                chunk = rows[start:start + chunk_size]
                scores[chunk] = self.predict_proba(texts.iloc[chunk].tolist(),
                                                   None if contexts is None else [contexts[i] for i in chunk])
                bar.update(len(chunk))
        margin = self.review_margin if review_margin is None else review_margin
        return self._assemble(frame, text_col, id_col, carry, scores, has_text, margin)

    def _assemble(self, frame, text_col, id_col, carry, scores, has_text, margin: float) -> pd.DataFrame:
        ids = self.codebook.ids
        thresholds = self.thresholds
        suggested = np.nan_to_num(scores, nan=0.0) >= thresholds
        suggested &= has_text[:, None]
        near = np.abs(scores - thresholds) < margin
        out = frame[[id_col, text_col, *carry]].reset_index(drop=True).copy()
        for j, code_id in enumerate(ids):
            out[code_id] = suggested[:, j].astype(int)
        for j, code_id in enumerate(ids):
            out[SCORE_PREFIX + code_id] = np.round(scores[:, j], 4)
        out[SUGGESTED_COL] = ["; ".join(ids[j] for j in np.flatnonzero(row)) for row in suggested]
        out[UNCERTAIN_COL] = ["; ".join(ids[j] for j in np.flatnonzero(row)) for row in near]
        out[NEEDS_REVIEW_COL] = (near.any(axis=1) | ~has_text).astype(int)
        return out

    # -- persistence -----------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write the model to ``folder`` (replaced as a whole, atomically)."""
        import joblib

        self._check_fitted()
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            joblib.dump(self.classifier, staging / "classifier.joblib", compress=3)
            (staging / "codebook.yaml").write_text(self.codebook.to_yaml(), encoding="utf-8")
            self.metadata["files"] = {name: _sha256(staging / name) for name in _FILES}
            (staging / "metadata.json").write_text(json.dumps(self.metadata, indent=2) + "\n", encoding="utf-8")
            from opm_nlp.model.card import render_model_card

            (staging / "README.md").write_text(render_model_card(self), encoding="utf-8")
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
        return folder

    @classmethod
    def load(cls, folder: str | Path, codebook: Codebook | None = None, backend: str | None = None,
             cache: bool = True) -> CodingModel:
        """Load a saved model, checking its files and codebook.

        Parameters
        ----------
        folder : str or Path
            A folder written by :meth:`save`.
        codebook : Codebook, optional
            If given, it must have the fingerprint the model was trained with.
        backend : {'torch', 'onnx', 'onnx-int8'}, optional
            Embedding backend; default the one the model was trained with.
        cache : bool
            Use the on-disk embedding cache.

        Raises
        ------
        ModelError
            If a file is missing or differs from the hash recorded at save time (joblib runs code
            when it loads, so a changed file is refused), or the codebook does not match.
        """
        import joblib

        folder = Path(folder)
        saved_codebook, metadata = read_model_info(folder)
        for name in _FILES:
            if _sha256(folder / name) != metadata.get("files", {}).get(name):
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
                              f"Scores may differ slightly; retrain to be sure.", UserWarning, stacklevel=2)
        embedding = metadata.get("embedding") or {}
        model = cls(saved_codebook, method=metadata["method"], embedding_model=embedding.get("model"),
                    review_margin=float(metadata.get("review_margin", 0.15)),
                    backend=backend or embedding.get("backend") or DEFAULT_BACKEND, cache=cache,
                    embedding_layers=int(embedding.get("layers", 1)),  # models from before layers: one
                    fine_tune=int(embedding.get("fine_tune_epochs", 0)),
                    sentences=bool(embedding.get("sentences", False)))  # models from before: whole answers
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Trying to unpickle estimator.*")
            with _old_module_paths():
                model.classifier = joblib.load(folder / "classifier.joblib")
        if model.method == "embedding":
            model.classifier.embedder = model.embedder
            recorded = embedding.get("weights_sha256")
            if recorded and model.embedder.weights_sha256 not in (None, recorded):
                warnings.warn(f"The embedding model '{embedding.get('model')}' installed here has different "
                              f"weights from the one this model was trained with; retrain it.", UserWarning,
                              stacklevel=2)
        model.metadata = metadata
        return model


# Where the classes a saved classifier names lived before the package was split into stages, by
# (old module, class name): a pickle names each class by its module, so folders saved before the
# move load through these, whichever module of the new layout now holds the class.
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


def _round(value) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), 4)
