"""The study's quantitative half: retrospective pre/post ratings, item by item.

The OPM survey asked mentors to rate their skills "before" and "after" the module. A small YAML file
(the *pre/post spec*) names each item and its two columns in the answers table::

    scale: {min: 1, max: 5}          # optional: values outside it are an error
    items:
      - name: Active listening
        before: q1_pre
        after: q1_post
      - {name: Aligning expectations, before: q2_pre, after: q2_post}

Per item, :func:`prepost_table` gives n, the means, the mean paired difference, the Wilcoxon
signed-rank test and the matched-pairs rank-biserial correlation with a bootstrap 95% interval;
:func:`theme_gains` compares the gains of respondents with each theme against those without
(Mann-Whitney U).

Examples
--------
>>> spec = parse_prepost_spec("items: [{name: Listening, before: q1_pre, after: q1_post}]")
>>> spec.items[0].before
'q1_pre'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from opm_nlp.codebook.codes import Codebook
from opm_nlp.exceptions import DataError, SpecError
from opm_nlp.io.strict_yaml import load_yaml
from opm_nlp.io.tables import parse_numbers, row_number

SPEC_KEYS = ("items", "scale")
ITEM_KEYS = ("name", "before", "after")
SCALE_KEYS = ("min", "max")
#: Bootstrap resamples and seed for the effect-size interval (fixed, so a report is reproducible).
N_BOOTSTRAP = 2000
SEED = 20190201


@dataclass(frozen=True)
class PrePostItem:
    """One rated item: its name and the columns holding the before and after ratings."""

    name: str
    before: str
    after: str


@dataclass(frozen=True)
class PrePostSpec:
    """Items of a retrospective pre/post survey, with an optional rating scale.

    Build one with :func:`load_prepost_spec` or :func:`parse_prepost_spec`, which validate it.
    """

    items: tuple[PrePostItem, ...]
    scale_min: float | None = None
    scale_max: float | None = None
    source: str = "pre/post spec"


def load_prepost_spec(path: str | Path) -> PrePostSpec:
    """Read and validate a pre/post spec YAML file.

    Raises
    ------
    SpecError
        If the file is missing, not YAML, or breaks the layout described in the module docstring.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SpecError(f"Pre/post spec not found: {path}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"Cannot read pre/post spec {path}: {getattr(exc, 'strerror', None) or exc}.") from None
    return parse_prepost_spec(text, source=str(path))


def parse_prepost_spec(text: str, source: str = "pre/post spec") -> PrePostSpec:
    """Parse and validate pre/post spec YAML text (see the module docstring for the layout)."""
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{source}: invalid YAML{at}: {problem}.") from None
    example = "e.g. items: [{name: Active listening, before: q1_pre, after: q1_post}]"
    if not isinstance(data, dict):
        raise SpecError(f"{source}: expected a mapping with 'items' ({example}), found {type(data).__name__}.")
    unknown = sorted(set(map(str, data)) - set(SPEC_KEYS))
    if unknown:
        raise SpecError(f"{source}: unknown key(s) {unknown}. Allowed: {list(SPEC_KEYS)}.")
    raw_items = data.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        raise SpecError(f"{source}: 'items' must be a non-empty list of items ({example}).")
    items = []
    for index, raw in enumerate(raw_items, start=1):
        where = f"{source}, item #{index}"
        if not isinstance(raw, dict):
            raise SpecError(f"{where}: expected a mapping with name, before and after; found {raw!r}.")
        unknown = sorted(set(map(str, raw)) - set(ITEM_KEYS))
        if unknown:
            raise SpecError(f"{where}: unknown key(s) {unknown}. Allowed: {list(ITEM_KEYS)}.")
        for key in ITEM_KEYS:
            if not isinstance(raw.get(key), (str, int)) or not str(raw[key]).strip():
                raise SpecError(f"{where}: missing '{key}'. Every item needs a name, a before and an after column.")
        items.append(PrePostItem(str(raw["name"]).strip(), str(raw["before"]).strip(), str(raw["after"]).strip()))
    names = [item.name for item in items]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SpecError(f"{source}: item name(s) {repeated} appear more than once; give each item its own name.")
    scale_min, scale_max = _parse_scale(data.get("scale"), source)
    return PrePostSpec(items=tuple(items), scale_min=scale_min, scale_max=scale_max, source=source)


def _parse_scale(raw: object, source: str) -> tuple[float | None, float | None]:
    if raw is None:
        return None, None
    if isinstance(raw, list) and len(raw) == 2:
        raw = {"min": raw[0], "max": raw[1]}
    if not isinstance(raw, dict) or set(map(str, raw)) != set(SCALE_KEYS):
        raise SpecError(f"{source}: 'scale' must be {{min: 1, max: 5}} (or [1, 5]), found {raw!r}.")
    try:
        low, high = float(raw["min"]), float(raw["max"])
    except (TypeError, ValueError):
        raise SpecError(f"{source}: 'scale' min and max must be numbers, found {raw!r}.") from None
    if not low < high:
        raise SpecError(f"{source}: 'scale' min must be below max, found min {raw['min']} and max {raw['max']}.")
    return low, high


def paired_ratings(frame: pd.DataFrame, spec: PrePostSpec, source: str = "the table") -> dict[str, pd.DataFrame]:
    """The before/after ratings of each item as numbers, checked against the spec.

    Empty cells are missing values (the pair is left out of that item); anything else must be a number
    within the spec's scale.

    Returns
    -------
    dict
        Item name -> DataFrame with columns ``before`` and ``after`` (float, NaN where empty), indexed
        like ``frame``.

    Raises
    ------
    SpecError
        If the spec names a column the table lacks.
    DataError
        If a rating is not a number or lies outside the scale.
    """
    out = {}
    for item in spec.items:
        columns = {}
        for side in ("before", "after"):
            column = getattr(item, side)
            if column not in frame.columns:
                raise SpecError(
                    f"{spec.source}: item '{item.name}' names column '{column}' ({side}), which is not in "
                    f"{source}. Columns: {list(frame.columns)}. Fix the column name in the spec."
                )
            columns[side] = _numeric(frame[column], column, item, side, spec, source)
        out[item.name] = pd.DataFrame(columns, index=frame.index)
    return out


def rating_scale(frame: pd.DataFrame, spec: PrePostSpec, source: str = "the table") -> tuple[float, float] | None:
    """The range a chart of the ratings should span: the spec's declared scale.

    Without a declared scale, the lowest and highest rating given, widened to whole numbers; None when
    no rating is given at all. A chart on this range shows a change of means at its true size, not
    magnified to fill the axis.
    """
    if spec.scale_min is not None:
        return float(spec.scale_min), float(spec.scale_max)
    values = pd.concat([ratings.stack() for ratings in paired_ratings(frame, spec, source).values()])
    if values.empty:
        return None
    return float(np.floor(values.min())), float(np.ceil(values.max()))


def _numeric(values: pd.Series, column: str, item: PrePostItem, side: str, spec: PrePostSpec,
             source: str) -> pd.Series:
    where = f"{source}: column '{column}' (item '{item.name}', {side})"
    numbers = parse_numbers(values, where=where, expected="a number",
                            fix="Recode ratings as numbers (e.g. 1-5) or leave the cell empty.")
    if spec.scale_min is not None:
        outside = np.flatnonzero(((numbers < spec.scale_min) | (numbers > spec.scale_max)).to_numpy())
        if len(outside):
            raise DataError(
                f"{where}, row {row_number(outside[0])}: {values.iloc[outside[0]]!r} is outside the scale "
                f"{spec.scale_min:g}-{spec.scale_max:g} declared in {spec.source}. Fix the value or the scale."
            )
    return numbers


def rank_biserial(before: np.ndarray, after: np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation of after - before (Kerby 2014).

    ``(R+ - R-) / (R+ + R-)``, with R+ and R- the sums of the ranks of the absolute non-zero
    differences that are positive and negative (ties get average ranks, zero differences are
    dropped, as in the Wilcoxon signed-rank test). NaN when every difference is zero.
    """
    return float(_rank_biserial(np.asarray(after, float)[None, :] - np.asarray(before, float)[None, :])[0])


def _rank_biserial(differences: np.ndarray) -> np.ndarray:
    """Row-wise rank-biserial correlation of a 2-D array of paired differences."""
    from scipy.stats import rankdata

    magnitude = np.abs(differences).astype(float)
    magnitude[differences == 0] = np.nan
    ranks = rankdata(magnitude, axis=1, nan_policy="omit")
    positive = np.nansum(np.where(differences > 0, ranks, 0.0), axis=1)
    negative = np.nansum(np.where(differences < 0, ranks, 0.0), axis=1)
    total = positive + negative
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (positive - negative) / total, np.nan)


def prepost_table(frame: pd.DataFrame, spec: PrePostSpec, source: str = "the table",
                  n_bootstrap: int = N_BOOTSTRAP, seed: int = SEED) -> pd.DataFrame:
    """Per item: paired before/after figures, the Wilcoxon signed-rank test and an effect size.

    Parameters
    ----------
    frame : DataFrame
        One row per respondent, with the spec's columns.
    spec : PrePostSpec
        Items and their columns.
    source : str
        Name of the table in error messages.
    n_bootstrap, seed : int
        Resamples and random seed of the percentile bootstrap interval of the effect size.

    Returns
    -------
    DataFrame
        Index: item names, in spec order. Columns: before, after (column names), n (respondents with
        both ratings), mean_before, mean_after, mean_difference (after - before), n_changed (non-zero
        differences), wilcoxon_w (the smaller of the signed-rank sums), p_value (two-sided), p_holm
        (Holm-adjusted over the items), rank_biserial, rb_ci_low, rb_ci_high.
    """
    from scipy.stats import wilcoxon

    ratings = paired_ratings(frame, spec, source)
    rng = np.random.default_rng(seed)
    rows = []
    for item in spec.items:
        pairs = ratings[item.name].dropna()
        before, after = pairs["before"].to_numpy(), pairs["after"].to_numpy()
        difference = after - before
        n, changed = len(pairs), int(np.count_nonzero(difference))
        statistic = p_value = low = high = np.nan
        effect = rank_biserial(before, after) if n else np.nan
        if changed:
            result = wilcoxon(after, before, zero_method="wilcox", alternative="two-sided")
            statistic, p_value = float(result.statistic), float(result.pvalue)
            samples = difference[rng.integers(0, n, size=(n_bootstrap, n))]
            boot = _rank_biserial(samples)
            boot = boot[~np.isnan(boot)]
            if len(boot):
                low, high = (float(v) for v in np.quantile(boot, [0.025, 0.975]))
        rows.append({
            "item": item.name, "before": item.before, "after": item.after, "n": n,
            "mean_before": float(before.mean()) if n else np.nan,
            "mean_after": float(after.mean()) if n else np.nan,
            "mean_difference": float(difference.mean()) if n else np.nan,
            "n_changed": changed, "wilcoxon_w": statistic, "p_value": p_value,
            "rank_biserial": effect, "rb_ci_low": low, "rb_ci_high": high,
        })
    table = pd.DataFrame(rows).set_index("item")
    table.insert(table.columns.get_loc("p_value") + 1, "p_holm", holm(table["p_value"].to_numpy()))
    return table


def theme_gains(frame: pd.DataFrame, spec: PrePostSpec, codebook: Codebook, answered: np.ndarray,
                source: str = "the table") -> pd.DataFrame:
    """Gains (after - before) of respondents with each theme against those without (Mann-Whitney U).

    Only respondents who answered the open question take part (a theme is only known for them).

    Returns
    -------
    DataFrame
        One row per (item, code): item, code, label, n_with, n_without, mean_gain_with,
        mean_gain_without, difference (with - without), mann_whitney_u, p_value (two-sided), p_holm
        (Holm-adjusted over all rows).
    """
    from scipy.stats import mannwhitneyu

    ratings = paired_ratings(frame, spec, source)
    rows = []
    for item in spec.items:
        gain = (ratings[item.name]["after"] - ratings[item.name]["before"]).to_numpy()
        usable = answered & ~np.isnan(gain)
        for code_id in codebook.ids:
            has = frame[code_id].to_numpy(dtype=int) == 1
            with_, without = gain[usable & has], gain[usable & ~has]
            statistic = p_value = np.nan
            if len(with_) and len(without) and np.ptp(np.concatenate([with_, without])) > 0:
                result = mannwhitneyu(with_, without, alternative="two-sided")
                statistic, p_value = float(result.statistic), float(result.pvalue)
            mean_with = float(with_.mean()) if len(with_) else np.nan
            mean_without = float(without.mean()) if len(without) else np.nan
            rows.append({
                "item": item.name, "code": code_id, "label": codebook[code_id].label,
                "n_with": len(with_), "n_without": len(without),
                "mean_gain_with": mean_with, "mean_gain_without": mean_without,
                "difference": mean_with - mean_without, "mann_whitney_u": statistic, "p_value": p_value,
            })
    table = pd.DataFrame(rows)
    table["p_holm"] = holm(table["p_value"].to_numpy())
    return table


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values (family-wise error), leaving NaN (no test) out of the family."""
    from statsmodels.stats.multitest import multipletests

    p_values = np.asarray(p_values, dtype=float)
    out = np.full(len(p_values), np.nan)
    tested = ~np.isnan(p_values)
    if tested.any():
        out[tested] = multipletests(p_values[tested], method="holm")[1]
    return out
