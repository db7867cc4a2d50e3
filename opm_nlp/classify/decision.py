"""Decision rules: from each code's calibrated score to the codes suggested for an answer.

Scores rank well even from a few hundred coded answers; per-code thresholds chosen on a handful of
out-of-fold positives do not, and over-suggest. A :class:`DecisionRule` is per-code thresholds plus
two optional parts that know how many codes an answer carries:

- **shrinkage**: each code's threshold is pulled toward one threshold shared by all codes, with weight
  ``k / (n + k)`` for a code with ``n`` positive training rows (a code with few positives leans on
  the shared value, a code with many keeps its own);
- **a cap**: an answer gets at most ``cap`` codes, those furthest above their thresholds (the
  margin ``score - threshold``); ``cap`` is a high quantile of how many codes people gave each coded
  answer;
- **at least one**: an answer left with no code gets its best one (largest margin) when its score is
  at least half its threshold.

:func:`choose_rule` chooses among these by cross-validation on the training answers' out-of-fold
scores: the thresholds, shared value and cap are fitted on the other folds and the rule is scored on
the held-out fold, for every candidate. The objective is the mean of micro-F1 (every answer-code
pair: rewards suggesting as many codes as people give) and macro-F1 (the mean over codes: rare codes
count as much as frequent ones). Plain per-code thresholds are one candidate, and win ties.

:func:`suggest` applies a rule, and says how far each code's score is from flipping its decision:
with a cap, a code kept is also one that a cut code could overtake, and a code cut is one that could
overtake the last kept; a code given by "at least one" is below its threshold and always counted as
uncertain.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Below this many coded answers the rule is not chosen: per-code thresholds, as before rules existed.
MIN_ANSWERS = 30
#: Candidate shrinkage strengths (pseudo-positives at the shared threshold); 0 keeps per-code thresholds.
SHRINK = (0.0, 3.0, 10.0, 30.0)
#: Candidate caps, as quantiles of the number of codes people gave each coded answer; None: no cap.
CAP_QUANTILES = (None, 0.9, 0.99)
#: "At least one" gives an answer's best code when its score is at least this share of its threshold.
PLAUSIBLE = 0.5
#: Folds of the decision rule's cross-validation.
FOLDS = 5
#: Threshold of a code that cannot be learned: never suggested.
NEVER = 1.01


@dataclass
class DecisionRule:
    """Per-code thresholds, optionally shrunk, with an optional cap per answer and "at least one".

    Attributes
    ----------
    thresholds : ndarray of shape (n_codes,)
        The thresholds the scores are compared with (after shrinkage).
    shrink : float
        Pseudo-positives at the shared threshold (0: per-code thresholds as chosen).
    shared : float or None
        The threshold shared by all codes that the per-code ones are shrunk toward.
    cap : int or None
        At most this many codes per answer (None: no cap).
    at_least_one : bool
        Give an answer with no code its best one when plausible (score at least half its threshold).
    cv : dict or None
        Cross-validated figures of the chosen rule and of per-code thresholds (:func:`choose_rule`).
    """

    thresholds: np.ndarray
    shrink: float = 0.0
    shared: float | None = None
    cap: int | None = None
    at_least_one: bool = False
    cv: dict | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        """A short name: ``per-code thresholds``, or the parts in use (``shrunk thresholds (k=10) + cap 3``)."""
        parts = [f"shrunk thresholds (k={self.shrink:g})" if self.shrink else "per-code thresholds"]
        if self.cap is not None:
            parts.append(f"at most {self.cap} code{'s' if self.cap > 1 else ''} per answer")
        if self.at_least_one:
            parts.append("at least one code per answer")
        return " + ".join(parts)

    @property
    def is_plain(self) -> bool:
        """True for per-code thresholds alone (every model before decision rules existed)."""
        return not self.shrink and self.cap is None and not self.at_least_one


def rule_of(classifier) -> DecisionRule:
    """The classifier's decision rule: ``decision_`` when it has one, else its per-code ``thresholds_``."""
    rule = getattr(classifier, "decision_", None)
    return rule if rule is not None else DecisionRule(np.asarray(classifier.thresholds_, dtype=float))


