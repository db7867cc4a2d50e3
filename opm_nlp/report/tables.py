"""The report's tables: theme frequencies with intervals, by subgroup, per study category, co-occurrence.

Every function takes a tagged table (from ``opm-nlp tag``: 0/1 code columns plus ``score_<code>``), a
coded table (0/1 code columns from people) or a reviewed table (a ``reviewed`` column marks rows a person
checked) in the wide format of :func:`prepare_table`, and returns a DataFrame.

The unit counted is the respondent (one row); a code counts only for respondents who answered (an
empty answer carries no theme), and percentages are given of those who answered and of all respondents.
Every table states what it rests on (:func:`coding_basis`, :func:`basis_text`): how many of its answers
a person coded or reviewed, and how many carry only model suggestions
(:func:`opm_nlp.columns.human_coded_mask`).

Examples
--------
>>> from opm_nlp import load_codebook
>>> from opm_nlp.report.tables import frequency_table, prepare_table
>>> codebook = load_codebook("codebook/opm_behavior_change.yaml")                  # doctest: +SKIP
>>> tagged = prepare_table(frame, codebook, "answer", "response_id")               # doctest: +SKIP
>>> frequency_table(tagged, codebook, "answer")                                   # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from opm_nlp.codebook.coded import to_wide
from opm_nlp.codebook.codes import Codebook
from opm_nlp.columns import SCORE_PREFIX, human_coded_mask
from opm_nlp.exceptions import DataError
from opm_nlp.io import tables as io_tables

CONFIDENCE = 0.95
#: A --by or --wave column with more distinct values than this is not a grouping column.
MAX_GROUPS = 50
MISSING_GROUP = "(missing)"


# -- input ----------------------------------------------------------------------------------------
def prepare_table(frame: pd.DataFrame, codebook: Codebook, text_col: str, id_col: str, format: str = "auto",
                  code_col: str | None = None, source: str = "the table") -> pd.DataFrame:
    """Check a tagged or coded table and bring it to the wide house format for reporting.

    Code columns become 0/1 integers (see :func:`opm_nlp.codebook.coded.to_wide`) and ``score_<code>``
    columns, when present, become numbers.

    Raises
    ------
    DataError
        If the id, text or code columns are missing or malformed, or a score is not a number.
    """
    table = to_wide(frame, codebook, text_col, id_col, format=format, code_col=code_col, source=source)
    for code_id in codebook.ids:
        column = SCORE_PREFIX + code_id
        if column in table.columns:
            table[column] = io_tables.parse_numbers(
                table[column], where=f"{source}: column '{column}'", expected="a model score (a number)",
                fix="Use the file written by opm-nlp tag, or drop the score columns.")
    return table


def check_group_column(table: pd.DataFrame, column: str, option: str, source: str = "the table") -> None:
    """Raise a one-line :class:`DataError` unless ``column`` exists and holds a handful of groups."""
    if column not in table.columns:
        raise DataError(
            f"Column '{column}' not found in {source}. Columns: {list(table.columns)}. "
            f"Pass {option} with a column of the file that holds groups (e.g. wave, institution, role)."
        )
    distinct = group_values(table, column).nunique()
    if distinct > MAX_GROUPS:
        raise DataError(
            f"{source}: column '{column}' has {distinct} distinct values; {option} expects a grouping column "
            f"with at most {MAX_GROUPS} groups (e.g. wave, institution, role). Recode it into groups first."
        )


def group_values(table: pd.DataFrame, column: str) -> pd.Series:
    """A grouping column as text, ``"2019"`` rather than ``2019.0``, empty cells as ``(missing)``."""
    def text(value: object) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return MISSING_GROUP
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return str(int(value))
        return str(value).strip() or MISSING_GROUP

    return table[column].map(text)


def group_order(values: Sequence[str]) -> list[str]:
    """Distinct groups in natural order: numbers numerically, then text, ``(missing)`` last."""
    def key(value: str) -> tuple:
        if value == MISSING_GROUP:
            return (2, 0.0, value)
        try:
            return (0, float(value), value)
        except ValueError:
            return (1, 0.0, value.lower())

    return sorted(set(values), key=key)


# -- provenance -----------------------------------------------------------------------------------
def coding_basis(table: pd.DataFrame, text_col: str) -> dict[str, int]:
    """How many answers a table's figures rest on, and who coded them.

    Returns
    -------
    dict
        ``respondents`` (rows), ``answered`` (non-empty answers), ``human`` (answered and coded or
        reviewed by a person) and ``model_only`` (answered, carrying only model suggestions).
    """
    answered = io_tables.answered(table[text_col])
    human = human_coded_mask(table)
    return {"respondents": len(table), "answered": int(answered.sum()), "human": int((answered & human).sum()),
            "model_only": int((answered & ~human).sum())}


def basis_text(basis: dict[str, int]) -> str:
    """One sentence saying what a table rests on."""
    return (f"Rests on {basis['answered']} answers (of {basis['respondents']} respondents): "
            f"{basis['human']} coded or reviewed by a person, {basis['model_only']} with model suggestions only.")


# -- frequencies ----------------------------------------------------------------------------------
def wilson_interval(count: np.ndarray, nobs: np.ndarray, confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of count/nobs, as proportions (NaN where nobs is 0).

    Uses :func:`statsmodels.stats.proportion.proportion_confint` (``method="wilson"``).
    """
    from statsmodels.stats.proportion import proportion_confint

    count = np.atleast_1d(np.asarray(count, dtype=float))
    nobs = np.atleast_1d(np.asarray(nobs, dtype=float))
    low, high = proportion_confint(count, np.where(nobs > 0, nobs, 1.0), alpha=1 - confidence, method="wilson")
    empty = nobs <= 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def frequency_table(table: pd.DataFrame, codebook: Codebook, text_col: str) -> pd.DataFrame:
    """Respondents per code with percentages and 95% Wilson intervals.

    Parameters
    ----------
    table : DataFrame
        Tagged, coded or reviewed answers in the wide format (see :func:`prepare_table`).
    codebook : Codebook
        The codes, in the order to report them.
    text_col : str
        Answer column; a respondent with an empty answer counts in ``all`` but carries no code.

    Returns
    -------
    DataFrame
        Index: code ids, in codebook order. Columns: label; respondents (answered respondents with the
        code); answered; pct_of_answered; ci_low, ci_high (95% Wilson interval of pct_of_answered, in
        %); all (respondents); pct_of_all; respondents_human and respondents_model_only (of the
        respondents with the code, how many were coded or reviewed by a person, and how many carry
        only model suggestions). Percentages are not rounded.
    """
    return _frequency_rows(table, codebook, text_col, human_coded_mask(table))


