"""Charts of report tables: plain functions that take a table and return a matplotlib Figure.

Each function takes a DataFrame made by :mod:`opm_nlp.report.tables` (or :mod:`opm_nlp.report.prepost`) and returns a
:class:`matplotlib.figure.Figure`, built without pyplot, so nothing here touches a display or global
state. :func:`figure_to_svg` turns a figure into SVG text to inline in a self-contained HTML page.

Every text drawn (code labels, group and wave values, item names, titles) is plain text: a ``$`` is
escaped by :func:`plain_text`, so ``$x$`` is not typeset as a formula and an odd ``$`` cannot stop a chart.

Examples
--------
>>> from opm_nlp.report.tables import frequency_table
>>> from opm_nlp.report.plots import plot_frequencies
>>> fig = plot_frequencies(frequency_table(coded, codebook, "answer"), codebook)   # doctest: +SKIP
>>> fig.savefig("frequencies.png", dpi=150)                                         # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import io
import math
import re
import textwrap
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from opm_nlp.codebook.codes import Codebook

if TYPE_CHECKING:  # matplotlib is imported only when a chart is drawn
    from matplotlib.figure import Figure

#: Colours for codes without a ``color`` in the codebook, and for groups (matplotlib's tab10).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
_INTERVAL = "95% Wilson interval"


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def code_colors(codebook: Codebook | None, code_ids: list[str]) -> list[str]:
    """Colour of each code: the codebook's ``color``, else a palette colour by position."""
    colors = []
    for i, code_id in enumerate(code_ids):
        color = codebook[code_id].color if codebook is not None and code_id in codebook else None
        colors.append(color or PALETTE[i % len(PALETTE)])
    return colors


def plain_text(text: object) -> str:
    """``text`` as matplotlib draws it literally: each ``$`` escaped, so no part is read as mathtext.

    Matplotlib typesets text between two unescaped ``$`` as a formula ("$x$" comes out as an italic x)
    and stops with a ParseException on text such as "Grant $$ office"; ``\\$`` is its escape for a
    literal dollar sign.
    """
    return str(text).replace("$", "\\$")


def _wrap(label: str, width: int = 28) -> str:
    """``label`` wrapped to lines of ``width`` characters, as plain text."""
    return plain_text("\n".join(textwrap.wrap(str(label), width)) or str(label))


def _errors(frame: pd.DataFrame, value: str = "pct_of_answered") -> np.ndarray:
    """Asymmetric error-bar lengths from ci_low/ci_high (0 where there is no interval).

    At 0% or 100% a Wilson bound can differ from the estimate by rounding error; clipping keeps the
    lengths non-negative, as matplotlib requires.
    """
    values = frame[value].to_numpy(float)
    low = np.clip(np.nan_to_num(values - frame["ci_low"].to_numpy(float)), 0, None)
    high = np.clip(np.nan_to_num(frame["ci_high"].to_numpy(float) - values), 0, None)
    return np.vstack([low, high])


