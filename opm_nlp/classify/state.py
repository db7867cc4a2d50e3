"""A fitted classifier as data: a JSON-able structure and named arrays, and back, with no pickle.

:func:`classifier_state` turns a fitted :class:`~opm_nlp.classify.estimator.EmbeddingClassifier` or
:class:`~opm_nlp.classify.keyword.KeywordClassifier` into ``(state, arrays)``: ``state`` holds the
structure, the parameters and the vocabularies as plain JSON values, each part tagged with its own
type name (``"logistic-regression"``, ``"tfidf-vectorizer"``...), never a module path; ``arrays`` maps
names to numeric numpy arrays (coefficients, idf, priors, thresholds, fine-tuned network weights).
:func:`classifier_from_state` builds the same fitted classifier from them, checking every key, type,
dtype and shape, so a damaged or edited state fails with one :class:`~opm_nlp.exceptions.ModelError`
and no code it names is ever run. The scores of the rebuilt classifier are bit-identical.

Not stored: the embedding model (recorded by id in the model's metadata and set when loading), and
caches rebuilt on first use (the character n-grams of words seen, the fine-tuned network's export).

Examples
--------
>>> state, arrays = classifier_state(clf)                            # doctest: +SKIP
>>> classifier_from_state(state, arrays).predict_proba(["I set goals"])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from opm_nlp.classify.decision import DecisionRule
from opm_nlp.classify.estimator import EmbeddingClassifier
from opm_nlp.classify.finetune import FineTunedHead
from opm_nlp.classify.keyword import KeywordClassifier
from opm_nlp.classify.state_parts import (NONE_TYPE, ArrayReader, check_state_type, checked_params, encode_param,
                                          estimator_params, logistic_from_state, logistic_state, one_hot_from_state,
                                          one_hot_state, state_field, string_lists, tfidf_from_state, tfidf_state)
from opm_nlp.embedding.onepass import SENTENCE_RECIPES
from opm_nlp.exceptions import DataError, ModelError

#: The estimators of one code's head, in the order :meth:`EmbeddingClassifier.predict_proba` reads them.
HEAD_ROLES = ("lexical", "embedding", "stacker", "second")
#: The decision rule's fields and their types (its thresholds are the array ``decision.thresholds``).
_DECISION_FIELDS = {"type": str, "shrink": (int, float), "shared": (int, float, NONE_TYPE), "cap": (int, NONE_TYPE),
                    "at_least_one": bool, "cv": (dict, NONE_TYPE)}
#: Parameters of the classifiers and their types (bool is not taken for int).
_EMBEDDING_PARAMS = {"C_lexical": (int, float), "C_embedding": (int, float), "char_ngrams": bool,
                     "other_codes": bool, "sentences": bool, "sentence_recipe": str, "fine_tune": int,
                     "fine_tune_model": (str, NONE_TYPE), "decision": str,
                     "cv": int, "n_jobs": (int, NONE_TYPE), "random_state": int}
_FINE_TUNED_PARAMS = {"model": (str, NONE_TYPE), "epochs": int, "batch_size": int, "max_length": int,
                      "lr": (int, float), "head_lr": (int, float), "seed": int, "quantize": bool}


# -- the fine-tuned network ------------------------------------------------------------------------
def _fine_tuned_state(head: FineTunedHead, arrays: dict) -> dict:
    weight, bias = head.head_
    arrays["fine_tuned.head.weight"], arrays["fine_tuned.head.bias"] = weight, bias
    for name, value in head.weights_.items():
        arrays[f"fine_tuned.weights.{name}"] = value
    params = {k: encode_param(getattr(head, k), f"fine_tuned.{k}") for k in _FINE_TUNED_PARAMS}
    return {"type": "fine-tuned-head", "params": params, "n_codes": int(head.n_codes_),
            "weights": list(head.weights_)}


def _base_network(model: str | None) -> tuple[dict[str, tuple] | None, int | None]:
    """Names and shapes of the weights of the network a head was fine-tuned from, and its hidden size.

    ``(None, None)`` when that network is not here to compare with: scoring then says so in one line.
    Reads the header of its ``model.safetensors`` and its ``config.json``, never the weights.
    """
    import json

    from opm_nlp.classify.finetune import check_model

    try:
        folder = check_model(model)
    except ModelError:
        return None, None
    if not (folder / "model.safetensors").is_file():
        return None, None
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "np") as handle:
        shapes = {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}  # noqa: SIM118
    config = folder / "config.json"
    hidden = json.loads(config.read_text(encoding="utf-8")).get("hidden_size") if config.is_file() else None
    return shapes, hidden if isinstance(hidden, int) else None


def _fine_tuned_from_state(state, reader: ArrayReader, n_codes: int) -> FineTunedHead:
    where = "fine_tuned"
    check_state_type(state, "fine-tuned-head", where)
    # a head saved before the int8 option scores through float32, as its stacker learned
    head = FineTunedHead(**{"quantize": False, **checked_params(state.get("params"), _FINE_TUNED_PARAMS, where)})
    if state_field(state, "n_codes", int, where) != n_codes:
        raise ModelError(f"{where}: {state['n_codes']} codes, expected {n_codes}")
    base, hidden = _base_network(head.model)
    weight = reader.take("fine_tuned.head.weight", "f", (n_codes, hidden))
    head.head_ = (weight, reader.take("fine_tuned.head.bias", "f", (n_codes,)))
    names = string_lists(state_field(state, "weights", list, where), f"{where}.weights")
    if base is not None:
        unknown = [name for name in names if name not in base]
        # buffers a network rebuilds itself (BERT's position ids) are in its file, not in its state
        missing = [name for name in base if name not in names and not name.endswith("position_ids")]
        if unknown or missing:
            raise ModelError(f"{where}: the weights do not fit the network '{head.model or 'all-MiniLM-L6-v2'}' "
                             f"(unknown {unknown[:3]}, missing {missing[:3]})")
    head.weights_ = {}
    for name in names:
        value = reader.arrays.get(f"fine_tuned.weights.{name}")
        shape = base[name] if base is not None else (None,) * getattr(value, "ndim", 0)
        head.weights_[name] = reader.take(f"fine_tuned.weights.{name}", "fiu", shape)
    head.n_codes_ = n_codes
    head._loaded = head._embedder = None
    return head


# -- the decision rule ----------------------------------------------------------------------------
def _decision_state(rule: DecisionRule, arrays: dict) -> dict:
    arrays["decision.thresholds"] = np.asarray(rule.thresholds, dtype=float)
    return {"type": "decision-rule", "shrink": float(rule.shrink),
            "shared": None if rule.shared is None else float(rule.shared), "cap": rule.cap,
            "at_least_one": bool(rule.at_least_one), "cv": rule.cv}


def _decision_from_state(state, reader: ArrayReader, n_codes: int) -> DecisionRule:
    where = "decision"
    check_state_type(state, "decision-rule", where)
    if set(state) != set(_DECISION_FIELDS):
        raise ModelError(f"{where}: expected the fields {sorted(_DECISION_FIELDS)}, found {sorted(state)}")
    values = {key: state_field(state, key, types, where) for key, types in _DECISION_FIELDS.items() if key != "type"}
    if values["shrink"] < 0 or (values["cap"] is not None and values["cap"] < 1):
        raise ModelError(f"{where}: 'shrink' must be at least 0 and 'cap' at least 1")
    return DecisionRule(reader.take("decision.thresholds", "f", (n_codes,)), **values)


# -- the classifiers -------------------------------------------------------------------------------
def classifier_state(classifier) -> tuple[dict, dict[str, np.ndarray]]:
    """A fitted classifier as ``(state, arrays)``: JSON-able structure and named numeric arrays.

    Raises
    ------
    ModelError
        If ``classifier`` is not a fitted classifier of this package, or holds a parameter that is
        not plain data.
    """
    if isinstance(classifier, KeywordClassifier) and hasattr(classifier, "queries_"):
        state = {"type": "keyword-classifier", "params": {"keywords": [list(k) for k in classifier.keywords]},
                 "queries": classifier.queries_, "n_codes": int(classifier.n_codes_)}
        return state, {"thresholds": np.asarray(classifier.thresholds_)}
    if not (isinstance(classifier, EmbeddingClassifier) and hasattr(classifier, "heads_")):
        raise ModelError(f"Cannot save a {type(classifier).__name__}: expected a fitted EmbeddingClassifier or "
                         f"KeywordClassifier.")
    arrays = {"thresholds": classifier.thresholds_, "prior": classifier.prior_,
              "n_positives": classifier.n_positives_, "oof_scores": classifier.oof_scores_}
    fine_tuned = getattr(classifier, "fine_tuned_", None)  # older classifiers lack the newer views
    uses_context = bool(getattr(classifier, "uses_context_", False))
    state = {
        "type": "embedding-classifier",
        "params": estimator_params(classifier, "params", leave_out=("embedder",)),
        "n_codes": int(classifier.n_codes_),
        "n_examples": int(getattr(classifier, "n_examples_", 0)),
        "uses_context": uses_context,
        "sentence_view": bool(getattr(classifier, "sentence_view_", False)),
        "sentence_recipe": getattr(classifier, "sentence_recipe_", "alone"),
        "vectorizers": [tfidf_state(v, f"vectorizers.{i}", arrays) for i, v in enumerate(classifier.vectorizers_)],
        "context_encoder": one_hot_state(classifier.context_encoder_, "context_encoder") if uses_context else None,
        "heads": [{"code": int(j), **{role: logistic_state(model, f"heads.{j}.{role}", arrays)
                                      for role, model in zip(HEAD_ROLES, head)}}
                  for j, head in sorted(classifier.heads_.items())],
        "fine_tuned": None if fine_tuned is None else _fine_tuned_state(fine_tuned, arrays),
        "decision": None if getattr(classifier, "decision_", None) is None else _decision_state(classifier.decision_,
                                                                                                 arrays),
    }
    return state, {name: np.asarray(value) for name, value in arrays.items()}


def classifier_from_state(state, arrays: Mapping[str, np.ndarray]):
    """The fitted classifier that :func:`classifier_state` gave ``(state, arrays)`` for.

    Raises
    ------
    ModelError
        If a key is missing or unknown, or a value, dtype or shape is not what the classifier needs;
        the message names the part (e.g. ``heads.3.stacker.coef``).
    """
    reader = ArrayReader(arrays)
    kind = state_field(state, "type", str, "classifier")
    if kind == "keyword-classifier":
        classifier = _keyword_from_state(state, reader)
    elif kind == "embedding-classifier":
        classifier = _embedding_from_state(state, reader)
    else:
        raise ModelError(f"classifier: unknown type '{kind}'")
    reader.check_all_taken()
    return classifier


def _keyword_from_state(state: dict, reader: ArrayReader) -> KeywordClassifier:
    params = checked_params(state.get("params"), {"keywords": list}, "keyword-classifier")
    keywords = string_lists(params.get("keywords", []), "keywords", depth=2)
    queries = string_lists(state_field(state, "queries", list, "keyword-classifier"), "queries", depth=3)
    n_codes = state_field(state, "n_codes", int, "keyword-classifier")
    if not len(keywords) == len(queries) == n_codes:
        raise ModelError(f"keyword-classifier: {len(keywords)} keyword lists and {len(queries)} queries for "
                         f"{n_codes} codes")
    if any(not stems or not all(stems) for code in queries for stems in code):
        raise ModelError("keyword-classifier: a query has no stems, or an empty one")
    classifier = KeywordClassifier([tuple(k) for k in keywords])
    classifier.queries_ = queries
    classifier.thresholds_ = reader.take("thresholds", "f", (n_codes,))
    classifier.n_codes_ = n_codes
    return classifier


def _embedding_from_state(state: dict, reader: ArrayReader) -> EmbeddingClassifier:
    where = "embedding-classifier"
    # a model saved before decision rules used per-code thresholds, and refits so
    params = {"decision": "thresholds", **checked_params(state.get("params"), _EMBEDDING_PARAMS, where)}
    # folders saved before the sentence recipe was recorded embedded each sentence alone
    recipe = state_field(state, "sentence_recipe", str, where) if "sentence_recipe" in state else "alone"
    if recipe not in SENTENCE_RECIPES:
        raise ModelError(f"{where}: 'sentence_recipe' is '{recipe}', expected one of {list(SENTENCE_RECIPES)}")
    classifier = EmbeddingClassifier(**{"sentence_recipe": recipe, **params})
    try:
        classifier._check_params()
    except DataError as exc:
        raise ModelError(f"{where}: {exc}") from None
    k = classifier.n_codes_ = state_field(state, "n_codes", int, where)
    if k < 1:
        raise ModelError(f"{where}: n_codes must be at least 1")
    classifier.n_examples_ = state_field(state, "n_examples", int, where)
    classifier.uses_context_ = state_field(state, "uses_context", bool, where)
    classifier.sentence_view_ = state_field(state, "sentence_view", bool, where)
    classifier.sentence_recipe_ = recipe
    classifier.thresholds_ = reader.take("thresholds", "f", (k,))
    classifier.prior_ = reader.take("prior", "f", (k,))
    classifier.n_positives_ = reader.take("n_positives", "iu", (k,))
    classifier.oof_scores_ = reader.take("oof_scores", "f", (None, k))
    vectorizers = state_field(state, "vectorizers", list, where)
    if not 1 <= len(vectorizers) <= 2:
        raise ModelError(f"{where}: {len(vectorizers)} vectorizers, expected 1 or 2")
    classifier.vectorizers_ = [tfidf_from_state(v, f"vectorizers.{i}", reader) for i, v in enumerate(vectorizers)]
    n_lexical = sum(len(v.vocabulary_) for v in classifier.vectorizers_)
    encoder = state_field(state, "context_encoder", (dict, NONE_TYPE), where)
    if (encoder is None) == classifier.uses_context_:
        raise ModelError(f"{where}: 'context_encoder' must be given exactly when 'uses_context' is true")
    if encoder is not None:
        classifier.context_encoder_ = one_hot_from_state(encoder, "context_encoder")
        n_lexical += len(classifier.context_encoder_.categories_[0])
    fine_tuned = state_field(state, "fine_tuned", (dict, NONE_TYPE), where)
    classifier.fine_tuned_ = None if fine_tuned is None else _fine_tuned_from_state(fine_tuned, reader, k)
    n_views = 2 + classifier.sentence_view_ + (fine_tuned is not None)
    classifier.heads_ = _heads_from_state(state_field(state, "heads", list, where), reader, k, n_lexical, n_views)
    decision = state.get("decision")  # absent before decision rules: per-code thresholds
    classifier.decision_ = (DecisionRule(classifier.thresholds_) if decision is None
                            else _decision_from_state(decision, reader, k))
    return classifier


def _heads_from_state(heads: list, reader: ArrayReader, n_codes: int, n_lexical: int, n_views: int) -> dict:
    """Each learnable code's regressions: n-gram, embedding, stacker and (optionally) second stacker."""
    out, n_embedding = {}, None
    for position, head in enumerate(heads):
        j = state_field(head, "code", int, f"heads[{position}]")
        if not 0 <= j < n_codes or j in out:
            raise ModelError(f"heads[{position}]: code {j} is out of range or repeated")
        if not {"code", *HEAD_ROLES[:3]} <= set(head) <= {"code", *HEAD_ROLES}:
            raise ModelError(f"heads.{j}: expected the parts {list(HEAD_ROLES)}, found {sorted(head)}")
        widths = {"lexical": n_lexical, "embedding": n_embedding, "stacker": n_views, "second": n_views + 1}
        models = [logistic_from_state(state_field(head, role, dict, f"heads.{j}"), f"heads.{j}.{role}", reader,
                                       widths[role]) for role in HEAD_ROLES if role in head]
        n_embedding = models[1].coef_.shape[1]
        out[j] = tuple(models)
    return out
