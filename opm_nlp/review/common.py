"""Review: people confirm or correct the model's suggestions, and the result feeds training.

This module holds what every review tool shares (Label Studio in :mod:`opm_nlp.review.labelstudio`, the
spreadsheet in :mod:`opm_nlp.review.sheet`): preparing a tagged table for review, how uncertain each
suggestion is, the model version stamped on it, which rows a person has reviewed, and how often
reviewers accept the model's codes.

A *reviewed* table is the wide house format (one 0/1 column per code id) with the provenance columns
of :mod:`opm_nlp.columns`; only rows with ``reviewed`` = 1 carry human codes.

Examples
--------
>>> from opm_nlp.review.common import review_agreement
>>> table, summary = review_agreement(reviewed, codebook)  # doctest: +SKIP
>>> summary["changed"], table.loc["goal_setting", "kappa"]  # doctest: +SKIP
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from opm_nlp.classify.decision import DecisionRule, suggest
from opm_nlp.columns import SCORE_PREFIX
from opm_nlp.codebook.codes import Codebook
from opm_nlp.exceptions import ReviewError
from opm_nlp.columns import REVIEWED_COL
from opm_nlp.codebook.coded import default_columns, parse_binary, to_wide
from opm_nlp.model.reviewed import reviewed_mask, suggestion_matrix

logger = logging.getLogger(__name__)

#: How unsure the model is about an answer, 0 (every score far from its threshold) to 1 (a score on it).
UNCERTAINTY_COL = "uncertainty"
#: Threshold assumed when the model's own thresholds are unknown (only a codebook was given).
DEFAULT_THRESHOLD = 0.5


def model_version(codebook: Codebook, metadata: dict | None = None) -> str:
    """Name of the model behind the suggestions: codebook fingerprint and training time.

    ``b78bcfecfe68896b@2026-11-26T08:11:10+00:00`` for a model; ``b78bcfecfe68896b@unknown-model``
    when only the codebook is known.
    """
    if metadata:
        fingerprint = metadata.get("codebook", {}).get("fingerprint", codebook.fingerprint)
        return f"{fingerprint}@{metadata.get('created', 'unknown-time')}"
    return f"{codebook.fingerprint}@unknown-model"


def thresholds_of(codebook: Codebook, metadata: dict | None = None) -> np.ndarray:
    """Decision threshold per code (codebook order) from model metadata, else 0.5."""
    saved = (metadata or {}).get("thresholds") or {}
    return np.array([float(saved.get(c, DEFAULT_THRESHOLD)) for c in codebook.ids])


def decision_rule_of(codebook: Codebook, metadata: dict | None = None) -> DecisionRule:
    """The decision rule behind a model's suggestions, from its ``metadata.json``: its thresholds
    (:func:`thresholds_of`) with the cap and "at least one" of its ``decision`` record; per-code
    thresholds for a model that records no rule, 0.5 for every code when only a codebook is known."""
    record = (metadata or {}).get("decision") or {}
    cap = record.get("cap")
    return DecisionRule(thresholds_of(codebook, metadata), shrink=float(record.get("shrink") or 0.0),
                        shared=record.get("shared_threshold"), cap=None if cap is None else int(cap),
                        at_least_one=bool(record.get("at_least_one")))


def code_closeness(scores: np.ndarray, rule: DecisionRule | np.ndarray) -> np.ndarray:
    """How close each code's score is to flipping its decision under the model's rule, 0 to 1.

    1 when the score sits where the code's decision flips and 0 when it is as far from that as a score
    can be (its threshold's distance to 0 or 1). The distance to a flip is the one ``tag`` flags
    ``uncertain_codes`` by (:func:`opm_nlp.classify.decision.suggest`): with a cap per answer, a kept code
    is also close when a cut code is close behind it, and a code given by "at least one" is 1. With
    per-code thresholds it is ``1 - |score - threshold| / room``. NaN where the score is NaN.

    Parameters
    ----------
    scores : ndarray of shape (n_answers, n_codes)
        Scores in [0, 1]; NaN for answers the model did not score.
    rule : DecisionRule or ndarray of shape (n_codes,)
        The model's rule (:func:`decision_rule_of`), or per-code thresholds alone.
    """
    scores = np.asarray(scores, dtype=float)
    if not isinstance(rule, DecisionRule):
        rule = DecisionRule(np.asarray(rule, dtype=float))
    suggested, distance = suggest(rule, scores)
    room = np.where(suggested, 1.0 - rule.thresholds, rule.thresholds)
    closeness = np.clip(1.0 - distance / np.maximum(room, 1e-9), 0.0, 1.0)
    return np.where(np.isnan(scores), np.nan, closeness)


def uncertainty(scores: np.ndarray, rule: DecisionRule | np.ndarray) -> np.ndarray:
    """How unsure the model is about each answer, from 0 to 1, under its decision rule: the largest
    :func:`code_closeness` over its codes. Answers without scores (empty text) get 1.

    Parameters
    ----------
    scores : ndarray of shape (n_answers, n_codes)
        Scores in [0, 1]; NaN for answers the model did not score.
    rule : DecisionRule or ndarray of shape (n_codes,)
        The model's rule (:func:`decision_rule_of`), or per-code thresholds alone.
    """
    scores = np.asarray(scores, dtype=float)
    if scores.shape[1] == 0:
        return np.ones(len(scores))
    return np.nan_to_num(code_closeness(scores, rule), nan=1.0).max(axis=1)


def prepare_for_review(frame: pd.DataFrame, codebook: Codebook, text_col: str | None = None,
                       id_col: str | None = None, source: str = "the tagged table"
                       ) -> tuple[pd.DataFrame, np.ndarray, str, str]:
    """Check a table written by ``opm-nlp tag`` and return it with its scores, ready for review.

    Parameters
    ----------
    frame : DataFrame
        The tagged table as read from file.
    codebook : Codebook
        The codebook the answers were tagged with.
    text_col, id_col : str, optional
        Answer and id columns; by default the first two columns, where ``opm-nlp tag`` puts them.
    source : str
        Names the table in error messages (usually its path).

    Returns
    -------
    tagged : DataFrame
        The table with 0/1 code columns parsed (wide format; other columns kept).
    scores : ndarray of shape (n_answers, n_codes)
        ``score_<code>`` as floats (NaN for empty answers).
    text_col, id_col : str
        The columns used.

    Raises
    ------
    ReviewError
        If the score columns of ``codebook`` are missing.
    DataError
        If the id or answer column is a code or score column (:func:`opm_nlp.codebook.coded.default_columns`),
        or the ids or the 0/1 code columns are not valid (:func:`opm_nlp.codebook.coded.to_wide`).
    """
    text_col, id_col = default_columns(frame, codebook, text_col, id_col, source=source)
    columns = [str(c) for c in frame.columns]
    score_cols = [SCORE_PREFIX + c for c in codebook.ids]
    missing = [c for c in score_cols if c not in columns]
    if missing:
        raise ReviewError(
            f"{source}: score column(s) {missing[:3]}{' ...' if len(missing) > 3 else ''} not found; expected the "
            f"output of opm-nlp tag with this codebook (one score_<code> column per code). Tag the answers "
            f"first: opm-nlp tag MODEL_DIR answers.csv --text-col ... --id-col ... --out tagged.csv"
        )
    tagged = to_wide(frame, codebook, text_col, id_col, format="wide", source=source)
    scores = np.column_stack([pd.to_numeric(tagged[c], errors="coerce").to_numpy(dtype=float)
                              for c in score_cols])
    return tagged, scores, text_col, id_col


def review_agreement(reviewed: pd.DataFrame, codebook: Codebook, source: str = "the reviewed table"
                     ) -> tuple[pd.DataFrame, dict]:
    """How often reviewers accepted or changed the model's codes, per code.

    Only rows with ``reviewed`` = 1 count. The reviewer is the reference: precision is the share of
    the model's suggestions the reviewer kept; recall the share of the reviewer's codes the model
    had suggested.

    Parameters
    ----------
    reviewed : DataFrame
        Wide table with the reviewer's 0/1 code columns, ``suggested_codes`` and ``reviewed``.
    codebook : Codebook

    Returns
    -------
    table : DataFrame
        Index: code ids, then ``micro`` and ``macro``. Columns: label, suggested (model positives),
        kept, removed, added (by the reviewer), agreement (share of reviewed answers where the
        reviewer's 0/1 equals the model's), precision, recall, kappa (Cohen's, model vs reviewer),
        kappa_low and kappa_high (its 95% bootstrap interval over the reviewed answers), alpha
        (Krippendorff's).
    summary : dict
        ``reviewed`` (answers), ``changed`` (answers whose codes the reviewer changed),
        ``accepted_share`` (answers accepted unchanged / reviewed), ``reading`` (how to read kappa
        and alpha, :func:`~opm_nlp.classify.agreement.reading_sentence`).
    """
    from opm_nlp.classify.agreement import reading_sentence
    from opm_nlp.classify.metrics import agreement_table, with_kappa_intervals

    missing = [c for c in codebook.ids if c not in reviewed.columns]
    if missing:
        raise ReviewError(f"{source}: code column(s) {missing} missing; expected one 0/1 column per code id.")
    reviewed = reviewed.reset_index(drop=True)
    mask = reviewed_mask(reviewed, source)
    human = np.column_stack([parse_binary(reviewed[c], c, source).to_numpy() for c in codebook.ids])[mask]
    model = suggestion_matrix(reviewed, codebook, source)[mask]
    n = int(mask.sum())
    if n == 0:
        raise ReviewError(f"{source}: no answer is marked {REVIEWED_COL}=1, so there are no reviews to compare "
                          f"with the suggestions yet. Set '{REVIEWED_COL}' to 1 on the rows people have checked.")
    changed = int((human != model).any(axis=1).sum())
    base = with_kappa_intervals(agreement_table(human, model, codebook.ids, codebook.labels), human, model)
    summary = {"reviewed": n, "changed": changed, "accepted_share": (n - changed) / n,
               "reading": reading_sentence(base.loc["macro", "kappa"],
                                           tuple(base.loc["macro", ["kappa_low", "kappa_high"]]))}
    kept = (human & model).sum(axis=0)
    removed = ((model == 1) & (human == 0)).sum(axis=0)
    added = ((model == 0) & (human == 1)).sum(axis=0)
    same = (human == model).mean(axis=0) if n else np.full(len(codebook), np.nan)
    table = pd.DataFrame({
        "label": base["label"],
        "suggested": base["predicted"],
        "kept": [*kept, kept.sum(), kept.sum()],
        "removed": [*removed, removed.sum(), removed.sum()],
        "added": [*added, added.sum(), added.sum()],
        "agreement": [*same, same.mean() if n else np.nan, same.mean() if n else np.nan],
        "precision": base["precision"], "recall": base["recall"], "kappa": base["kappa"],
        "kappa_low": base["kappa_low"], "kappa_high": base["kappa_high"], "alpha": base["alpha"],
    }, index=base.index)
    return table, summary


def format_agreement(table: pd.DataFrame, summary: dict) -> str:
    """Terminal text: the headline and the per-code table of :func:`review_agreement`."""
    from opm_nlp.classify.metrics import format_table

    n = summary["reviewed"]
    if not n:
        return "No reviewed answers yet: nothing to compare with the model."
    head = (f"Reviewers accepted the model's codes unchanged on {n - summary['changed']} of {n} answers "
            f"({summary['accepted_share']:.0%}) and changed them on {summary['changed']}.\n"
            f"Per code, model suggestion vs reviewer (kept/removed/added by the reviewer; agreement = same "
            f"0/1; kappa = Cohen's kappa, kappa_low-kappa_high its 95% bootstrap interval; alpha = Krippendorff's "
            f"alpha):")
    reading = f"\n{summary['reading']}" if summary.get("reading") else ""
    return head + "\n" + format_table(table) + reading