def suggest(rule: DecisionRule, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``rule`` to ``scores`` (n_answers, n_codes; NaN for an answer with no text).

    Returns
    -------
    suggested : ndarray of bool, shape (n_answers, n_codes)
    distance : ndarray of shape (n_answers, n_codes)
        How much the code's score would have to change for its decision to flip (NaN where the score
        is); 0 for a code given by "at least one". Without cap and "at least one", ``|score - threshold|``.
    """
    scores = np.asarray(scores, dtype=float)
    margin = scores - rule.thresholds
    filled = np.nan_to_num(margin, nan=-np.inf)
    suggested = filled >= 0
    distance = np.abs(margin)
    if rule.cap is not None and scores.size:
        suggested, distance = _cap(filled, suggested, distance, rule.cap)
    if rule.at_least_one and scores.size:
        best = np.argmax(filled, axis=1)
        rows = np.arange(len(scores))
        best_score = np.nan_to_num(scores[rows, best], nan=-np.inf)
        add = ~suggested.any(axis=1) & (best_score >= PLAUSIBLE * rule.thresholds[best])
        suggested[rows[add], best[add]] = True
        distance[rows[add], best[add]] = 0.0
    return suggested, distance


def _cap(margin: np.ndarray, suggested: np.ndarray, distance: np.ndarray, cap: int):
    """Keep each answer's ``cap`` codes of largest margin; the distance to flip under the cap."""
    order = np.argsort(-margin, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(margin.shape[1])[None, :].repeat(len(margin), 0), axis=1)
    kept = suggested & (rank < cap)
    sorted_margin = np.take_along_axis(margin, order, axis=1)
    full = kept.sum(axis=1) == cap  # the cap binds or just fills: entering means overtaking the last kept
    last_kept = np.where(full, sorted_margin[:, min(cap, margin.shape[1]) - 1], 0.0)
    first_cut = sorted_margin[:, cap] if cap < margin.shape[1] else np.full(len(margin), -np.inf)
    first_cut = np.maximum(np.where(np.isfinite(first_cut), first_cut, -np.inf), 0.0)  # a cut code is above 0
    with np.errstate(invalid="ignore"):
        leave = margin - first_cut[:, None]  # a kept code leaves below its threshold or the first cut code
        enter = last_kept[:, None] - margin  # another enters above its threshold or the last kept code
    capped = np.where(kept, leave, np.maximum(enter, -margin))
    return kept, np.where(np.isfinite(distance), capped, distance)


# -- choosing a rule by cross-validation ---------------------------------------------------------
def _fit(Y: np.ndarray, scores: np.ndarray, learnable: np.ndarray, raw: np.ndarray | None = None) -> dict:
    """Per-code and shared thresholds, positives per code, fitted on ``scores`` of all rows given."""
    from opm_nlp.classify.stacking import best_threshold  # scikit-learn: only fitting needs it

    if raw is None:
        raw = np.full(Y.shape[1], NEVER)
        for j in learnable:
            raw[j] = best_threshold(Y[:, j], scores[:, j])
    shared = best_threshold(Y[:, learnable].ravel(), scores[:, learnable].ravel()) if len(learnable) else 0.5
    return {"raw": raw, "shared": shared, "positives": Y.sum(axis=0), "learnable": learnable}


def _rule(fitted: dict, shrink: float, cap: int | None, at_least_one: bool) -> DecisionRule:
    raw, positives = fitted["raw"], fitted["positives"]
    thresholds = raw.copy()
    learnable = fitted["learnable"]
    if shrink:
        weight = positives[learnable] / (positives[learnable] + shrink)
        thresholds[learnable] = weight * raw[learnable] + (1 - weight) * fitted["shared"]
    return DecisionRule(thresholds, shrink=float(shrink), shared=float(fitted["shared"]), cap=cap,
                        at_least_one=at_least_one)


def _caps(Y_coded: np.ndarray) -> dict:
    """Quantile -> cap: the number of codes per coded answer at each of :data:`CAP_QUANTILES`."""
    counts = Y_coded.sum(axis=1)
    return {q: None if q is None else max(1, int(np.ceil(np.quantile(counts, q)))) for q in CAP_QUANTILES}


