"""The theme report: every table of :mod:`opm_nlp.report.tables` and its peers, rendered and written.

:func:`build_report` gathers theme frequencies, the study's table, subgroups, waves and their tests,
co-occurrence, example answers and pre/post ratings into a :class:`Report`, which renders a
self-contained HTML page (charts inlined as SVG, :mod:`opm_nlp.report.html`) and writes
``report.html``, ``report.xlsx``, ``theme_frequencies.csv`` and each chart as its own SVG and PNG file
(``figures/<table>.svg``, ``.png``, for a manuscript) atomically. Every table says what it
rests on: how many of its answers a person coded or reviewed, and how many carry only model
suggestions.

Examples
--------
>>> from opm_nlp import load_codebook
>>> from opm_nlp.report.build import build_report
>>> codebook = load_codebook("codebook/opm_behavior_change.yaml")                  # doctest: +SKIP
>>> build_report(tagged, codebook, "answer", "response_id", by=["institution"],
...              wave="wave").write("report_2022")                                # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from opm_nlp.codebook.codes import Codebook
from opm_nlp.exceptions import DataError
from opm_nlp.report import strata
from opm_nlp.report.html import render_html
from opm_nlp.report.prevalence import ESTIMATE_COLUMNS, ESTIMATES_NOTE, corrects, estimate_table, how_made
from opm_nlp.report.quotes import MAX_QUOTE_SIMILARITY, MIN_QUOTE_WORDS, example_quotes, quotes_for_xlsx
from opm_nlp.report.tables import (
    MISSING_GROUP,
    basis_text,
    check_group_column,
    coding_basis,
    cooccurrence,
    frequency_table,
    group_basis,
    group_frequencies,
    group_values,
    prepare_table,
    sheet_name,
    side_by_side,
    study_table,
)
from opm_nlp.report.waves import wave_tests, wave_tests_note

REPORT_FILES = ("report.html", "report.xlsx", "theme_frequencies.csv")
#: Folder of the report's chart files, inside the report folder.
FIGURES_DIR = "figures"
#: Title suffix of the tables that count suggestions as if true (when some answers carry only those).
COUNTED = " (counts of suggestions)"


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
    group_estimates: dict[str, tuple[str, pd.DataFrame]] = field(default_factory=dict)
    by: tuple[str, ...] = ()
    wave: str | None = None
    notes: list[str] = field(default_factory=list)
    title: str | None = None
    rating_scale: tuple[float, float] | None = None
    made: list[str] = field(default_factory=list)
    created: str = field(default_factory=lambda: dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z").strip())

    @property
    def heading(self) -> str:
        """The page's title and heading: ``title`` when given, else one naming the source."""
        return self.title or f"Theme report: {self.source}"

    def figures(self) -> list[tuple[str, str, str]]:
        """The report's charts as (section, caption, inline SVG), drawn with :mod:`opm_nlp.report.plots`."""
        from opm_nlp.report.plots import figure_to_svg

        return [(section, caption, figure_to_svg(figure, name=f"{section}-{k}", description=caption))
                for k, (section, caption, figure) in enumerate(self.charts())]

    def charts(self) -> list[tuple[str, str, object]]:
        """The report's charts as (section, caption, matplotlib Figure); section is the table's name."""
        from opm_nlp.report import plots as plotting

        out = []

        def add(section: str, caption: str, figure) -> None:
            out.append((section, caption, figure))

        estimates = self.tables["estimates"].frame
        if corrects(estimates):  # else the estimates are the counts, charted below
            add("estimates", "Estimated % of respondents who answered, per theme, with 95% intervals (method per theme "
                             "in the table).",
                plotting.plot_frequencies(estimates.assign(
                    pct_of_answered=estimates["estimate_pct"], ci_low=estimates["estimate_ci_low"],
                    ci_high=estimates["estimate_ci_high"]), self.codebook, title="Estimated share per theme",
                    interval="95% interval of the estimate", annotations=estimates["estimate_method"].tolist()))
        frequencies = self.tables["frequencies"].frame
        add("frequencies", "Respondents per theme, % of those who answered, with 95% Wilson intervals.",
            plotting.plot_frequencies(frequencies, self.codebook))
        for column in self.by:
            section, long, interval = strata.chart_source(self.groups[column], self.group_tables[column],
                                                          self.group_estimates, column)
            add(section, f"Themes by {column}: one panel per theme, % of answered per group ({interval}); the dashed "
                f"line is all groups together.", plotting.plot_groups(long, column, self.codebook, interval=interval))
        if self.wave is not None and self.waves is not None and "waves" in self.tables:
            section, long, interval = strata.chart_source(self.waves, "waves", self.group_estimates, self.wave)
            n_waves = long[self.wave].nunique()
            if n_waves >= 3:
                add(section, f"Trend across {n_waves} waves: % of answered per theme, {interval} shaded.",
                    plotting.plot_wave_trend(long, self.wave, self.codebook, interval=interval))
            elif n_waves == 2:
                add(section, f"Themes in the two waves ({interval}).",
                    plotting.plot_groups(long, self.wave, self.codebook, title=f"Themes by {self.wave}",
                                         interval=interval))
        add("cooccurrence", "Respondents with both themes; the grey diagonal is each theme's total.",
            plotting.plot_cooccurrence(self.tables["cooccurrence"].frame, self.codebook))
        if "prepost" in self.tables:
            add("prepost", "Mean self-rating before and after, per item, on the rating scale.",
                plotting.plot_prepost(self.tables["prepost"].frame, scale=self.rating_scale))
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
        made = pd.DataFrame([{"sheet": "", "table": "How these numbers were made", "what it shows": line,
                              "rests on": ""} for line in self.made], columns=header.columns)
        sheets = {"README": pd.concat([header, made, readme], ignore_index=True)}
        for t in self.tables.values():
            sheets[t.name] = _for_file(t.frame.reset_index() if t.index else t.frame)
        return sheets

    def to_html(self) -> str:
        """The report as one self-contained HTML page (inline CSS and SVG charts, no external links)."""
        return render_html(self)

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write report.html, report.xlsx, theme_frequencies.csv and the chart files into ``out_dir``, all or nothing.

        Each chart is also written as ``figures/<table>.svg`` (text kept as text, editable) and
        ``figures/<table>.png`` (300 dpi), named after the table it draws. Everything is rendered in
        memory and written to temporary files beside the targets first; only when all are complete are
        they renamed into place, so a failed run leaves no partial or mixed files (an earlier report in
        ``out_dir`` stays as it was).

        Returns
        -------
        dict
            File name (relative to ``out_dir``) -> path written.
        """
        from opm_nlp.io.tables import atomic_output, write_csv, write_xlsx
        from opm_nlp.report.plots import figure_files, figure_to_svg, file_stems

        charts = self.charts()
        drawn = [(section, caption, figure_to_svg(figure, name=f"{section}-{k}", description=caption))
                 for k, (section, caption, figure) in enumerate(charts)]
        page = render_html(self, drawn)
        files = {f"{FIGURES_DIR}/{stem}.{suffix}": data
                 for stem, (_, _, figure), (_, _, svg) in zip(file_stems([c[0] for c in charts]), charts, drawn)
                 for suffix, data in figure_files(figure, svg).items()}
        sheets = self.sheets()
        if "quotes" in sheets:  # the highlights of quotes that lose control characters in XLSX move with them
            sheets["quotes"] = quotes_for_xlsx(sheets["quotes"], self.text_col)
        frequencies = _for_file(self.tables["frequencies"].frame.reset_index())
        out_dir = Path(out_dir)
        if out_dir.exists() and not out_dir.is_dir():
            raise DataError(f"{out_dir} exists and is not a folder; pass --out with a folder for the report.")
        created = [folder for folder in (out_dir, out_dir / FIGURES_DIR) if not folder.exists()]
        if (out_dir / FIGURES_DIR).exists() and not (out_dir / FIGURES_DIR).is_dir():
            raise DataError(f"{out_dir / FIGURES_DIR} exists and is not a folder; the report writes its charts "
                            f"there. Move it, or pass another --out.")
        (out_dir / FIGURES_DIR).mkdir(parents=True, exist_ok=True)
        names = [*REPORT_FILES, *files]
        try:
            with ExitStack() as stack:  # every file complete before any is renamed into place
                temporary = {name: stack.enter_context(atomic_output(out_dir / name)) for name in names}
                temporary["report.html"].write_text(page, encoding="utf-8")
                write_xlsx(sheets, temporary["report.xlsx"])
                write_csv(frequencies, temporary["theme_frequencies.csv"])
                for name, data in files.items():
                    temporary[name].write_bytes(data)
        except BaseException:
            for folder in reversed(created):
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
            raise
        return {name: out_dir / name for name in names}


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
                 source: str = "the table", format: str = "auto", code_col: str | None = None,
                 title: str | None = None, audit=None, trust: dict | None = None, model: str | None = None) -> Report:
    """Compute every table of a theme report.

    Parameters
    ----------
    table : DataFrame
        Tagged, coded or reviewed answers (checked with :func:`~opm_nlp.report.tables.prepare_table`).
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
    title : str, optional
        Title and heading of the HTML page (default: "Theme report: <source>").
    audit : Audit, optional
        A random audit sample coded blind (:func:`opm_nlp.report.audit.read_audit`): prediction-powered estimates.
    trust : dict, optional
        The model's trust figures (:func:`opm_nlp.report.prevalence.trust_of`): quoted in the report, and
        without an audit their confusion counts give adjusted estimates.
    model : str, optional
        The model's name and version, for "How these numbers were made".

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
    report = Report(source=source, codebook=codebook, text_col=text_col, id_col=id_col,
                    basis=coding_basis(table, text_col), by=tuple(dict.fromkeys(by)), wave=wave,
                    title=title)
    estimates, notes = estimate_table(table, codebook, text_col, id_col, audit=audit, trust=trust)
    report.notes += [*(audit.notes if audit is not None else ()), *notes]
    report.made = how_made(estimates, audit, trust, model)
    _add(report, "estimates", "Estimated share of respondents per theme", estimates, ESTIMATES_NOTE)
    frequencies = frequency_table(table, codebook, text_col)
    frequencies[ESTIMATE_COLUMNS] = estimates[ESTIMATE_COLUMNS]
    _add(report, "frequencies", "Theme frequencies", frequencies,
         "Respondents with each code; % of respondents who answered (with the 95% Wilson interval) and % of all "
         "respondents; how many of them were coded by a person and how many by the model only.")
    _add(report, "study_table", "Unique respondents per category (the OPM study's table)",
         study_table(table, codebook, text_col, id_col),
         "As in the OPM study's Table 3: unique respondents per category, in codebook order; with_subcodes also "
         "counts respondents coded with a sub-code of the category.")
    for column in report.by:
        _add_group_estimates(report, table, column, audit, trust)
        long = group_frequencies(table, codebook, text_col, column)
        report.groups[column] = long
        report.group_tables[column] = sheet_name(f"by_{column}", report.tables)
        title = f"Themes by {column}" + (COUNTED if report.basis["model_only"] else "")
        _add(report, report.group_tables[column], title, side_by_side(long, column),
             f"Per {column}: respondents with each code, % of that group's answered respondents and its 95% Wilson "
             f"interval, side by side.", group_basis(long, column))
    if wave is not None:
        _add_waves(report, table, wave, audit, trust)
    _add(report, "cooccurrence", "Co-occurrence of themes", cooccurrence(table, codebook, text_col),
         "Respondents (who answered) carrying both codes; the diagonal is each code's total.")
    if quotes > 0:
        _add_quotes(report, table, quotes)
    if prepost is not None:
        _add_prepost(report, table, prepost)
    return report


