"""Which answers a model was trained on, kept as salted hashes of their response ids.

An audit sample measures a model only if the model never saw its answers. ``opm-nlp train`` therefore
records, in the model folder's ``metadata.json``, ``training_ids = {"salt": <random hex>, "sha256":
[sorted hashes]}``: the SHA-256 of salt + response id for every coded answer it learned from.
:func:`trained_on` answers "was this id trained on?" for the ids of a new table, so ``review sample
--model`` can draw only from unseen answers.

What the salt does and does not protect. The ids themselves are not written, so a model folder shared
with others does not list the respondents' ids in plain text, and a table of hashes precomputed for
common id patterns (``R0001`` ... ``R9999``) is useless because the salt is random per model. But the
salt sits in the same file: anyone holding the folder can hash every candidate id with it and see which
are present. For ids drawn from a small or guessable space that takes seconds, so the hashes hide ids
only as well as the ids are hard to guess; they are not anonymisation. The training answers' text is
never stored in the folder.

Examples
--------
>>> record = training_ids_record(["R1", "R2"])
>>> sorted(record) == ["salt", "sha256"] and len(record["sha256"]) == 2
True
>>> trained_on({"training_ids": record}, ["R2", "R3"]).tolist()
[True, False]
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

import numpy as np
import pandas as pd

from opm_nlp.exceptions import ModelError
from opm_nlp.io.tables import text_values

#: Key of ``metadata.json`` holding the salted hashes.
TRAINING_IDS_KEY = "training_ids"
# 16 random bytes: no two models share a salt, so hashes cannot be compared across model folders.
_SALT_BYTES = 16


def _as_text(ids: Iterable[object]) -> pd.Series:
    """Ids as the text every table reader gives them (stripped; ``3.0`` read from a sheet stays ``3.0``)."""
    return text_values(pd.Series(list(ids), dtype=object))


def hash_ids(ids: Iterable[object], salt: str) -> list[str]:
    """Hex SHA-256 of ``salt``, a NUL byte and each id as text, in the order of ``ids``.

    The NUL separates salt and id so that no salt/id pair can be read as another.
    """
    prefix = salt.encode("utf-8") + b"\0"
    return [hashlib.sha256(prefix + value.encode("utf-8")).hexdigest() for value in _as_text(ids)]


def training_ids_record(ids: Iterable[object], salt: str | None = None) -> dict:
    """The ``training_ids`` entry of a model's metadata for the response ids it was trained on.

    Parameters
    ----------
    ids : iterable
        Response ids of the coded answers the model learned from.
    salt : str, optional
        Hex salt; by default a new random one (:mod:`secrets`).

    Returns
    -------
    dict
        ``{"salt": salt, "sha256": sorted distinct hashes}`` (sorted, so the file does not keep the ids' order).
    """
    salt = secrets.token_hex(_SALT_BYTES) if salt is None else salt
    return {"salt": salt, "sha256": sorted(set(hash_ids(ids, salt)))}


def trained_on(metadata: dict, ids: Iterable[object]) -> np.ndarray:
    """Boolean array: True for each id whose salted hash the model folder keeps.

    All False when the metadata keeps no ``training_ids`` (a model trained before they were recorded, or
    built by a Python user calling :meth:`CodingModel.fit` directly).

    Raises
    ------
    ModelError
        If ``training_ids`` is present but not a salt and a list of hex hashes (an edited metadata.json).
    """
    ids = list(ids)
    record = (metadata or {}).get(TRAINING_IDS_KEY)
    if record is None:
        return np.zeros(len(ids), dtype=bool)
    salt = record.get("salt") if isinstance(record, dict) else None
    hashes = record.get("sha256") if isinstance(record, dict) else None
    if not isinstance(salt, str) or not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
        raise ModelError(f"The model's metadata.json has a malformed '{TRAINING_IDS_KEY}' entry (expected a salt "
                         f"and a list of sha256 hashes); retrain the model, or restore its original metadata.json.")
    known = set(hashes)
    return np.array([h in known for h in hash_ids(ids, salt)], dtype=bool)