def _frequency_rows(table: pd.DataFrame, codebook: Codebook, text_col: str, human: np.ndarray) -> pd.DataFrame:
    answered = io_tables.answered(table[text_col])
    codes = table[codebook.ids].to_numpy(dtype=int) * answered[:, None]
    counts = codes.sum(axis=0)
    n_answered, n_all = int(answered.sum()), len(table)
    low, high = wilson_interval(counts, np.full(len(counts), n_answered))
    with np.errstate(invalid="ignore", divide="ignore"):
        pct_answered = 100 * counts / n_answered if n_answered else np.full(len(counts), np.nan)
        pct_all = 100 * counts / n_all if n_all else np.full(len(counts), np.nan)
    human_counts = codes[human].sum(axis=0)
    return pd.DataFrame({
        "label": [codebook[c].label for c in codebook.ids],
        "respondents": counts,
        "answered": n_answered,
        "pct_of_answered": pct_answered,
        "ci_low": 100 * low,
        "ci_high": 100 * high,
        "all": n_all,
        "pct_of_all": pct_all,
        "respondents_human": human_counts,
        "respondents_model_only": counts - human_counts,
    }, index=pd.Index(codebook.ids, name="code"))


def descendants(codebook: Codebook, code_id: str) -> list[str]:
    """Ids of every code below ``code_id`` in the hierarchy."""
    out = []
    for child in codebook.children(code_id):
        out += [child.id, *descendants(codebook, child.id)]
    return out


def study_table(table: pd.DataFrame, codebook: Codebook, text_col: str, id_col: str) -> pd.DataFrame:
    """Unique respondents per category, in codebook order: the OPM study's Table 3 layout.

    The study counted, per stem-word category, the unique respondents whose answer fell in it. Here a
    category is a code; ``with_subcodes`` also counts respondents coded only with one of its sub-codes
    (each respondent once).

    Returns
    -------
    DataFrame
        Index: code ids. Columns: category (label), parent, unique_respondents, with_subcodes,
        definition.
    """
    answered = io_tables.answered(table[text_col])
    ids = table[id_col].to_numpy()
    rows = []
    for code in codebook.codes:
        family = [code.id, *descendants(codebook, code.id)]
        has = table[[code.id]].to_numpy(dtype=int)[:, 0].astype(bool) & answered
        has_family = table[family].to_numpy(dtype=int).any(axis=1) & answered
        rows.append({"code": code.id, "category": code.label, "parent": code.parent or "",
                     "unique_respondents": len(set(ids[has])), "with_subcodes": len(set(ids[has_family])),
                     "definition": code.definition})
    return pd.DataFrame(rows).set_index("code")