def _add(report: Report, name: str, title: str, frame: pd.DataFrame, note: str, basis: str | None = None,
         index: bool = True) -> None:
    """Add a table to ``report``; by default it rests on every answer of the report."""
    basis = basis_text(report.basis) if basis is None else basis
    report.tables[name] = ReportTable(name, title, frame, note, basis, index)


def _add_group_estimates(report: Report, table: pd.DataFrame, by: str, audit, trust, missing: bool = True) -> None:
    """Estimates per group of ``by`` when some answers are model-only (else they are the counts); note fallbacks."""
    if by in report.group_estimates or not report.basis["model_only"]:
        return
    long = strata.group_estimates(table, report.codebook, report.text_col, report.id_col, by, audit, trust, missing)
    name = sheet_name(f"estimates_by_{by}", report.tables)
    report.group_estimates[by] = (name, long)
    report.notes += [n for n in [strata.fallback_note(long, by)] if n]
    _add(report, name, f"Estimated share per theme by {by}", long, strata.group_estimate_note(by), index=False)


def _add_waves(report: Report, table: pd.DataFrame, wave: str, audit=None, trust: dict | None = None) -> None:
    """Frequencies per wave and, with two waves or more, the tests of change between them.

    With one wave there is nothing to compare: the section is left out (its figures are the report's
    frequencies) and a note says so.
    """
    codebook, text_col = report.codebook, report.text_col
    long = group_frequencies(table, codebook, text_col, wave, include_missing=False)
    report.waves = long
    waves = list(dict.fromkeys(long[wave]))
    missing = int(group_values(table, wave).eq(MISSING_GROUP).sum())
    if missing:
        report.notes.append(f"{missing} respondents with an empty '{wave}' are left out of the wave comparison.")
    if len(waves) < 2:
        report.notes.append(f"Column '{wave}' holds one wave ({waves[0] if waves else 'none'}): the report has "
                            f"no section by {wave} and no change to test.")
        return
    _add_group_estimates(report, table, wave, audit, trust, missing=False)
    _add(report, "waves", f"Themes by {wave}{COUNTED if report.basis['model_only'] else ''}", side_by_side(long, wave),
         f"Per {wave}: respondents with each code, % of answered and 95% Wilson interval.", group_basis(long, wave))
    tests = wave_tests(table, codebook, text_col, wave, report.id_col, audit=audit, trust=trust)
    _add(report, "wave_tests", f"Change between {wave}s", tests, wave_tests_note(tests, wave, len(waves)),
         group_basis(long, wave), index=False)