def _f1s(tp: np.ndarray, wrong: np.ndarray, present: np.ndarray) -> tuple[float, float]:
    """Micro-F1, and macro-F1 over the ``present`` codes (those with a positive), from per-code counts of
    true positives and of wrong decisions (false positives and negatives)."""
    micro = 2 * tp.sum() / max(2 * tp.sum() + wrong.sum(), 1)
    macro = float(np.mean(2 * tp[present] / (2 * tp[present] + wrong[present]))) if present.any() else 0.0
    return float(micro), macro


def candidates() -> list[tuple[float, float | None, bool]]:
    """(shrink, cap quantile, at least one) of every rule tried, simplest first (per-code thresholds)."""
    return [(k, q, one) for one in (False, True) for q in CAP_QUANTILES for k in SHRINK]


def choose_rule(Y: np.ndarray, scores: np.ndarray, n_answers: int, learnable, thresholds: np.ndarray,
                random_state: int = 0) -> DecisionRule:
    """The decision rule of best cross-validated mean of micro- and macro-F1 on the coded answers.

    Parameters
    ----------
    Y : ndarray of shape (n_rows, n_codes)
        0/1 codes of the training rows: the coded answers first, then any codebook examples.
    scores : ndarray of shape (n_rows, n_codes)
        Their out-of-fold probabilities.
    n_answers : int
        How many of the rows are coded answers; only they are scored (the examples are always fitted on).
    learnable : array of int
        The codes that can be learned; the others keep ``thresholds`` (never suggested).
    thresholds : ndarray of shape (n_codes,)
        Per-code thresholds already chosen on all rows (the rule "per-code thresholds").
    random_state : int
        Seed of the folds.

    Returns
    -------
    DecisionRule
        Fitted on all rows, with ``cv``: the objective, the folds, and the cross-validated micro- and
        macro-F1 of the chosen rule and of per-code thresholds. Per-code thresholds (``cv`` None)
        when there are fewer than :data:`MIN_ANSWERS` coded answers.
    """
    Y = np.asarray(Y).astype(bool)
    learnable = np.asarray(learnable, dtype=int)
    if n_answers < MIN_ANSWERS or not len(learnable):
        return DecisionRule(np.asarray(thresholds, dtype=float))
    from opm_nlp.classify.stacking import stratified_folds  # scikit-learn: only fitting needs it

    folds = stratified_folds(Y[:n_answers].astype(np.int8), FOLDS, random_state)
    tried = candidates()
    tp, wrong = np.zeros((2, len(tried), Y.shape[1]))  # per rule tried and code, over the held-out folds
    for fold in range(FOLDS):
        held = np.flatnonzero(folds == fold)
        fit_rows = np.r_[np.flatnonzero(folds != fold), np.arange(n_answers, len(Y))]
        fitted = _fit(Y[fit_rows], scores[fit_rows], learnable)
        caps = _caps(Y[np.flatnonzero(folds != fold)])
        for i, (shrink, quantile, one) in enumerate(tried):
            predicted = suggest(_rule(fitted, shrink, caps[quantile], one), scores[held])[0]
            tp[i] += (Y[held] & predicted).sum(axis=0)
            wrong[i] += (Y[held] ^ predicted).sum(axis=0)
    present = Y[:n_answers].any(axis=0)
    figures = [_f1s(tp[i], wrong[i], present) for i in range(len(tried))]
    objective = [(micro + macro) / 2 for micro, macro in figures]
    best = int(np.argmax(objective))  # the first of equals: the simplest
    shrink, quantile, one = tried[best]
    rule = _rule(_fit(Y, scores, learnable, raw=np.asarray(thresholds, dtype=float)), shrink,
                 _caps(Y[:n_answers])[quantile], one)
    rule.cv = {"objective": "mean of micro- and macro-F1", "folds": FOLDS, "answers": int(n_answers),
               "chosen": {"micro_f1": round(figures[best][0], 4), "macro_f1": round(figures[best][1], 4)},
               "per_code_thresholds": {"micro_f1": round(figures[0][0], 4), "macro_f1": round(figures[0][1], 4)}}
    return rule
