"""Pieces of a classifier's state: checked readers of JSON values and arrays, and scikit-learn estimators as data.

:mod:`opm_nlp.classify.state` builds a whole classifier from these. Each scikit-learn estimator the
classifiers hold (TF-IDF vectorizer, one-hot encoder, logistic regression) becomes a JSON object
tagged with its own type name (``"tfidf-vectorizer"``...), its parameters as plain values, and named
arrays for its fitted numbers; reading it back validates the parameters with scikit-learn's own rules
and the arrays' dtypes and shapes, and raises :class:`~opm_nlp.exceptions.ModelError` otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from opm_nlp.exceptions import ModelError

NONE_TYPE = type(None)
#: TF-IDF parameters that must keep these values: anything else would read files or call code.
_TFIDF_FIXED = {"input": ("content",), "preprocessor": (None,), "tokenizer": (None,), "vocabulary": (None,),
                "dtype": (np.float64, np.float32)}
#: One-hot parameters under which refitting on the saved categories gives back the fitted encoder.
_ONE_HOT_FIXED = {"categories": ("auto",), "drop": (None,), "min_frequency": (None,), "max_categories": (None,)}


def is_of_type(value, types) -> bool:
    """``isinstance(value, types)``, except that a bool is of type int only if ``types`` names bool."""
    types = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool):
        return bool in types
    return isinstance(value, types)


class ArrayReader:
    """The arrays of a saved classifier, taken by name and checked; any left untaken is an error."""

    def __init__(self, arrays: Mapping[str, np.ndarray]):
        self.arrays = dict(arrays)
        self.taken: set[str] = set()

    def take(self, name: str, kinds: str, shape: tuple) -> np.ndarray:
        """The array ``name``, of a dtype kind in ``kinds`` ('f' float, 'i' int...) and ``shape`` (None: any)."""
        if name not in self.arrays:
            raise ModelError(f"array '{name}' is missing")
        value = self.arrays[name]
        if not isinstance(value, np.ndarray) or value.dtype.kind not in kinds:
            raise ModelError(f"array '{name}' has dtype {getattr(value, 'dtype', type(value).__name__)}, "
                             f"expected kind '{kinds}'")
        if value.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, value.shape)):
            expected = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
            raise ModelError(f"array '{name}' has shape {value.shape}, expected {expected}")
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise ModelError(f"array '{name}' holds values that are not finite")
        self.taken.add(name)
        return value

    def check_all_taken(self) -> None:
        """Refuse arrays that no part of the classifier took (a state must hold nothing unexplained)."""
        left = sorted(set(self.arrays) - self.taken)
        if left:
            raise ModelError(f"unexpected arrays {left[:5]}{' ...' if len(left) > 5 else ''}")


def state_field(state, key: str, types, where: str):
    """``state[key]``, checked: ``state`` is a dict holding ``key``, of one of ``types``."""
    if not isinstance(state, dict):
        raise ModelError(f"{where}: expected an object, found {type(state).__name__}")
    if key not in state:
        raise ModelError(f"{where}: '{key}' is missing")
    value = state[key]
    if not is_of_type(value, types):
        raise ModelError(f"{where}: '{key}' is {type(value).__name__}, expected "
                         f"{' or '.join(getattr(t, '__name__', str(t)) for t in (types if isinstance(types, tuple) else (types,)))}")
    return value


def check_state_type(state, tag: str, where: str) -> None:
    """Refuse a part whose ``type`` tag is not ``tag``."""
    found = state_field(state, "type", str, where)
    if found != tag:
        raise ModelError(f"{where}: type '{found}', expected '{tag}'")


def string_lists(value, where: str, depth: int = 1) -> list:
    """``value``, checked to be a list (of lists, ``depth`` deep) of strings."""
    def holds_strings(item, level: int) -> bool:
        if level == 0:
            return isinstance(item, str)
        return isinstance(item, list) and all(holds_strings(v, level - 1) for v in item)

    if not holds_strings(value, depth):
        raise ModelError(f"{where}: expected {'a list of ' * depth}strings")
    return value


# -- parameters: plain JSON values, tuples and dtypes tagged -------------------------------------
def encode_param(value, where: str):
    """A parameter value as JSON: plain values as they are, tuples and numpy dtypes tagged with their type."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and np.isfinite(value):
        return float(value)
    if isinstance(value, tuple):
        return {"type": "tuple", "items": [encode_param(v, where) for v in value]}
    if isinstance(value, list):
        return [encode_param(v, where) for v in value]
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.floating)):
        return {"type": "dtype", "name": np.dtype(value).name}
    raise ModelError(f"{where}: cannot store a parameter of type {type(value).__name__}; a model folder holds data only")