def _add_quotes(report: Report, table: pd.DataFrame, quotes: int) -> None:
    """Up to ``quotes`` example answers per code, with the wave and ``--by`` groups of each."""
    context = [c for c in (report.wave, *report.by) if c is not None]
    examples = example_quotes(table, report.codebook, report.text_col, report.id_col, n=quotes, context=context)
    counts = examples["coded_by"].value_counts()
    _add(report, "quotes", "Example answers per theme", examples,
         f"Up to {quotes} answers per code, each answer once. Answers coded by a person come first (those with "
         f"fewest other codes, of 8-40 words, first), then answers with model suggestions only, highest score "
         f"first; 'coded by' says which. Non-answers (\"None\", \"n/a\", \"-\", under {MIN_QUOTE_WORDS} words) "
         f"are never quoted, and near-copies (more than {MAX_QUOTE_SIMILARITY:.0%} shared words with a quote "
         f"already chosen) are skipped.",
         f"{len(examples)} quotes: {int(counts.get('person', 0))} coded by a person, "
         f"{int(counts.get('model', 0))} with model suggestions only.", index=False)


def _add_prepost(report: Report, table: pd.DataFrame, prepost) -> None:
    """The paired tests of the pre/post items, and the gains with and without each theme."""
    from opm_nlp.io.tables import answered
    from opm_nlp.report.prepost import prepost_table, rating_scale, theme_gains

    _add(report, "prepost", "Self-ratings before and after", prepost_table(table, prepost, report.source),
         "Per item: respondents with both ratings, means, mean paired difference (after - before), Wilcoxon "
         "signed-rank test (two-sided; p_holm Holm-adjusted over the items) and the matched-pairs rank-biserial "
         "correlation with a 95% percentile bootstrap interval (2000 resamples, fixed seed).",
         f"Ratings are the respondents' own; they do not depend on coding. {len(table)} respondents.")
    report.rating_scale = rating_scale(table, prepost, report.source)
    gains = theme_gains(table, prepost, report.codebook, answered(table[report.text_col]), report.source)
    _add(report, "prepost_by_theme", "Gains with and without each theme", gains,
         "Per item and code: mean gain (after - before) of answered respondents with the code against those "
         "without, Mann-Whitney U test (two-sided); p_holm Holm-adjusted over all rows. Exploratory.",
         index=False)