def plot_frequencies(frequencies: pd.DataFrame, codebook: Codebook | None = None,
                     title: str = "Respondents per theme", interval: str = _INTERVAL,
                     annotations: Sequence[str] | None = None) -> Figure:
    """Horizontal bars: % of respondents who answered, per code, with 95% Wilson interval error bars.

    Parameters
    ----------
    frequencies : DataFrame
        From :func:`opm_nlp.report.tables.frequency_table` (index: code ids; columns label, respondents,
        pct_of_answered, ci_low, ci_high).
    codebook : Codebook, optional
        For the codes' colours.
    interval : str
        What the error bars are, for the axis label.
    annotations : sequence of str, optional
        Text beside each bar (default: ``n=<respondents>``).
    """
    n = len(frequencies)
    fig = _figure(8, 0.42 * n + 1.4)
    ax = fig.add_subplot()
    y = np.arange(n)[::-1]
    pct = np.nan_to_num(frequencies["pct_of_answered"].to_numpy(float))
    ax.barh(y, pct, xerr=_errors(frequencies), color=code_colors(codebook, list(frequencies.index)),
            capsize=3, error_kw={"elinewidth": 1, "ecolor": "#333333"})
    upper = np.nan_to_num(frequencies["ci_high"].to_numpy(float))
    if annotations is None:
        annotations = [f"n={int(count)}" for count in frequencies["respondents"]]
    for yi, x, text in zip(y, np.maximum(pct, upper), annotations):
        ax.text(x + 0.8, yi, plain_text(text), va="center", fontsize=8, color="#333333")
    ax.set_yticks(y, [_wrap(v) for v in frequencies["label"]], fontsize=9)
    ax.set_xlabel(f"% of respondents who answered ({interval})")
    ax.set_xlim(0, min(100, max(10.0, float(np.nanmax(upper, initial=0)) * 1.15 + 5)))
    ax.set_title(plain_text(title), loc="left", fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def _group_order(long: pd.DataFrame, by: str) -> list[str]:
    return list(dict.fromkeys(long[by]))


def plot_groups(long: pd.DataFrame, by: str, codebook: Codebook | None = None,
                title: str | None = None, columns: int = 4, interval: str = _INTERVAL) -> Figure:
    """Small multiples: per code, a dot plot of % of answered per subgroup, with 95% Wilson intervals.

    One panel per code, titled with its label; the groups run down each panel's axis in the same order
    (named once, on the left), so no legend is needed and no colour has to be matched. A dashed line
    marks the code's % over all groups together.

    Parameters
    ----------
    long : DataFrame
        From :func:`opm_nlp.report.tables.group_frequencies`: one row per (group, code), with columns ``by``,
        code, label, respondents, answered, pct_of_answered, ci_low, ci_high.
    by : str
        The grouping column.
    codebook : Codebook, optional
        Unused (panels are titled with the codes' labels); kept so every chart takes the same arguments.
    columns : int
        Panels per row (fewer when there are fewer codes).
    interval : str
        What the intervals are, for the axis label (estimates drawn from
        :func:`opm_nlp.report.strata.chart_frame` carry their own).
    """
    groups = _group_order(long, by)
    codes = list(dict.fromkeys(long["code"]))
    columns = max(1, min(columns, len(codes)))
    rows = math.ceil(len(codes) / columns)
    fig = _figure(2.0 * columns + 2.4, rows * (0.27 * len(groups) + 0.75) + 0.9)
    axes = fig.subplots(rows, columns, sharey=True, squeeze=False)
    y = np.arange(len(groups))[::-1].astype(float)
    answered = long.drop_duplicates(by).set_index(by)["answered"]
    top = min(100.0, max(10.0, float(np.nanmax(long["ci_high"].to_numpy(float), initial=0)) * 1.08 + 2))
    for ax, code_id in zip(axes.flat, codes):
        part = long[long["code"] == code_id].set_index(by).reindex(groups)
        # One dark colour: the panel title names the code, and pale codebook colours fade on white paper.
        ax.errorbar(part["pct_of_answered"].to_numpy(float), y, xerr=_errors(part), fmt="o", markersize=3.5,
                    elinewidth=1.2, capsize=0, color="#1f4e79")
        total = part["answered"].sum()
        if total:
            ax.axvline(100 * part["respondents"].sum() / total, color="#888888", linestyle="--", linewidth=0.8)
        ax.set_title(_wrap(str(part["label"].dropna().iloc[0]), 26), fontsize=8.5, loc="left")
        ax.set_xlim(0, top)
        ax.tick_params(labelsize=7.5)
        ax.grid(axis="x", color="#eeeeee")
        ax.spines[["top", "right"]].set_visible(False)
    for k, ax in enumerate(axes.flat):
        if k >= len(codes):
            ax.set_visible(False)
        elif k + columns >= len(codes):  # the lowest panel of its column carries the x scale
            ax.xaxis.set_tick_params(labelbottom=True)
    axes[0, 0].set_yticks(y, [_wrap(f"{g} (n={int(answered.get(g, 0))})", 30) for g in groups])
    axes[0, 0].set_ylim(-0.6, len(groups) - 0.4)
    fig.supxlabel(f"% of respondents who answered ({interval}; dashed: all groups)", fontsize=9)
    fig.suptitle(plain_text(title or f"Themes by {by}"), x=0.01, ha="left", fontsize=11)
    return fig


def plot_wave_trend(long: pd.DataFrame, wave: str, codebook: Codebook | None = None, columns: int = 4,
                    title: str | None = None, interval: str = _INTERVAL) -> Figure:
    """Small multiples: each code's % of answered across waves, with a 95% Wilson interval band.

    Parameters
    ----------
    long : DataFrame
        From :func:`opm_nlp.report.tables.group_frequencies` with ``by=wave`` (waves in order).
    wave : str
        The wave column.
    interval : str
        What the shaded band is, for the title.
    """
    waves = _group_order(long, wave)
    codes = list(dict.fromkeys(long["code"]))
    colors = code_colors(codebook, codes)
    rows = math.ceil(len(codes) / columns)
    fig = _figure(2.4 * columns, 2.0 * rows + 0.8)
    axes = fig.subplots(rows, columns, sharex=True, sharey=True, squeeze=False)
    x = np.arange(len(waves))
    top = float(np.nanmax(long["ci_high"].to_numpy(float), initial=10.0))
    for ax, code_id, color in zip(axes.flat, codes, colors):
        part = long[long["code"] == code_id].set_index(wave).reindex(waves)
        ax.fill_between(x, part["ci_low"].to_numpy(float), part["ci_high"].to_numpy(float), color=color, alpha=0.2,
                        linewidth=0)
        ax.plot(x, part["pct_of_answered"].to_numpy(float), marker="o", markersize=3.5, color=color)
        ax.set_title(_wrap(str(part["label"].iloc[0]), 30), fontsize=8.5, loc="left")
        ax.set_ylim(0, min(100.0, top * 1.1 + 2))
        ax.grid(axis="y", color="#eeeeee")
        ax.spines[["top", "right"]].set_visible(False)
    for ax in list(axes.flat)[len(codes):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xticks(x, [plain_text(w) for w in waves], fontsize=8, rotation=45 if len(waves) > 4 else 0)
    for ax in axes[:, 0]:
        ax.set_ylabel("% answered", fontsize=8)
    fig.suptitle(plain_text(title or f"Themes by {wave} ({interval} shaded)"), x=0.01, ha="left", fontsize=11)
    return fig


def plot_cooccurrence(matrix: pd.DataFrame, codebook: Codebook | None = None,
                      title: str = "Co-occurrence of themes (respondents with both)") -> Figure:
    """Heat map of a code-by-code co-occurrence table, with the count in each cell.

    The diagonal (respondents with the code at all) is shown in grey so it does not set the colour scale.

    Parameters
    ----------
    matrix : DataFrame
        From :func:`opm_nlp.report.tables.cooccurrence`: square, indexed and columned by code ids.
    """
    from matplotlib import colormaps

    codes = list(matrix.index)
    labels = [codebook[c].label if codebook is not None and c in codebook else c for c in codes]
    counts = matrix.to_numpy(dtype=float)
    shown = counts.copy()
    np.fill_diagonal(shown, np.nan)
    n = len(codes)
    fig = _figure(0.55 * n + 3.2, 0.5 * n + 2.2)
    ax = fig.add_subplot()
    cmap = colormaps["Blues"].with_extremes(bad="#e6e6e6")
    vmax = max(1.0, float(np.nanmax(shown, initial=0)))
    image = ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, vmin=0, vmax=vmax)
    for i in range(n):
        for j in range(n):
            dark = i != j and counts[i, j] > 0.6 * vmax
            ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=7,
                    color="white" if dark else "#222222", style="italic" if i == j else "normal")
    # Full labels (never shortened), slanted so long ones fit without overlapping their neighbours.
    ax.set_xticks(range(n), [plain_text(v) for v in labels], rotation=45, ha="right", rotation_mode="anchor",
                  fontsize=8)
    ax.set_yticks(range(n), [_wrap(v, 26) for v in labels], fontsize=8)
    fig.colorbar(image, ax=ax, shrink=0.6, label="respondents with both")
    ax.set_title(plain_text(title), loc="left", fontsize=11)
    return fig