def decode_param(value, where: str):
    """The parameter value :func:`encode_param` gave ``value`` for; a tag it does not know is refused."""
    if isinstance(value, list):
        return [decode_param(v, where) for v in value]
    if not isinstance(value, dict):
        return value  # JSON gives None, bool, int, float or str here
    tag = value.get("type")
    if tag == "tuple" and set(value) == {"type", "items"} and isinstance(value["items"], list):
        return tuple(decode_param(v, where) for v in value["items"])
    if tag == "dtype" and set(value) == {"type", "name"} and value["name"] in ("float32", "float64"):
        return getattr(np, value["name"])
    raise ModelError(f"{where}: a parameter value of unknown form {str(value)[:60]}")


def estimator_params(estimator, where: str, leave_out: tuple = ()) -> dict:
    """A scikit-learn estimator's constructor parameters as JSON (:func:`encode_param`), but ``leave_out``."""
    return {k: encode_param(v, f"{where}.{k}") for k, v in estimator.get_params(deep=False).items() if k not in leave_out}


def checked_params(params, table: dict, where: str) -> dict:
    """``params`` with every key in ``table`` and of the type it names (a key missing takes the default)."""
    if not isinstance(params, dict):
        raise ModelError(f"{where}: 'params' must be an object")
    unknown = sorted(set(params) - set(table))
    if unknown:
        raise ModelError(f"{where}: unknown parameters {unknown[:5]}")
    for key in params:
        state_field(params, key, table[key], f"{where}.params")
    return dict(params)


def new_sklearn_estimator(cls, params, where: str, fixed: Mapping[str, tuple] | None = None):
    """A new, unfitted scikit-learn estimator with ``params``, validated by scikit-learn's own rules."""
    if not isinstance(params, dict):
        raise ModelError(f"{where}: 'params' must be an object")
    defaults = cls().get_params(deep=False)
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ModelError(f"{where}: unknown parameters {unknown[:5]}")
    values = {k: decode_param(v, f"{where}.{k}") for k, v in params.items()}
    for key, allowed in (fixed or {}).items():
        if values.get(key, defaults[key]) not in allowed:
            raise ModelError(f"{where}: parameter '{key}' must be {allowed[0]!r}")
    estimator = cls(**values)
    try:
        estimator._validate_params()
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{where}: {' '.join(str(exc).split())}") from None
    return estimator


# -- scikit-learn parts ----------------------------------------------------------------------------
def tfidf_state(vectorizer, key: str, arrays: dict) -> dict:
    """A fitted TF-IDF vectorizer: parameters and vocabulary (terms in column order); its idf into ``arrays``."""
    terms = [None] * len(vectorizer.vocabulary_)
    for term, index in vectorizer.vocabulary_.items():
        terms[index] = term
    if vectorizer.use_idf:
        arrays[f"{key}.idf"] = np.asarray(vectorizer.idf_)
    return {"type": "tfidf-vectorizer", "params": estimator_params(vectorizer, key), "vocabulary": terms}