def group_frequencies(table: pd.DataFrame, codebook: Codebook, text_col: str, by: str,
                      include_missing: bool = True) -> pd.DataFrame:
    """:func:`frequency_table` per subgroup, stacked: one row per (group, code).

    Parameters
    ----------
    by : str
        Grouping column (institution, role, wave...). Groups come in natural order; empty cells form
        the group ``(missing)``.
    include_missing : bool
        Keep the ``(missing)`` group.

    Returns
    -------
    DataFrame
        Columns: ``by``, code, then the columns of :func:`frequency_table`, then answered_human and
        answered_model_only (the group's answers by who coded them).
    """
    groups = group_values(table, by)
    human = human_coded_mask(table)
    answered = io_tables.answered(table[text_col])
    parts = []
    for group in group_order(groups):
        if group == MISSING_GROUP and not include_missing:
            continue
        mask = (groups == group).to_numpy()
        part = _frequency_rows(table[mask], codebook, text_col, human[mask]).reset_index()
        part.insert(0, by, group)
        part["answered_human"] = int((answered & human & mask).sum())
        part["answered_model_only"] = int((answered & ~human & mask).sum())
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def side_by_side(long: pd.DataFrame, by: str) -> pd.DataFrame:
    """Groups side by side: one row per code, four columns per group (respondents, %, CI low, CI high).

    Parameters
    ----------
    long : DataFrame
        From :func:`group_frequencies`.
    """
    codes = list(dict.fromkeys(long["code"]))
    out = pd.DataFrame({"label": long.drop_duplicates("code").set_index("code").loc[codes, "label"]})
    out.index.name = "code"
    for group in dict.fromkeys(long[by]):
        part = long[long[by] == group].set_index("code").loc[codes]
        out[f"{group}: respondents"] = part["respondents"]
        out[f"{group}: % of answered"] = part["pct_of_answered"]
        out[f"{group}: CI low"] = part["ci_low"]
        out[f"{group}: CI high"] = part["ci_high"]
    return out


def group_basis(long: pd.DataFrame, by: str) -> str:
    """What a by-group table rests on, per group."""
    first = long.drop_duplicates(by)
    parts = [f"{row[by]}: {row['answered']} ({row['answered_human']} by a person, {row['answered_model_only']} model only)"
             for _, row in first.iterrows()]
    return "Answers per group: " + "; ".join(parts) + "."


def cooccurrence(table: pd.DataFrame, codebook: Codebook, text_col: str) -> pd.DataFrame:
    """Respondents (who answered) carrying both codes, for every pair; the diagonal is each code's total.

    Returns
    -------
    DataFrame
        Square, index and columns the code ids in codebook order.
    """
    answered = io_tables.answered(table[text_col])
    codes = table[codebook.ids].to_numpy(dtype=int)[answered]
    matrix = codes.T @ codes
    return pd.DataFrame(matrix, index=pd.Index(codebook.ids, name="code"), columns=codebook.ids)


def theme_frequencies(table: pd.DataFrame, codebook: Codebook, text_col: str) -> pd.DataFrame:
    """Respondents per code, as in the OPM study's table (unique respondents per category).

    The counts are :func:`frequency_table`'s, without intervals or provenance.

    Parameters
    ----------
    table : DataFrame
        Tagged or coded answers in the wide format (one row per respondent, one 0/1 column per code).
    codebook : Codebook
        The codes, in the order to report them.
    text_col : str
        Answer column; respondents with an empty answer count in "% of all" but not "% of answered".

    Returns
    -------
    DataFrame
        Index: code ids. Columns: label, respondents, pct_of_answered, pct_of_all (rounded to 0.1).
    """
    full = frequency_table(table, codebook, text_col)
    out = full[["label", "respondents", "pct_of_answered", "pct_of_all"]].copy()
    out[["pct_of_answered", "pct_of_all"]] = out[["pct_of_answered", "pct_of_all"]].fillna(0).round(1)
    out.index.name = "code"
    return out


def sheet_name(name: str, taken: dict) -> str:
    """An XLSX sheet name (31 characters, no []:*?/\\) not yet in ``taken`` (the report's tables)."""
    base = re.sub(r"[\[\]:*?/\\]", "_", name)[:31]
    candidate, k = base, 2
    while candidate in taken or candidate == "README":
        candidate = f"{base[:28]}_{k}"
        k += 1
    return candidate
