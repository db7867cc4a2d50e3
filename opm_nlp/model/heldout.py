"""Held-out figures: how well a model agrees with people on answers it was not trained on, kept in its folder.

``opm-nlp evaluate MODEL --data HELD_OUT ... --save`` measures them (:func:`opm_nlp.classify.metrics.agreement_report`)
and :func:`save_heldout_metrics` records them as ``heldout_metrics`` in the folder's ``metadata.json``,
rewriting the model card beside it; the classifier, its arrays and the codebook are not touched, so
the file hashes the folder checks on loading stay valid. :func:`heldout_metrics` turns an agreement
report into that record; :func:`check_not_trained_on` refuses answers the model learned from.

Examples
--------
>>> from opm_nlp.classify.metrics import agreement_report
>>> from opm_nlp.model.coding_model import CodingModel
>>> model = CodingModel.load("models/opm_default")                                   # doctest: +SKIP
>>> report = agreement_report(model, held_out, "answer", "response_id")              # doctest: +SKIP
>>> save_heldout_metrics(model, "models/opm_default", heldout_metrics(report, ["held_out.csv"]))  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from opm_nlp.exceptions import DataError, ModelError
from opm_nlp.model.folder import MODEL_FILES, read_model_info, sha256

if TYPE_CHECKING:  # pragma: no cover
    from opm_nlp.model.coding_model import CodingModel

#: Per-code figures of an agreement table kept in ``heldout_metrics``.
_PER_CODE = ("precision", "recall", "f1", "kappa", "kappa_low", "kappa_high", "alpha", "agreement")


def _round(value) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), 4)


def heldout_metrics(report: dict, data: Sequence[str]) -> dict:
    """The ``heldout_metrics`` record of an agreement report.

    Parameters
    ----------
    report : dict
        From :func:`~opm_nlp.classify.metrics.agreement_report` (model against one person).
    data : sequence of str
        Names of the files of coded answers it was measured on.

    Returns
    -------
    dict
        ``data``, ``answers``, ``date`` (UTC, ISO 8601), ``micro_f1``, ``macro_f1`` and their 95%
        bootstrap intervals, ``micro_kappa``, ``macro_kappa`` and theirs, ``micro_alpha``,
        ``macro_alpha``, and ``per_code``: precision, recall, f1, kappa, kappa_low, kappa_high, alpha,
        agreement and the confusion counts tp, fp, fn, tn of the model against the person.
    """
    table, intervals = report["model_vs_human"], report["f1_intervals"]
    codes = list(report["confusion"])
    return {
        "data": [str(name) for name in data],
        "answers": int(report["n_answers"]),
        "date": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "note": "answers coded by people that the model was not trained on; 95% intervals are bootstrap "
                "intervals over those answers",
        "micro_f1": _round(table.loc["micro", "f1"]),
        "macro_f1": _round(table.loc["macro", "f1"]),
        "micro_f1_interval": [_round(v) for v in intervals["micro"]],
        "macro_f1_interval": [_round(v) for v in intervals["macro"]],
        "micro_kappa": _round(table.loc["micro", "kappa"]),
        "macro_kappa": _round(table.loc["macro", "kappa"]),
        "micro_kappa_interval": [_round(table.loc["micro", k]) for k in ("kappa_low", "kappa_high")],
        "macro_kappa_interval": [_round(table.loc["macro", k]) for k in ("kappa_low", "kappa_high")],
        "micro_alpha": _round(table.loc["micro", "alpha"]),
        "macro_alpha": _round(table.loc["macro", "alpha"]),
        "per_code": {code: {**{k: _round(table.loc[code, k]) for k in _PER_CODE}, **report["confusion"][code]}
                     for code in codes},
    }


def check_not_trained_on(metadata: dict, ids: Sequence, data_name: str, folder: str | Path) -> None:
    """Refuse held-out answers the model was trained on, as far as its folder can tell.

    With salted hashes of the training ids in the folder (:mod:`opm_nlp.model.training_ids`, where
    present), the ids are checked one by one; without them, a file with the name of one the model was
    trained on is refused.

    Raises
    ------
    DataError
        Naming how many answers (or which file) the model was trained on.
    """
    from opm_nlp.model.training_ids import TRAINING_IDS_KEY, trained_on

    if (metadata or {}).get(TRAINING_IDS_KEY) is not None:
        overlap = int(trained_on(metadata, list(ids)).sum())
        if overlap:
            raise DataError(f"{data_name}: {overlap} of its {len(ids)} answers are among those the model in {folder} "
                            f"was trained on, so its figures would not be held-out ones. Evaluate on answers "
                            f"the model has not seen, or leave out --save to see the figures without "
                            f"recording them.")
        return
    sources = (metadata.get("training") or {}).get("sources") or []
    if Path(data_name).name in sources:
        raise DataError(f"{data_name}: the model in {folder} was trained on a file of this name, so its figures "
                        f"would not be held-out ones. Evaluate on answers the model has not seen, or leave out "
                        f"--save to see the figures without recording them.")


def save_heldout_metrics(model: CodingModel, folder: str | Path, figures: dict) -> dict:
    """Record ``figures`` as the ``heldout_metrics`` of the model folder it was loaded from.

    ``metadata.json`` gains (or replaces) ``heldout_metrics`` and the model card (``README.md``) is
    written again from it; both are written to temporary files first and renamed over the old ones,
    so a failure leaves the folder as it was. The hashed files are not touched.

    Parameters
    ----------
    model : CodingModel
        The model loaded from ``folder`` (its ``metadata`` is updated too).
    folder : str or Path
        Its model folder.
    figures : dict
        From :func:`heldout_metrics`.

    Returns
    -------
    dict
        The metadata as written.

    Raises
    ------
    ModelError
        If the folder no longer holds the model that was loaded (another model, or a file changed).
    """
    from opm_nlp.io.tables import atomic_output
    from opm_nlp.model.card import render_model_card

    folder = Path(folder)
    _, current = read_model_info(folder)
    if current.get("files") != model.metadata.get("files") or current.get("created") != model.metadata.get("created"):
        raise ModelError(f"{folder} no longer holds the model that was evaluated (it was replaced meanwhile); "
                         f"evaluate it again.")
    for name in MODEL_FILES:
        if sha256(folder / name) != current["files"][name]:
            raise ModelError(f"{folder / name} differs from the file saved with this model (sha256 mismatch); "
                             f"refusing to record figures for it. Retrain the model or restore the original file.")
    metadata = {**current, "heldout_metrics": figures}
    previous = model.metadata
    model.metadata = metadata
    try:
        card = render_model_card(model)
        with atomic_output(folder / "README.md") as card_tmp, atomic_output(folder / "metadata.json") as meta_tmp:
            card_tmp.write_text(card, encoding="utf-8")
            meta_tmp.write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    except BaseException:
        model.metadata = previous
        raise
    return metadata
