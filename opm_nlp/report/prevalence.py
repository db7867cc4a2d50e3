"""The report's estimates: per code, the share of answered respondents, with the method that made it.

:func:`estimate_table` picks, per table, the method the data allow (:mod:`opm_nlp.report.estimate`):

- ``human-coded``: every answer was coded or reviewed by a person;
- ``prediction-powered``: an audit sample (``report --audit``) corrects the model's scores on the rest;
- ``adjusted``: no audit, but the model's held-out (else cross-validated) confusion counts per code
  (``report --model``): adjusted classify-and-count, resting on the assumption that this wave's errors
  look like those;
- ``model-only``: the model's suggestions counted as if true.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from opm_nlp.codebook.codes import Codebook
from opm_nlp.columns import SCORE_PREFIX, human_coded_mask
from opm_nlp.io import tables as io_tables
from opm_nlp.report.estimate import (
    Estimate,
    adjusted,
    audit_size_for,
    human_coded,
    model_only,
    prediction_powered,
)

#: Columns the estimates add to the report's frequencies (percent of respondents who answered).
ESTIMATE_COLUMNS = ["estimate_pct", "estimate_ci_low", "estimate_ci_high", "estimate_method", "model_only_pct",
                    "audit_only_pct", "audit_only_ci_low", "audit_only_ci_high", "effective_audit_n"]
#: What the report's estimates table holds.
ESTIMATES_NOTE = ("Per code: the estimated % of respondents who answered, its 95% interval and the method "
                  "(prediction-powered: model scores on every answer corrected by a random audit coded blind; "
                  "adjusted: corrected by the model's measured sensitivity and specificity; human-coded; model-only: "
                  "suggestions counted as true). Beside it the model-only figure, the audit-only figure and interval, "
                  "and how many hand-coded audit answers the model was worth (effective_audit_n).")
#: The half-width (in proportion) an audit should reach for a figure to be reportable.
REPORTABLE_MARGIN = 0.05


def trust_of(metadata: dict | None) -> dict | None:
    """The model's trust figures (held-out, else cross-validated), or None when the model has none."""
    if metadata is None:
        return None
    from opm_nlp.model.metadata import trust_figures

    return trust_figures(metadata)