def tfidf_from_state(state, key: str, reader: ArrayReader):
    """The fitted TF-IDF vectorizer of :func:`tfidf_state`: reads text only, never files, and calls no code."""
    from sklearn.feature_extraction.text import TfidfTransformer, TfidfVectorizer

    check_state_type(state, "tfidf-vectorizer", key)
    vectorizer = new_sklearn_estimator(TfidfVectorizer, state.get("params"), key, _TFIDF_FIXED)
    ngrams = vectorizer.ngram_range  # scikit-learn checks only that it is a tuple
    if not (len(ngrams) == 2 and all(is_of_type(n, int) for n in ngrams) and 1 <= ngrams[0] <= ngrams[1] <= 10):
        raise ModelError(f"{key}: 'ngram_range' must be two whole numbers from 1 to 10, the first no larger")
    try:
        re.compile(vectorizer.token_pattern or "")
    except re.error:
        raise ModelError(f"{key}: 'token_pattern' is not a regular expression") from None
    terms = string_lists(state_field(state, "vocabulary", list, key), f"{key}.vocabulary")
    vocabulary = {term: index for index, term in enumerate(terms)}
    if len(vocabulary) != len(terms) or not terms:
        raise ModelError(f"{key}: the vocabulary is empty or repeats a term")
    vectorizer.vocabulary_ = vocabulary
    vectorizer.fixed_vocabulary_ = False
    tfidf = TfidfTransformer(norm=vectorizer.norm, use_idf=vectorizer.use_idf, smooth_idf=vectorizer.smooth_idf,
                             sublinear_tf=vectorizer.sublinear_tf)
    if vectorizer.use_idf:
        tfidf.idf_ = reader.take(f"{key}.idf", "f", (len(terms),))
    tfidf.n_features_in_ = len(terms)
    vectorizer._tfidf = tfidf
    return vectorizer


def one_hot_state(encoder, key: str) -> dict:
    """A fitted one-hot encoder of one column (the contexts): parameters and categories."""
    (categories,) = encoder.categories_
    return {"type": "one-hot-encoder", "params": estimator_params(encoder, key),
            "categories": [str(c) for c in categories]}


def one_hot_from_state(state, key: str):
    """The encoder refitted on its own categories, which gives back the same fitted encoder."""
    from sklearn.preprocessing import OneHotEncoder

    check_state_type(state, "one-hot-encoder", key)
    encoder = new_sklearn_estimator(OneHotEncoder, state.get("params"), key, _ONE_HOT_FIXED)
    categories = string_lists(state_field(state, "categories", list, key), f"{key}.categories")
    encoder.fit(np.asarray(categories, dtype=object).reshape(-1, 1))
    if encoder.categories_[0].tolist() != categories:
        raise ModelError(f"{key}: the categories are not distinct and sorted")
    return encoder


def logistic_state(model, key: str, arrays: dict) -> dict:
    """A fitted binary logistic regression: parameters; coefficients, intercept, classes, iterations into ``arrays``."""
    arrays[f"{key}.coef"] = model.coef_
    arrays[f"{key}.intercept"] = model.intercept_
    arrays[f"{key}.classes"] = model.classes_
    arrays[f"{key}.n_iter"] = model.n_iter_
    return {"type": "logistic-regression", "params": estimator_params(model, key)}


def logistic_from_state(state, key: str, reader: ArrayReader, width: int | None):
    """The fitted logistic regression of :func:`logistic_state`, of ``width`` features (None: any)."""
    from sklearn.linear_model import LogisticRegression

    check_state_type(state, "logistic-regression", key)
    model = new_sklearn_estimator(LogisticRegression, state.get("params"), key)
    model.coef_ = reader.take(f"{key}.coef", "f", (1, width))
    model.intercept_ = reader.take(f"{key}.intercept", "f", (1,))
    model.classes_ = reader.take(f"{key}.classes", "iu", (2,))
    if model.classes_.tolist() != [0, 1]:
        raise ModelError(f"{key}: classes {model.classes_.tolist()}, expected [0, 1]")
    model.n_iter_ = reader.take(f"{key}.n_iter", "iu", (1,))
    model.n_features_in_ = model.coef_.shape[1]
    return model