def plot_prepost(prepost: pd.DataFrame, title: str = "Self-ratings before and after",
                 scale: tuple[float, float] | None = None) -> Figure:
    """Dumbbell chart of each item's mean rating before and after, on the rating scale.

    Parameters
    ----------
    prepost : DataFrame
        From :func:`opm_nlp.report.prepost.prepost_table` (index: item names; columns mean_before, mean_after, n).
    scale : (float, float), optional
        The rating scale (:func:`opm_nlp.report.prepost.rating_scale`); the axis spans it, so a change
        of means is drawn at its size on the scale rather than stretched over the whole axis.
    """
    n = len(prepost)
    fig = _figure(8, 0.42 * n + 1.5)
    ax = fig.add_subplot()
    y = np.arange(n)[::-1]
    before, after = prepost["mean_before"].to_numpy(float), prepost["mean_after"].to_numpy(float)
    ax.hlines(y, np.fmin(before, after), np.fmax(before, after), color="#999999", linewidth=2)
    ax.plot(before, y, "o", color="#9ecae1", markersize=7, label="before")
    ax.plot(after, y, "o", color="#08519c", markersize=7, label="after")
    ax.set_yticks(y, [_wrap(f"{item} (n={int(k)})", 34) for item, k in zip(prepost.index, prepost["n"])], fontsize=9)
    ax.set_xlabel("mean rating")
    if scale is not None:
        low, high = scale
        ax.set_xlim(low - 0.03 * (high - low), high + 0.03 * (high - low))
        if float(low).is_integer() and float(high).is_integer() and high - low <= 10:
            ax.set_xticks(np.arange(low, high + 1))
        ax.set_xlabel(f"mean rating (scale {low:g}–{high:g})")
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1, 1))
    ax.set_title(plain_text(title), loc="left", fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def figure_files(fig: Figure, svg: str | None = None, dpi: int = 300) -> dict[str, bytes]:
    """A chart as file contents for a manuscript: ``{"svg": ..., "png": ...}``.

    The SVG keeps text as text (editable in a drawing program) and carries no date, so the same report
    gives the same file; pass ``svg``, the chart's :func:`figure_to_svg` markup, when it is drawn
    already. The PNG is drawn at ``dpi`` dots per inch (300: journals' usual minimum).
    """
    svg = figure_to_svg(fig) if svg is None else svg
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={})
    return {"svg": ('<?xml version="1.0" encoding="utf-8" standalone="no"?>\n' + svg).encode("utf-8"),
            "png": buffer.getvalue()}


def file_stems(names: list[str]) -> list[str]:
    """File names (without suffix) for charts named after their tables: portable characters, distinct.

    >>> file_stems(["by_site", "by_site $", "by_Site"])
    ['by_site', 'by_site_2', 'by_Site_3']
    """
    stems: list[str] = []
    for name in names:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "chart"
        stem, k = base, 2
        while stem.lower() in {s.lower() for s in stems}:  # distinct on case-insensitive file systems too
            stem, k = f"{base}_{k}", k + 1
        stems.append(stem)
    return stems


def figure_to_svg(fig: Figure, name: str = "figure", description: str = "") -> str:
    """SVG markup of a figure, ready to inline in HTML: no XML prolog, no metadata, text kept as text.

    Parameters
    ----------
    fig : Figure
        The chart.
    name : str
        Salt for the SVG's internal ids (distinct per figure, so several can share one page).
    description : str
        Accessible name (``aria-label``) of the image.
    """
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": name}):
        fig.savefig(buffer, format="svg",
                    metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    label = (description or name).replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return text.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1)
