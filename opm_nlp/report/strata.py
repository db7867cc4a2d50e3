"""Estimates per group: each code's share within each wave or ``--by`` group, from that group's own answers.

Within a group the estimate is made as for the whole wave (:func:`opm_nlp.report.prevalence.code_estimates`),
from the group's answers only: its reviewed answers count with their human codes, and the audit answers
that fall in the group correct the model's scores on the group's other answers. An audit drawn at random
(simple, or stratified by the group with ``opm-nlp review sample --by``) is, within each group, a random
sample of that group's unreviewed answers, so the group's prediction-powered estimate is valid on its own.
A group with fewer than :data:`MIN_GROUP_AUDIT` audit answers falls back to the estimate the model's
figures allow (``adjusted``, else ``model-only``) and its rows say so in ``note``.

Examples
--------
>>> from opm_nlp.report.strata import group_estimates
>>> group_estimates(tagged, codebook, "answer", "response_id", "wave", audit=audit)   # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from opm_nlp.codebook.codes import Codebook
from opm_nlp.columns import human_coded_mask
from opm_nlp.io import tables as io_tables
from opm_nlp.report.estimate import Estimate
from opm_nlp.report.prevalence import code_estimates
from opm_nlp.report.tables import MISSING_GROUP, group_order, group_values

#: Audit answers a group needs for a prediction-powered estimate (the estimator's own minimum: a variance
#: needs two answers).
MIN_GROUP_AUDIT = 2
#: Columns of :func:`group_estimates` after the grouping column (percentages of the group's answered respondents).
GROUP_ESTIMATE_COLUMNS = ["code", "label", "estimate_pct", "ci_low", "ci_high", "method", "n_answered", "n_reviewed",
                          "n_audit", "note"]
#: What the charts' intervals are when they draw estimates.
ESTIMATE_INTERVAL = "95% interval of the estimate"


def estimates_by_group(table: pd.DataFrame, codebook: Codebook, text_col: str, id_col: str | None, by: str,
                       audit=None, trust: dict | None = None, include_missing: bool = True,
                       finite_population: bool = True) -> tuple[dict[str, dict[str, Estimate]], dict[str, str]]:
    """Per group of ``by``, per code, the :class:`~opm_nlp.report.estimate.Estimate` from the group's answers.

    Parameters
    ----------
    table : DataFrame
        The wave(s), wide and prepared (:func:`opm_nlp.report.tables.prepare_table`).
    by : str
        Grouping column; groups in natural order, empty cells as ``(missing)``.
    audit : Audit, optional
        A random audit coded blind (:func:`opm_nlp.report.audit.read_audit`).
    trust : dict, optional
        The model's trust figures (:func:`opm_nlp.report.prevalence.trust_of`).
    include_missing : bool
        Keep the ``(missing)`` group.
    finite_population : bool
        See :func:`~opm_nlp.report.prevalence.code_estimates`.

    Returns
    -------
    (dict, dict)
        Group -> code id -> Estimate, for groups with answered respondents; and group -> why its
        estimates are not prediction-powered although an audit was given (only such groups).
    """
    groups = group_values(table, by).to_numpy()
    answered = io_tables.answered(table[text_col])
    audit_ids = set(audit.codes.index) if audit is not None else set()
    out: dict[str, dict[str, Estimate]] = {}
    fallback: dict[str, str] = {}
    for group in group_order(groups):
        if group == MISSING_GROUP and not include_missing:
            continue
        frame = table[(groups == group) & answered].reset_index(drop=True)
        if frame.empty:
            continue
        use_audit = audit
        if audit is not None:
            unreviewed = frame[id_col].astype(str).str.strip()[~human_coded_mask(frame)]
            n_audit = int(unreviewed.isin(audit_ids).sum())
            if n_audit < MIN_GROUP_AUDIT and not human_coded_mask(frame).all():
                use_audit = None
                fallback[group] = (f"{'no' if n_audit == 0 else n_audit} audit answer{'' if n_audit == 1 else 's'} "
                                   f"in this group ({MIN_GROUP_AUDIT} needed): not prediction-powered")
        out[group] = code_estimates(frame, codebook, id_col, audit=use_audit, trust=trust,
                                    finite_population=finite_population)
    return out, fallback


def group_estimates(table: pd.DataFrame, codebook: Codebook, text_col: str, id_col: str | None, by: str,
                    audit=None, trust: dict | None = None, include_missing: bool = True) -> pd.DataFrame:
    """Each code's estimated share per group of ``by``, with its 95% interval and method, in long form.

    Returns
    -------
    DataFrame
        One row per (group, code): ``by``, then :data:`GROUP_ESTIMATE_COLUMNS` — the estimate and its interval
        (percent of the group's answered respondents), the method, the group's answered, reviewed and audit
        answers, and a note where a group falls back from a prediction-powered estimate.
    """
    estimates, fallback = estimates_by_group(table, codebook, text_col, id_col, by, audit=audit, trust=trust,
                                             include_missing=include_missing)
    rows = []
    for group, per_code in estimates.items():
        for code, est in per_code.items():
            rows.append({by: group, "code": code, "label": codebook[code].label, "estimate_pct": 100 * est.estimate,
                         "ci_low": 100 * est.low, "ci_high": 100 * est.high, "method": est.method,
                         "n_answered": est.n_answered, "n_reviewed": est.n_reviewed, "n_audit": est.n_audit,
                         "note": f"{fallback[group]}; {est.method}" if group in fallback else ""})
    return pd.DataFrame(rows, columns=[by, *GROUP_ESTIMATE_COLUMNS])


def fallback_note(long: pd.DataFrame, by: str) -> str | None:
    """One sentence naming the groups whose estimates fall back for want of audit answers, or None."""
    groups = list(dict.fromkeys(long.loc[long["note"] != "", by]))
    if not groups:
        return None
    shown = ", ".join(groups[:6]) + (f" and {len(groups) - 6} more" if len(groups) > 6 else "")
    return (f"By {by}: {len(groups)} group(s) have fewer than {MIN_GROUP_AUDIT} audit answers ({shown}); their "
            f"estimates fall back to adjusted or model-only figures, as their 'note' says. An audit drawn with "
            f"'opm-nlp review sample --by {by}' covers every group.")


def has_estimates(long: pd.DataFrame | None) -> bool:
    """Whether a long estimate table corrects any count (then charts draw the estimates).

    Human-coded and model-only estimates are the counts themselves (with Wilson intervals), so only a
    prediction-powered or adjusted estimate makes a chart of the estimates differ from one of the counts.
    """
    return long is not None and bool(long["method"].isin(["prediction-powered", "adjusted"]).any())


def chart_frame(long: pd.DataFrame, by: str) -> pd.DataFrame:
    """A long estimate table in the shape the group charts draw (:func:`opm_nlp.report.plots.plot_groups`).

    ``respondents`` becomes the estimated count (estimate x answered), so a chart's all-groups line is the
    answer-weighted mean of the group estimates.
    """
    return pd.DataFrame({by: long[by], "code": long["code"], "label": long["label"],
                         "pct_of_answered": long["estimate_pct"], "ci_low": long["ci_low"], "ci_high": long["ci_high"],
                         "answered": long["n_answered"],
                         "respondents": np.round(long["estimate_pct"].fillna(0) * long["n_answered"] / 100, 6)})


def group_estimate_note(by: str) -> str:
    """What a table of :func:`group_estimates` shows, for the report."""
    return (f"Per {by} and code: the estimated % of the group's respondents who answered, its 95% interval and the "
            f"method, made from the group's own answers (its reviewed answers as coded, its audit answers correcting "
            f"the model's scores on the rest); n_answered, n_reviewed and n_audit are the group's answers. A group "
            f"without audit answers falls back to adjusted or model-only figures and says so in 'note'.")


def chart_source(counts: pd.DataFrame, section: str, estimates: dict[str, tuple[str, pd.DataFrame]],
                 by: str) -> tuple[str, pd.DataFrame, str]:
    """What a group chart draws: the estimates of ``by`` when they correct the counts, else the counts.

    ``estimates`` maps a grouping column to its estimate table's name and long table (the report's
    ``group_estimates``).

    Returns
    -------
    (str, DataFrame, str)
        The report section the chart belongs to, the long table it draws, and what its intervals are.
    """
    if by in estimates and has_estimates(estimates[by][1]):
        return estimates[by][0], chart_frame(estimates[by][1], by), ESTIMATE_INTERVAL
    return section, counts, "95% Wilson interval"