def estimate_table(table: pd.DataFrame, codebook: Codebook, text_col: str, id_col: str, audit=None,
                   trust: dict | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Per code, the estimate of its share among answered respondents and how it was made.

    Parameters
    ----------
    table : DataFrame
        The wave (wide, prepared; ``score_<code>`` columns when tagged).
    audit : Audit, optional
        From :func:`opm_nlp.report.audit.read_audit`: human codes of a random sample coded blind.
    trust : dict, optional
        The model's trust figures (:func:`trust_of`); their per-code confusion counts allow adjusted
        estimates without an audit.

    Returns
    -------
    (DataFrame, list of str)
        Index: code ids. Columns: label, :data:`ESTIMATE_COLUMNS`, audit_n. Percentages are of answered
        respondents. And notes for the reader.
    """
    answered = io_tables.answered(table[text_col])
    frame = table[answered].reset_index(drop=True)
    human = human_coded_mask(frame)
    notes: list[str] = []
    if audit is not None:
        in_audit = frame[id_col].astype(str).str.strip().isin(audit.codes.index).to_numpy()
        dropped = len(audit.codes) - int(in_audit.sum())
        if dropped:
            notes.append(f"{dropped} audit answer(s) have no text in the wave and are left out of the estimates "
                         f"(the estimates are of respondents who answered).")
    per_code = (trust or {}).get("per_code") or {}
    estimates = code_estimates(frame, codebook, id_col, audit=audit, trust=trust)
    rows, needed = [], []
    for code, est in estimates.items():
        suggested = frame[code].to_numpy(dtype=float)
        labels = np.where(human, suggested, np.nan)
        if est.method == "adjusted":
            counts = {k: int(per_code[code][k]) for k in ("tp", "fp", "fn", "tn")}
            needed.append(audit_size_for(**counts, margin=REPORTABLE_MARGIN, n_answers=int((~human).sum())))
        classical = est.classical
        rows.append({
            "code": code, "label": codebook[code].label,
            "estimate_pct": 100 * est.estimate, "estimate_ci_low": 100 * est.low, "estimate_ci_high": 100 * est.high,
            "estimate_method": est.method,
            "model_only_pct": 100 * model_only(suggested, reviewed=human, labels=labels).estimate,
            "audit_only_pct": 100 * classical.estimate if classical else np.nan,
            "audit_only_ci_low": 100 * classical.low if classical else np.nan,
            "audit_only_ci_high": 100 * classical.high if classical else np.nan,
            "effective_audit_n": est.effective_n if est.effective_n is not None else np.nan,
            "audit_n": est.n_audit,
        })
    if needed:
        notes.append(f"'adjusted' estimates correct the model's share by its {trust.get('kind', 'measured')} "
                     f"sensitivity and specificity; they rest on the assumption that this wave's errors look like "
                     f"those. A random audit of about {max(needed)} answers, coded blind ('opm-nlp review sample'), "
                     f"would make every figure reportable to within ±{100 * REPORTABLE_MARGIN:.0f} points "
                     f"(report --audit).")
    return pd.DataFrame(rows).set_index("code"), notes


def code_estimates(frame: pd.DataFrame, codebook: Codebook, id_col: str | None, audit=None, trust: dict | None = None, *,
                   finite_population: bool = True) -> dict[str, Estimate]:
    """Per code, the estimate the data allow over ``frame``'s answers (all answered), by the module's rules.

    Parameters
    ----------
    frame : DataFrame
        Answered answers only (a wave, or one group of it), wide and prepared.
    id_col : str or None
        Response-id column (needed with ``audit``).
    audit : Audit, optional
        Its answers that are rows of ``frame`` (and nobody reviewed) correct the model's scores there.
    trust : dict, optional
        The model's trust figures (:func:`trust_of`): per-code confusion counts for adjusted estimates.
    finite_population : bool
        Prediction-powered intervals about these answers (True), or about a population they sample
        (False: what a difference between waves compares, as a test on counts does).

    Returns
    -------
    dict
        Code id -> :class:`~opm_nlp.report.estimate.Estimate`, in codebook order.
    """
    human = human_coded_mask(frame)
    in_audit = np.zeros(len(frame), bool)
    if audit is not None:
        ids = frame[id_col].astype(str).str.strip()
        in_audit = ids.isin(audit.codes.index).to_numpy() & ~human
    per_code = (trust or {}).get("per_code") or {}
    out = {}
    for code in codebook.ids:
        suggested = frame[code].to_numpy(dtype=float)
        score_col = SCORE_PREFIX + code
        scores = frame[score_col].to_numpy(dtype=float) if score_col in frame.columns else suggested
        labels = np.where(human, suggested, np.nan)
        if len(frame) and human.all():
            out[code] = human_coded(suggested)
        elif in_audit.any():
            labels[in_audit] = audit.codes.loc[ids[in_audit], code].to_numpy(dtype=float)
            out[code] = prediction_powered(np.clip(np.nan_to_num(scores, nan=0.0), 0, 1), labels, in_audit, human,
                                           finite_population=finite_population)
        elif code in per_code and all(k in per_code[code] for k in ("tp", "fp", "fn", "tn")):
            counts = {k: int(per_code[code][k]) for k in ("tp", "fp", "fn", "tn")}
            out[code] = adjusted(suggested, **counts, reviewed=human, labels=labels)
        else:
            out[code] = model_only(suggested, reviewed=human, labels=labels)
    return out


def how_made(estimates: pd.DataFrame, audit, trust: dict | None, model: str | None) -> list[str]:
    """The lines of the report's "How these numbers were made" box."""
    methods = estimates["estimate_method"].value_counts()
    lines = ["Methods per code: " + ", ".join(f"{m} {n}" for m, n in methods.items()) + "."]
    if audit is not None:
        n = int(estimates["audit_n"].max())
        lines.append(f"Audit: {n} answers coded blind ({audit.source}); design: "
                     f"{audit.design or 'not recorded in the file (passed with --audit as a random sample)'}. "
                     f"Mean effective audit size {estimates['effective_audit_n'].replace(np.inf, np.nan).mean():.0f}.")
    else:
        lines.append("No audit sample: estimates other than human-coded rest on the model's own figures.")
    lines.append(f"Model: {model}." if model else "Model: not given (pass --model to quote its agreement figures).")
    if trust:
        lines.append(f"The model's {trust.get('kind')} agreement with human coders on {trust.get('answers')} answers: "
                     f"micro-F1 {_two(trust.get('micro_f1'))}, macro-F1 {_two(trust.get('macro_f1'))}.")
    return lines


def _two(value: object) -> str:
    """A figure with two decimals, or as it is when not a number."""
    return f"{value:.2f}" if isinstance(value, (int, float)) else str(value)


def corrects(estimates: pd.DataFrame) -> bool:
    """True when some estimate corrects the model's suggestions for its errors (else they repeat the counts)."""
    return bool(estimates["estimate_method"].isin(["prediction-powered", "adjusted"]).any())
