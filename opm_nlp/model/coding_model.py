"""The coding model: codebook + embedding model + fitted classifier + thresholds.

It trains on coded answers (:meth:`CodingModel.fit`), scores and tags new ones
(:meth:`CodingModel.tag`), and is saved to and loaded from a model folder (:mod:`opm_nlp.model.folder`).

Examples
--------
>>> from opm_nlp import load_codebook
>>> from opm_nlp.model.coding_model import CodingModel
>>> model = CodingModel(load_codebook("codebook/opm_behavior_change.yaml"))  # doctest: +SKIP
>>> model.fit(coded, text_col="answer").save("models/opm")                  # doctest: +SKIP
>>> CodingModel.load("models/opm").tag(new_wave, text_col="answer", id_col="response_id")  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from opm_nlp.classify.decision import DecisionRule, rule_of
from opm_nlp.classify.estimator import EmbeddingClassifier, FewExamplesWarning
from opm_nlp.classify.keyword import KeywordClassifier
from opm_nlp.codebook.codes import Codebook
from opm_nlp.embedding.encoder import DEFAULT_BACKEND
from opm_nlp.exceptions import DataError, ModelError
from opm_nlp.io.tables import answered, text_values
from opm_nlp.model.folder import load_model_files, write_model_folder
from opm_nlp.model.metadata import training_metadata
from opm_nlp.model.tagged import resolve_carry, tagged_table

if TYPE_CHECKING:  # pragma: no cover
    from opm_nlp.model.options import TrainOptions

METHODS = ("embedding", "keyword")


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

    @classmethod
    def from_options(cls, codebook: Codebook, options: TrainOptions) -> CodingModel:
        """A model to train with the settings of ``options`` (:class:`~opm_nlp.model.options.TrainOptions`).

        ``options.context_col`` is not the model's but the data's: pass it to :meth:`fit`.
        """
        return cls(codebook, **options.model_kwargs())

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
            self._check_codebook_alone(examples, context_col)
        if coded is None:  # the codebook alone (its examples, or for keywords its stems)
            coded = pd.DataFrame(columns=[text_col, *self.codebook.ids])
        missing = [c for c in self.codebook.ids if c not in coded.columns]
        if missing:
            raise DataError(f"Coded data lacks code column(s) {missing}; expected one 0/1 column per code id.")
        texts = text_values(coded[text_col])
        usable = answered(texts)
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
        few = self._fit_classifier(classifier, X, Y, contexts, examples, progress)
        self.classifier = classifier
        self.metadata = training_metadata(self, Y, int((~usable).sum()), sources, examples, few, context_col)
        return self

    def _check_codebook_alone(self, examples, context_col: str | None) -> None:
        """Refuse training the embedding method without coded answers when the codebook cannot carry it."""
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

    def _fit_classifier(self, classifier, X, Y, contexts, examples, progress: bool) -> list[str]:
        """Fit ``classifier``; return the ids of codes with too few examples (its other warnings pass on)."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if self.method == "keyword":
                classifier.fit(X, Y)
            else:
                classifier.fit(X, Y, contexts=contexts, examples=examples, progress=progress)
        few = []
        for warning in caught:
            if issubclass(warning.category, FewExamplesWarning):
                few.append(self.codebook.ids[warning.message.code_index])
            else:
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        return few

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

    def predict_with_evidence(self, texts, contexts=None) -> tuple[np.ndarray, np.ndarray]:
        """The scores of :meth:`predict_proba` and, from the same pass, each code's evidence span
        (n_answers, n_codes, 2) in each text (:func:`~opm_nlp.classify.evidence.predict_with_evidence`)."""
        from opm_nlp.classify.evidence import predict_with_evidence

        self._check_fitted()
        return predict_with_evidence(self.classifier, list(texts), None if contexts is None else list(contexts))

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
        return text_values(frame[column]).tolist()

    @property
    def thresholds(self) -> np.ndarray:
        """Decision threshold per code, in codebook order (those the decision rule compares scores with)."""
        self._check_fitted()
        return np.asarray(rule_of(self.classifier).thresholds, dtype=float)

    @property
    def decision(self) -> DecisionRule:
        """The decision rule tagging applies (:mod:`opm_nlp.classify.decision`)."""
        self._check_fitted()
        return rule_of(self.classifier)

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
            ``uncertain_codes`` (codes whose decision a change of score under ``review_margin`` would
            flip: near their threshold, or near the border of the per-answer cap), ``needs_review`` (0/1),
            ``evidence`` (``code_id: "sentence"`` per suggested code, joined by ``"; "``) and
            ``evidence_spans`` (JSON ``{"code_id": [start, end]}``, code points into the answer as in the
            output): the sentence that the model's sentence view rated highest for each suggested code,
            the whole answer for one of a single sentence (:mod:`opm_nlp.classify.evidence`).
            Empty answers are kept: no codes, empty scores, flagged for review.
        """
        self._check_fitted()
        carry = resolve_carry(frame.columns, text_col, id_col, carry, self.codebook)
        texts = text_values(frame[text_col])
        contexts = self._contexts(frame, self.context_col, source)
        has_text = answered(texts)
        scores = np.full((len(frame), len(self.codebook)), np.nan)
        spans = np.zeros((*scores.shape, 2), dtype=np.int64)
        rows = np.flatnonzero(has_text)
        from tqdm.auto import tqdm

        with tqdm(total=len(rows), desc="tagging", unit="answer", disable=not progress or len(rows) < chunk_size) as bar:
            for start in range(0, len(rows), chunk_size):
                chunk = rows[start:start + chunk_size]
                scores[chunk], spans[chunk] = self.predict_with_evidence(
                    texts.iloc[chunk].tolist(), None if contexts is None else [contexts[i] for i in chunk])
                bar.update(len(chunk))
        margin = self.review_margin if review_margin is None else review_margin
        return tagged_table(frame, text_col, id_col, carry, scores, spans, has_text, self.decision,
                            self.codebook.ids, margin)

    # -- persistence -----------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write the model to ``folder``, a folder of data (JSON, YAML and arrays; :mod:`opm_nlp.model.folder`).

        ``folder`` is replaced as a whole, atomically; it must be missing, empty or an earlier model folder
        holding only the model's files, else a :class:`~opm_nlp.exceptions.ModelError` names what is in the way.
        """
        from opm_nlp.model.card import render_model_card

        self._check_fitted()
        folder = Path(folder)
        self.metadata = write_model_folder(folder, self.classifier, self.codebook, self.metadata,
                                           card=render_model_card(self))
        return folder

    @classmethod
    def load(cls, folder: str | Path, codebook: Codebook | None = None, backend: str | None = None,
             cache: bool = True) -> CodingModel:
        """Load a saved model, checking its files and codebook; no code from the folder runs.

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
            If a file is missing, differs from the hash recorded at save time or is malformed, the
            folder is of format 1 (a pickled classifier, never loaded), or the codebook does not
            match (:func:`~opm_nlp.model.folder.load_model_files`).
        """
        saved_codebook, metadata, classifier = load_model_files(folder, codebook)
        embedding = metadata.get("embedding") or {}
        model = cls(saved_codebook, method=metadata["method"], embedding_model=embedding.get("model"),
                    review_margin=float(metadata.get("review_margin", 0.15)),
                    backend=backend or embedding.get("backend") or DEFAULT_BACKEND, cache=cache,
                    embedding_layers=int(embedding.get("layers", 1)),  # models from before layers: one
                    fine_tune=int(embedding.get("fine_tune_epochs", 0)),
                    sentences=bool(embedding.get("sentences", False)))  # models from before: whole answers
        model.classifier = classifier
        if model.method == "embedding":
            model.classifier.embedder = model.embedder
            recorded = embedding.get("weights_sha256")
            if recorded and model.embedder.weights_sha256 not in (None, recorded):
                warnings.warn(f"The embedding model '{embedding.get('model')}' installed here has different "
                              f"weights from the one this model was trained with; retrain it.", UserWarning,
                              stacklevel=2)
        model.metadata = metadata
        return model

