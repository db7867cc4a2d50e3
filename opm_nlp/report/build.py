"""Reports: theme frequencies with intervals, by subgroup and wave, co-occurrence and example answers.

Every function takes a tagged table (from ``opm-nlp tag``: 0/1 code columns plus ``score_<code>``), a
coded table (0/1 code columns from people) or a reviewed table (a ``reviewed`` column marks rows a person
checked), and returns a DataFrame. :func:`build_report` gathers them into a :class:`Report`, which
renders a self-contained HTML page (charts inlined as SVG) and writes ``report.html``, ``report.xlsx``
and ``theme_frequencies.csv`` atomically.

The unit counted is the respondent (one row); a code counts only for respondents who answered (an
empty answer carries no theme), and percentages are given of those who answered and of all respondents.
Every table states what it rests on: how many of its answers a person coded or reviewed, and how many
carry only model suggestions (:func:`opm_nlp.columns.human_coded_mask`).

Examples
--------
>>> from opm_nlp import load_codebook
>>> from opm_nlp.report.build import build_report, frequency_table
>>> codebook = load_codebook("codebook/opm_behavior_change.yaml")                  # doctest: +SKIP
>>> frequency_table(tagged, codebook, "answer")                                   # doctest: +SKIP
>>> build_report(tagged, codebook, "answer", "response_id", by=["institution"],
...              wave="wave").write("report_2022")                                # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from opm_nlp.codebook.codes import Codebook
from opm_nlp.exceptions import DataError

logger = logging.getLogger(__name__)

from opm_nlp.columns import SCORE_PREFIX

CONFIDENCE = 0.95
#: A --by or --wave column with more distinct values than this is not a grouping column.
MAX_GROUPS = 50
MISSING_GROUP = "(missing)"
#: Two example answers sharing more than this fraction of their words (Jaccard) are near-copies.
MAX_QUOTE_SIMILARITY = 0.5
REPORT_FILES = ("report.html", "report.xlsx", "theme_frequencies.csv")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


# -- input ----------------------------------------------------------------------------------------
def prepare_table(frame: pd.DataFrame, codebook: Codebook, text_col: str, id_col: str, format: str = "auto",
                  code_col: str | None = None, source: str = "the table") -> pd.DataFrame:
    """Check a tagged or coded table and bring it to the wide house format for reporting.

    Code columns become 0/1 integers (see :func:`opm_nlp.io.tables.to_wide`) and ``score_<code>``
    columns, when present, become numbers.

    Raises
    ------
    DataError
        If the id, text or code columns are missing or malformed, or a score is not a number.
    """
    from opm_nlp.codebook.coded import to_wide

    table = to_wide(frame, codebook, text_col, id_col, format=format, code_col=code_col, source=source)
    for code_id in codebook.ids:
        column = SCORE_PREFIX + code_id
        if column in table.columns:
            raw = table[column]
            text = raw.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip())
            scores = pd.to_numeric(text.where(text.ne(""), None), errors="coerce").astype(float)
            bad = np.flatnonzero((scores.isna() & text.ne("")).to_numpy())
            if len(bad):
                raise DataError(
                    f"{source}: column '{column}', row {bad[0] + 2}: expected a model score (a number), found "
                    f"{raw.iloc[bad[0]]!r}. Use the file written by opm-nlp tag, or drop the score columns."
                )
            table[column] = scores
    return table


def read_report_input(path: str | Path, codebook: Codebook, text_col: str, id_col: str,
                      encoding: str | None = None, format: str = "auto", code_col: str | None = None) -> pd.DataFrame:
    """Read a tagged or coded file (CSV, XLSX, Parquet) and :func:`prepare_table` it."""
    from opm_nlp.io.tables import read_table

    frame = read_table(path, encoding=encoding)
    return prepare_table(frame, codebook, text_col, id_col, format=format, code_col=code_col, source=str(path))


def default_columns(frame: pd.DataFrame, codebook: Codebook, text_col: str | None, id_col: str | None,
                    source: str = "the table") -> tuple[str, str]:
    """The text and id columns, defaulting to the layout opm-nlp writes: id first, text second.

    ``opm-nlp tag`` and the coded-data readers put the response id first and the answer second, so a
    file from them needs no column options. A default that lands on a code or score column is refused
    rather than guessed past.

    Returns
    -------
    text_col, id_col : str
    """
    columns = [str(c) for c in frame.columns]
    if (text_col is None or id_col is None) and len(columns) < 2:
        raise DataError(f"{source}: expected at least an id and a text column, found {columns}. "
                        f"Pass --id-col and --text-col.")
    id_col = id_col if id_col is not None else columns[0]
    text_col = text_col if text_col is not None else columns[1]
    for column, what, option in ((id_col, "id", "--id-col"), (text_col, "answer", "--text-col")):
        if column in codebook.ids or column.startswith(SCORE_PREFIX):
            raise DataError(f"{source}: column '{column}' holds codes or scores, so it cannot be the {what} column "
                            f"(the file does not start with the id and the answer). Pass {option}.")
    return text_col, id_col


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


def answered_mask(table: pd.DataFrame, text_col: str) -> np.ndarray:
    """True for respondents with a non-empty answer."""
    return table[text_col].fillna("").astype(str).str.strip().ne("").to_numpy()


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
    from opm_nlp.columns import human_coded_mask

    answered = answered_mask(table, text_col)
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
    from opm_nlp.columns import human_coded_mask

    return _frequency_rows(table, codebook, text_col, human_coded_mask(table))


def _frequency_rows(table: pd.DataFrame, codebook: Codebook, text_col: str, human: np.ndarray) -> pd.DataFrame:
    answered = answered_mask(table, text_col)
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
    answered = answered_mask(table, text_col)
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
    from opm_nlp.columns import human_coded_mask

    groups = group_values(table, by)
    human = human_coded_mask(table)
    answered = answered_mask(table, text_col)
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


# -- waves ----------------------------------------------------------------------------------------
def wave_tests(table: pd.DataFrame, codebook: Codebook, text_col: str, wave: str) -> pd.DataFrame:
    """Change in each code's share of answered respondents between waves, with tests.

    Consecutive waves are compared with the pooled two-proportion z-test, or Fisher's exact test when
    an expected count of the 2x2 table is below 5. With three or more waves, a chi-square test of
    homogeneity across all waves is added per code. p-values are Holm-adjusted within each family
    (all consecutive comparisons; all across-wave tests), since one report tests many codes at once.
    Respondents with an empty wave are left out.

    Returns
    -------
    DataFrame
        One row per code and comparison: code, label, comparison, wave_from, wave_to, answered_from,
        pct_from, answered_to, pct_to, change_pp (percentage points, to - from), test, statistic (by
        test: z, positive for a rise; the odds ratio of the later wave against the earlier; chi-square),
        min_expected, p_value, p_holm. A comparison that cannot be
        tested (a wave without answers, or the code in none or all answers) has test "not tested".
    """
    from scipy.stats import chi2_contingency, fisher_exact
    from statsmodels.stats.proportion import proportions_ztest

    from opm_nlp.report.prepost import holm

    long = group_frequencies(table, codebook, text_col, wave, include_missing=False)
    waves = list(dict.fromkeys(long[wave]))
    rows = []
    for code_id in codebook.ids:
        part = long[long["code"] == code_id].set_index(wave).loc[waves]
        counts, nobs = part["respondents"].to_numpy(int), part["answered"].to_numpy(int)
        base = {"code": code_id, "label": codebook[code_id].label}
        for i in range(len(waves) - 1):
            a, n1, b, n2 = counts[i], nobs[i], counts[i + 1], nobs[i + 1]
            row = {**base, "comparison": f"{waves[i]} → {waves[i + 1]}", "family": "consecutive",
                   "wave_from": waves[i], "wave_to": waves[i + 1], "answered_from": n1,
                   "pct_from": part["pct_of_answered"].iloc[i], "answered_to": n2,
                   "pct_to": part["pct_of_answered"].iloc[i + 1]}
            grid = np.array([[b, n2 - b], [a, n1 - a]], dtype=float)  # odds ratio: later wave vs earlier
            if n1 == 0 or n2 == 0 or a + b == 0 or a + b == n1 + n2:
                row.update(test="not tested", statistic=np.nan, min_expected=np.nan, p_value=np.nan)
            else:
                expected = grid.sum(axis=1, keepdims=True) * grid.sum(axis=0, keepdims=True) / grid.sum()
                row["min_expected"] = float(expected.min())
                if expected.min() < 5:
                    odds, p_value = fisher_exact(grid.astype(int), alternative="two-sided")
                    row.update(test="Fisher's exact", statistic=float(odds), p_value=float(p_value))
                else:
                    z, p_value = proportions_ztest([b, a], [n2, n1], alternative="two-sided")
                    row.update(test="two-proportion z", statistic=float(z), p_value=float(p_value))
            rows.append(row)
        if len(waves) >= 3:
            row = {**base, "comparison": f"all waves ({waves[0]}–{waves[-1]})", "family": "across all waves",
                   "wave_from": waves[0], "wave_to": waves[-1], "answered_from": nobs[0],
                   "pct_from": part["pct_of_answered"].iloc[0], "answered_to": nobs[-1],
                   "pct_to": part["pct_of_answered"].iloc[-1]}
            keep = nobs > 0
            total = counts[keep].sum()
            if keep.sum() < 2 or total == 0 or total == nobs[keep].sum():
                row.update(test="not tested", statistic=np.nan, min_expected=np.nan, p_value=np.nan)
            else:
                chi2, p_value, dof, expected = chi2_contingency(
                    np.vstack([counts[keep], nobs[keep] - counts[keep]]), correction=False)
                row.update(test=f"chi-square ({dof} df)", statistic=float(chi2),
                           min_expected=float(np.min(expected)), p_value=float(p_value))
            rows.append(row)
    columns = ["code", "label", "comparison", "family", "wave_from", "wave_to", "answered_from", "pct_from",
               "answered_to", "pct_to", "change_pp", "test", "statistic", "min_expected", "p_value", "p_holm"]
    if not rows:
        return pd.DataFrame(columns=columns)
    out = pd.DataFrame(rows)
    out["change_pp"] = out["pct_to"] - out["pct_from"]
    out["p_holm"] = np.nan
    for family in out["family"].unique():
        mask = out["family"] == family
        out.loc[mask, "p_holm"] = holm(out.loc[mask, "p_value"].to_numpy(float))
    return out[columns]


# -- co-occurrence and quotes ---------------------------------------------------------------------
def cooccurrence(table: pd.DataFrame, codebook: Codebook, text_col: str) -> pd.DataFrame:
    """Respondents (who answered) carrying both codes, for every pair; the diagonal is each code's total.

    Returns
    -------
    DataFrame
        Square, index and columns the code ids in codebook order.
    """
    answered = answered_mask(table, text_col)
    codes = table[codebook.ids].to_numpy(dtype=int)[answered]
    matrix = codes.T @ codes
    return pd.DataFrame(matrix, index=pd.Index(codebook.ids, name="code"), columns=codebook.ids)


def _words(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """Shared words over all words of two answers (0 when both are empty)."""
    union = a | b
    return len(a & b) / len(union) if union else 0.0


def example_quotes(table: pd.DataFrame, codebook: Codebook, text_col: str, id_col: str, n: int = 3,
                   max_similarity: float = MAX_QUOTE_SIMILARITY) -> pd.DataFrame:
    """Up to ``n`` example answers per code: confident and varied.

    Candidates are the answered respondents with the code, most confident first: by ``score_<code>``
    when the table has scores; otherwise (people's codes are all equally sure) answers carrying fewer
    codes first (the most specific to the theme), and among those, answers of 8 to 40 words (a sentence
    or two, not a fragment or an essay). They are taken greedily, skipping any answer whose word-set Jaccard similarity to a quote
    already chosen exceeds ``max_similarity``, so a code gets varied quotes, not near-copies (and
    fewer than ``n`` when its answers are all alike).

    Returns
    -------
    DataFrame
        Columns: code, label, rank, ``id_col``, ``text_col``, score (NaN without scores), coded_by
        ("person" or "model"), max_similarity (to the quotes chosen before it).
    """
    from opm_nlp.columns import human_coded_mask

    answered = answered_mask(table, text_col)
    human = human_coded_mask(table)
    n_codes = table[codebook.ids].to_numpy(dtype=int).sum(axis=1)
    texts = table[text_col].fillna("").astype(str).str.strip().to_numpy()
    n_words = np.array([len(text.split()) for text in texts])
    columns = ["code", "label", "rank", id_col, text_col, "score", "coded_by", "max_similarity"]
    rows = []
    for code_id in codebook.ids:
        candidates = np.flatnonzero((table[code_id].to_numpy(dtype=int) == 1) & answered)
        score_col = SCORE_PREFIX + code_id
        scores = table[score_col].to_numpy(float) if score_col in table.columns else np.full(len(table), np.nan)
        if score_col in table.columns:
            order = sorted(candidates, key=lambda i: (-np.nan_to_num(scores[i], nan=-np.inf), i))
        else:
            order = sorted(candidates, key=lambda i: (n_codes[i], not 8 <= n_words[i] <= 40, i))
        chosen: list[frozenset[str]] = []
        for i in order:
            if len(chosen) >= n:
                break
            words = _words(texts[i])
            similarity = max((jaccard(words, other) for other in chosen), default=0.0)
            if similarity > max_similarity:
                continue
            chosen.append(words)
            rows.append({"code": code_id, "label": codebook[code_id].label, "rank": len(chosen),
                         id_col: table[id_col].iloc[i], text_col: texts[i], "score": scores[i],
                         "coded_by": "person" if human[i] else "model", "max_similarity": similarity})
    return pd.DataFrame(rows, columns=columns)


# -- the report -----------------------------------------------------------------------------------
@dataclass
class ReportTable:
    """One table of a report, with what it shows and what it rests on."""

    name: str
    title: str
    frame: pd.DataFrame
    note: str = ""
    basis: str = ""
    index: bool = True


@dataclass
class Report:
    """Tables of a theme report, ready to render (:meth:`to_html`) or write (:meth:`write`).

    Build one with :func:`build_report`. ``tables`` maps a short name (the XLSX sheet) to a
    :class:`ReportTable`; ``groups`` holds :func:`group_frequencies` per ``by`` column and ``waves`` the
    same per wave (without respondents whose wave is empty); the charts use them.
    """

    source: str
    codebook: Codebook
    text_col: str
    id_col: str
    basis: dict[str, int]
    tables: dict[str, ReportTable] = field(default_factory=dict)
    groups: dict[str, pd.DataFrame] = field(default_factory=dict)
    waves: pd.DataFrame | None = None
    group_tables: dict[str, str] = field(default_factory=dict)
    by: tuple[str, ...] = ()
    wave: str | None = None
    notes: list[str] = field(default_factory=list)
    created: str = field(default_factory=lambda: dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z").strip())

    def figures(self) -> list[tuple[str, str, str]]:
        """The report's charts as (section, caption, inline SVG), drawn with :mod:`opm_nlp.report.plots`."""
        from opm_nlp.report import plots as plotting

        out = []

        def add(section: str, caption: str, figure) -> None:
            svg = plotting.figure_to_svg(figure, name=f"{section}-{len(out)}", description=caption)
            out.append((section, caption, svg))

        frequencies = self.tables["frequencies"].frame
        add("frequencies", "Respondents per theme, % of those who answered, with 95% Wilson intervals.",
            plotting.plot_frequencies(frequencies, self.codebook))
        for column in self.by:
            add(self.group_tables[column], f"Themes by {column}: % of answered per group, with 95% Wilson intervals.",
                plotting.plot_groups(self.groups[column], column, self.codebook))
        if self.wave is not None and self.waves is not None:
            long = self.waves
            n_waves = long[self.wave].nunique()
            if n_waves >= 3:
                add("waves", f"Trend across {n_waves} waves: % of answered per theme, 95% Wilson interval shaded.",
                    plotting.plot_wave_trend(long, self.wave, self.codebook))
            elif n_waves == 2:
                add("waves", "Themes in the two waves, with 95% Wilson intervals.",
                    plotting.plot_groups(long, self.wave, self.codebook, title=f"Themes by {self.wave}"))
        add("cooccurrence", "Respondents with both themes; the grey diagonal is each theme's total.",
            plotting.plot_cooccurrence(self.tables["cooccurrence"].frame, self.codebook))
        if "prepost" in self.tables:
            add("prepost", "Mean self-rating before and after, per item.",
                plotting.plot_prepost(self.tables["prepost"].frame))
        return out

    def sheets(self) -> dict[str, pd.DataFrame]:
        """The XLSX workbook: a README sheet describing each table and its basis, then one sheet per table."""
        readme = pd.DataFrame(
            [{"sheet": t.name, "table": t.title, "what it shows": t.note, "rests on": t.basis}
             for t in self.tables.values()])
        header = pd.DataFrame([{"sheet": "", "table": f"Theme report on {self.source}",
                                "what it shows": f"codebook {self.codebook.name} {self.codebook.version} "
                                                 f"(fingerprint {self.codebook.fingerprint}); created {self.created}",
                                "rests on": basis_text(self.basis)}])
        sheets = {"README": pd.concat([header, readme], ignore_index=True)}
        for t in self.tables.values():
            sheets[t.name] = _for_file(t.frame.reset_index() if t.index else t.frame)
        return sheets

    def to_html(self) -> str:
        """The report as one self-contained HTML page (inline CSS and SVG charts, no external links)."""
        from opm_nlp.report.html import render_html

        return render_html(self)

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write report.html, report.xlsx and theme_frequencies.csv into ``out_dir``, all or nothing.

        Everything is rendered in memory and written to temporary files beside the targets first; only
        when all three are complete are they renamed into place, so a failed run leaves no partial or
        mixed files (an earlier report in ``out_dir`` stays as it was).

        Returns
        -------
        dict
            File name -> path written.
        """
        from opm_nlp.io.tables import atomic_output, write_xlsx

        page = self.to_html()
        sheets = self.sheets()
        frequencies = _for_file(self.tables["frequencies"].frame.reset_index())
        out_dir = Path(out_dir)
        if out_dir.exists() and not out_dir.is_dir():
            raise DataError(f"{out_dir} exists and is not a folder; pass --out with a folder for the report.")
        created = not out_dir.exists()
        out_dir.mkdir(parents=True, exist_ok=True)
        try:
            with ExitStack() as stack:  # every file complete before any is renamed into place
                temporary = {name: stack.enter_context(atomic_output(out_dir / name)) for name in REPORT_FILES}
                temporary["report.html"].write_text(page, encoding="utf-8")
                write_xlsx(sheets, temporary["report.xlsx"])
                frequencies.to_csv(temporary["theme_frequencies.csv"], index=False, encoding="utf-8")
        except BaseException:
            if created and not any(out_dir.iterdir()):
                out_dir.rmdir()
            raise
        return {name: out_dir / name for name in REPORT_FILES}


def _for_file(frame: pd.DataFrame) -> pd.DataFrame:
    """Round floats for files: p-values to 4 significant digits, everything else to 4 decimals."""
    frame = frame.copy()
    for column in frame.columns:
        if pd.api.types.is_float_dtype(frame[column]):
            if str(column).startswith("p_"):
                frame[column] = frame[column].map(lambda v: float(f"{v:.4g}") if pd.notna(v) else v)
            else:
                frame[column] = frame[column].round(4)
    return frame


def build_report(table: pd.DataFrame, codebook: Codebook, text_col: str, id_col: str,
                 by: Sequence[str] = (), wave: str | None = None, quotes: int = 3, prepost=None,
                 source: str = "the table", format: str = "auto", code_col: str | None = None) -> Report:
    """Compute every table of a theme report.

    Parameters
    ----------
    table : DataFrame
        Tagged, coded or reviewed answers (checked with :func:`prepare_table`).
    codebook : Codebook
        The codes, in report order.
    text_col, id_col : str
        Answer and response-id columns.
    by : sequence of str
        Columns to break frequencies down by (institution, role, ...).
    wave : str, optional
        Column of survey waves: adds frequencies per wave and tests of change between waves.
    quotes : int
        Example answers per code (0 for none).
    prepost : PrePostSpec, optional
        Retrospective pre/post items (see :mod:`opm_nlp.report.prepost`): adds the paired tests and the gains
        of respondents with each theme against those without.
    source : str
        Name of the input, for the report header and error messages.

    Returns
    -------
    Report

    Raises
    ------
    DataError
        If a ``by`` or ``wave`` column is missing or is not a grouping column, or the table is malformed.
    SpecError
        If the pre/post spec names columns the table lacks.
    """
    table = prepare_table(table, codebook, text_col, id_col, format=format, code_col=code_col, source=source)
    for column in by:
        check_group_column(table, column, "--by", source)
    if wave is not None:
        check_group_column(table, wave, "--wave", source)
    basis = coding_basis(table, text_col)
    everything = basis_text(basis)
    report = Report(source=source, codebook=codebook, text_col=text_col, id_col=id_col, basis=basis,
                    by=tuple(dict.fromkeys(by)), wave=wave)

    def add(name: str, title: str, frame: pd.DataFrame, note: str, basis_line: str = everything,
            index: bool = True) -> None:
        report.tables[name] = ReportTable(name, title, frame, note, basis_line, index)

    add("frequencies", "Theme frequencies", frequency_table(table, codebook, text_col),
        "Respondents with each code; % of respondents who answered (with the 95% Wilson interval) and % of all "
        "respondents; how many of them were coded by a person and how many by the model only.")
    add("study_table", "Unique respondents per category (the OPM study's table)",
        study_table(table, codebook, text_col, id_col),
        "As in the OPM study's Table 3: unique respondents per category, in codebook order; with_subcodes also "
        "counts respondents coded with a sub-code of the category.")
    for column in report.by:
        long = group_frequencies(table, codebook, text_col, column)
        report.groups[column] = long
        report.group_tables[column] = _sheet_name(f"by_{column}", report.tables)
        add(report.group_tables[column], f"Themes by {column}", side_by_side(long, column),
            f"Per {column}: respondents with each code, % of that group's answered respondents and its 95% Wilson "
            f"interval, side by side.", group_basis(long, column))
    if wave is not None:
        long = group_frequencies(table, codebook, text_col, wave, include_missing=False)
        report.waves = long
        waves = list(dict.fromkeys(long[wave]))
        missing = int(group_values(table, wave).eq(MISSING_GROUP).sum())
        if missing:
            report.notes.append(f"{missing} respondents with an empty '{wave}' are left out of the wave comparison.")
        add("waves", f"Themes by {wave}", side_by_side(long, wave),
            f"Per {wave}: respondents with each code, % of answered and 95% Wilson interval.", group_basis(long, wave))
        if len(waves) >= 2:
            tests = wave_tests(table, codebook, text_col, wave)
            n_consecutive = int(tests["p_value"].notna()[tests["family"] == "consecutive"].sum())
            n_overall = int(tests["p_value"].notna()[tests["family"] != "consecutive"].sum())
            add("wave_tests", f"Change between {wave}s", tests,
                f"Consecutive {wave}s compared per code with the two-proportion z-test (Fisher's exact test when an "
                f"expected count is below 5)" + (", and a chi-square test across all waves" if len(waves) >= 3 else "")
                + f". Multiple comparisons: p_holm is Holm-adjusted within each family ({n_consecutive} consecutive "
                f"comparisons" + (f"; {n_overall} across-wave tests" if len(waves) >= 3 else "") + "); with this many "
                "tests a raw p below 0.05 is expected by chance for some codes, so read p_holm. The statistic is z "
                "(positive for a rise), the odds ratio (later against earlier) or chi-square; a min_expected below 5 "
                "makes a chi-square rough.",
                group_basis(long, wave), index=False)
        else:
            report.notes.append(f"Column '{wave}' holds one wave ({waves[0] if waves else 'none'}); no change to test.")
    add("cooccurrence", "Co-occurrence of themes", cooccurrence(table, codebook, text_col),
        "Respondents (who answered) carrying both codes; the diagonal is each code's total.")
    if quotes > 0:
        examples = example_quotes(table, codebook, text_col, id_col, n=quotes)
        counts = examples["coded_by"].value_counts()
        add("quotes", "Example answers per theme", examples,
            f"Up to {quotes} answers per code, most confident first (highest model score when the table has scores, "
            f"else the answers with fewest other codes, of 8-40 words), skipping near-copies (more than {MAX_QUOTE_SIMILARITY:.0%} "
            f"shared words with a quote already chosen).",
            f"{len(examples)} quotes: {int(counts.get('person', 0))} coded by a person, "
            f"{int(counts.get('model', 0))} with model suggestions only.", index=False)
    if prepost is not None:
        from opm_nlp.report.prepost import prepost_table, theme_gains

        add("prepost", "Self-ratings before and after", prepost_table(table, prepost, source),
            "Per item: respondents with both ratings, means, mean paired difference (after - before), Wilcoxon "
            "signed-rank test (two-sided; p_holm Holm-adjusted over the items) and the matched-pairs rank-biserial "
            "correlation with a 95% percentile bootstrap interval (2000 resamples, fixed seed).",
            f"Ratings are the respondents' own; they do not depend on coding. {len(table)} respondents.")
        gains = theme_gains(table, prepost, codebook, answered_mask(table, text_col), source)
        add("prepost_by_theme", "Gains with and without each theme", gains,
            "Per item and code: mean gain (after - before) of answered respondents with the code against those "
            "without, Mann-Whitney U test (two-sided); p_holm Holm-adjusted over all rows. Exploratory.",
            everything, index=False)
    return report


def _sheet_name(name: str, taken: dict) -> str:
    """An XLSX sheet name (31 characters, no []:*?/\\) not yet used in the report."""
    base = re.sub(r"[\[\]:*?/\\]", "_", name)[:31]
    candidate, k = base, 2
    while candidate in taken or candidate == "README":
        candidate = f"{base[:28]}_{k}"
        k += 1
    return candidate
