"""Audit samples: answers drawn at random and coded blind, to measure the model (never to train it).

A tagged wave's figures carry the model's errors. Coding a small random sample of its answers by hand,
without seeing the model's suggestions, measures those errors where they arise, so a report can give
estimates with intervals that allow for them. The sample must be random (so it stands for the rest),
drawn only from answers nobody has reviewed yet (reviewed answers were picked for their uncertainty and
are known already) and not from answers the model was trained on (where it is right more often), and
coded blind: reviewers who see suggestions tend to accept them.

:func:`draw_audit_sample` draws the sample (simple random, or stratified by a column such as the wave
with proportional allocation) and records its design; :func:`write_audit` writes it as a coding sheet
(XLSX: ``answers``, ``codebook``, ``design``, ``instructions``) or a plain table. Every row carries the
design in the ``audit_sample`` column (:data:`opm_nlp.columns.AUDIT_COL`), so a filled or pulled file
says what it is: ``opm-nlp train`` leaves such rows out.

Examples
--------
>>> sample = draw_audit_sample(tagged, codebook, 150, by="wave", seed=7, source="tagged.csv")  # doctest: +SKIP
>>> sample.description                                                                        # doctest: +SKIP
'simple random sample of 150 of 1,124 answered answers of tagged.csv not yet reviewed; stratified by wave ...'
>>> write_audit(sample, codebook, "audit.xlsx")                                                # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from opm_nlp.codebook.coded import default_columns
from opm_nlp.codebook.codes import Codebook
from opm_nlp.columns import (
    AUDIT_COL,
    EVIDENCE_COL,
    EVIDENCE_SPANS_COL,
    NEEDS_REVIEW_COL,
    REVIEWED_COL,
    REVIEWER_COL,
    SCORE_PREFIX,
    SUGGESTED_COL,
    UNCERTAIN_COL,
    human_coded_mask,
)
from opm_nlp.exceptions import DataError
from opm_nlp.io.responses import check_ids
from opm_nlp.io.tables import answered, require_columns, text_values, write_table
from opm_nlp.model.training_ids import TRAINING_IDS_KEY, trained_on
from opm_nlp.review.common import UNCERTAINTY_COL
from opm_nlp.review.sheet import write_coding_workbook

DESIGN_SHEET = "design"
#: Answers each stratum gets at least (or all it has, if fewer): one answer gives no variance within it.
MIN_PER_STRATUM = 2
#: Strata are waves, roles or sites; more groups than this is almost always the wrong column (ids, free text).
MAX_STRATA = 50
#: Label of the stratum of answers whose --by cell is empty (they are sampled too, never dropped).
BLANK_STRATUM = "(blank)"
_SEED_RANGE = 1_000_000  # a default seed short enough to copy from the terminal

_INSTRUCTIONS = [
    "How to code this audit sample",
    "",
    "These answers were drawn at random from a tagged wave to measure how well the model codes it. They are "
    "coded BLIND: the sheet shows no suggestions, scores or model columns, and you should not look the answers "
    "up in the tagged file, a review sheet or Label Studio. People who see a model's suggestion tend to accept "
    "it, so an audit coded with suggestions in view would measure the model against itself.",
    "",
    "1. On the 'answers' sheet, read each answer and put 1 in every code column that applies (drop-down 0/1). "
    "Leave the others empty or put 0. Hover a code's header for its definition; the 'codebook' sheet has the "
    "include/exclude notes.",
    "2. Put 1 in 'reviewed' on every row you have coded, also when no code applies; add your name or initials "
    "in 'reviewer'.",
    "3. Code every row if you can: the sample stands for the wave only as a whole. Keep the rows, the column "
    "names, the 'answers' sheet first and the 'audit_sample' column (it records the design).",
    "4. The 'design' sheet says how the sample was drawn; keep it with the file.",
    "",
    "An audit measures the model; it is never trained on (opm-nlp train leaves its rows out).",
]


@dataclass(frozen=True, eq=False)
class AuditSample:
    """An audit sample and its design, from :func:`draw_audit_sample`.

    Attributes
    ----------
    frame : DataFrame
        The sample in coding order (random): id, answer, ``reviewed`` and ``reviewer`` (empty), one empty
        column per code id, the stratum column when stratified, and ``audit_sample`` (the design) on
        every row.
    strata : DataFrame
        One row per stratum (one row ``all`` when not stratified): ``eligible`` answers and ``sampled``.
    description : str
        The design in one line, as written in ``audit_sample``.
    design : DataFrame
        ``item`` / ``value`` rows: the design in full (source, counts, seed, date, codebook, model).
    seed : int
        The seed that repeats the draw.
    """

    frame: pd.DataFrame
    strata: pd.DataFrame
    description: str
    design: pd.DataFrame
    seed: int
    id_col: str
    text_col: str
    by: str | None = None


def allocate(sizes: list[int] | np.ndarray, n: int, minimum: int = MIN_PER_STRATUM) -> np.ndarray:
    """Proportional allocation of ``n`` draws to strata of ``sizes``, at least ``minimum`` each where possible.

    Each stratum first gets ``min(minimum, size)``; the quotas ``n * size / sum(sizes)`` then decide the
    rest by largest remainder, never more than a stratum holds (ties go to the earlier stratum).

    Examples
    --------
    >>> allocate([600, 300, 100], 10).tolist()
    [5, 3, 2]
    >>> allocate([50, 50, 1], 5).tolist()
    [2, 2, 1]
    """
    sizes = np.asarray(sizes, dtype=int)
    floor = np.minimum(sizes, minimum)
    if n > sizes.sum() or floor.sum() > n:
        raise ValueError(f"cannot draw {n} from strata of sizes {sizes.tolist()} with at least {minimum} each")
    quota = n * sizes / max(int(sizes.sum()), 1)
    counts = np.clip(np.maximum(floor, np.floor(quota).astype(int)), floor, sizes)
    while counts.sum() < n:  # give the next draw to the stratum furthest below its quota that has room
        room = np.where(counts < sizes, quota - counts, -np.inf)
        counts[int(np.argmax(room))] += 1
    while counts.sum() > n:  # the minimums overshot: take back from the stratum furthest above its quota
        excess = np.where(counts > floor, counts - quota, -np.inf)
        counts[int(np.argmax(excess))] -= 1
    return counts


def _known_mask(frame: pd.DataFrame, codebook: Codebook) -> np.ndarray:
    """Rows whose codes people already gave: reviewed = 1, or every row of a coded table without scores.

    A plain table of answers (no code, score or ``reviewed`` columns) has no human codes yet.
    """
    columns = set(map(str, frame.columns))
    if REVIEWED_COL in columns or columns & set(codebook.ids) or any(c.startswith(SCORE_PREFIX) for c in columns):
        return human_coded_mask(frame)
    return np.zeros(len(frame), dtype=bool)


def read_pool(frame: pd.DataFrame, codebook: Codebook, text_col: str | None, id_col: str | None, source: str):
    """A table of answers to pick from, checked: ``(frame, text_col, id_col, ids, has_text, known)``.

    The columns default as everywhere (:func:`~opm_nlp.codebook.coded.default_columns`), ids must be
    filled and unique, ``has_text`` marks rows with an answer, ``known`` those with an answer that people
    have coded already (:func:`_known_mask`). ``frame`` comes back with a fresh index.
    """
    text_col, id_col = default_columns(frame, codebook, text_col, id_col, source=source)
    require_columns(frame, [id_col, text_col], source, "Pass --id-col and --text-col.")
    frame = frame.reset_index(drop=True)
    ids = text_values(frame[id_col])
    check_ids(ids, id_col, source)
    has_text = answered(frame[text_col])
    return frame, text_col, id_col, ids, has_text, _known_mask(frame, codebook) & has_text


def _check_by(frame: pd.DataFrame, by: str, codebook: Codebook, taken: tuple[str, ...], source: str) -> None:
    """Refuse a --by column that is missing, or is one the sheet already has or that would show suggestions."""
    require_columns(frame, [by], source, "Pass --by with the column to stratify by, e.g. --by wave.")
    model_columns = {SUGGESTED_COL, UNCERTAIN_COL, NEEDS_REVIEW_COL, UNCERTAINTY_COL, EVIDENCE_COL, EVIDENCE_SPANS_COL,
                     *codebook.ids}
    if by in model_columns or by.startswith(SCORE_PREFIX):
        raise DataError(f"{source}: cannot stratify by '{by}': it holds the model's suggestions, which an audit "
                        f"coded blind must not show. Pass --by with a column such as the wave.")
    if by in taken:
        raise DataError(f"{source}: cannot stratify by '{by}': it is the id, answer or a column the audit sheet "
                        f"fills in. Pass --by with a column such as the wave.")


def draw_audit_sample(frame: pd.DataFrame, codebook: Codebook, n: int, *, text_col: str | None = None,
                      id_col: str | None = None, by: str | None = None, seed: int | None = None,
                      metadata: dict | None = None, source: str = "the table",
                      today: dt.date | None = None) -> AuditSample:
    """Draw a random sample of answers to code blind, from those nobody reviewed and the model did not learn.

    Parameters
    ----------
    frame : DataFrame
        A tagged table (from ``opm-nlp tag``), a review file, or any table with ids and answers.
    codebook : Codebook
        Gives the code columns of the sheet (empty, to fill).
    n : int
        Answers to draw.
    text_col, id_col : str, optional
        Answer and id columns; by default the first two, where ``opm-nlp tag`` puts them.
    by : str, optional
        Column to stratify by (e.g. the wave): proportional allocation, at least
        :data:`MIN_PER_STRATUM` per stratum where it has them (:func:`allocate`); empty cells form a
        stratum of their own.
    seed : int, optional
        Seed of the draw; the same seed, table and options draw the same sample. By default a random
        one, recorded in the design.
    metadata : dict, optional
        The model's ``metadata.json``: answers whose ids it was trained on are not drawn
        (:func:`opm_nlp.model.training_ids.trained_on`).
    source : str
        The table's path; its file name goes into the design.
    today : date, optional
        Date of the draw (default: today, UTC).

    Raises
    ------
    DataError
        If ``n`` is larger than the eligible answers, the ids are empty or repeated, or ``by`` is missing,
        holds the model's suggestions, or has more groups than ``n`` can give :data:`MIN_PER_STRATUM`
        each (or more than :data:`MAX_STRATA`).
    """
    frame, text_col, id_col, ids, has_text, known = read_pool(frame, codebook, text_col, id_col, source)
    # Only a model whose folder keeps its training ids can say which answers it saw.
    checks_training = bool(metadata) and TRAINING_IDS_KEY in metadata
    trained = trained_on(metadata, ids) & has_text & ~known if checks_training else np.zeros(len(frame), dtype=bool)
    eligible = has_text & ~known & ~trained
    name = Path(source).name
    counts = (f"{len(frame):,} rows: {int((~has_text).sum()):,} without an answer, {int(known.sum()):,} reviewed "
              f"already" + (f", {int(trained.sum()):,} the model was trained on" if checks_training else ""))
    if n > eligible.sum():
        raise DataError(f"{source}: --n {n} is more than the {int(eligible.sum()):,} answers eligible for an audit "
                        f"(of {counts}). Pass --n {int(eligible.sum())} or less"
                        f"{'' if eligible.any() else ', or draw from a wave nobody has reviewed yet'}.")
    if by is not None:
        _check_by(frame, by, codebook, (id_col, text_col, REVIEWED_COL, REVIEWER_COL, AUDIT_COL), source)
        groups = text_values(frame[by]).replace("", BLANK_STRATUM)
    else:
        groups = pd.Series("all", index=frame.index)
    sizes = groups[eligible].value_counts().sort_index()
    if by is not None and (len(sizes) > MAX_STRATA or np.minimum(sizes, MIN_PER_STRATUM).sum() > n):
        raise DataError(f"{source}: column '{by}' has {len(sizes):,} groups among the eligible answers "
                        f"(e.g. {', '.join(map(repr, sizes.index[:3]))}); a sample of {n} cannot give each at least "
                        f"{MIN_PER_STRATUM}" + (f" (at most {MAX_STRATA} groups)" if len(sizes) > MAX_STRATA else "")
                        + ". Stratify by a column with fewer groups, such as the wave, or pass a larger --n.")
    seed = secrets.randbelow(_SEED_RANGE) if seed is None else int(seed)
    rng = np.random.default_rng(seed)
    allocation = allocate(sizes.to_numpy(), n)
    drawn = []
    for group, take in zip(sizes.index, allocation):
        pool = np.flatnonzero(eligible & (groups == group).to_numpy())
        drawn.extend(rng.choice(pool, size=int(take), replace=False).tolist())
    drawn = rng.permutation(np.array(drawn, dtype=int))  # coding order random, not by stratum
    date = (today or dt.datetime.now(dt.timezone.utc).date()).isoformat()
    scope = "not yet reviewed" + (" nor used to train the model" if checks_training else "")
    description = (f"simple random sample of {n:,} of {int(eligible.sum()):,} answered answers of {name} {scope}"
                   + (f"; stratified by {by} (proportional)" if by is not None else "") + f"; seed {seed}; drawn {date}")
    strata = pd.DataFrame({by or "stratum": sizes.index, "eligible": sizes.to_numpy(), "sampled": allocation})
    sheet = pd.DataFrame({id_col: ids.iloc[drawn].to_numpy(), text_col: frame[text_col].iloc[drawn].to_numpy()})
    sheet[REVIEWED_COL] = None
    sheet[REVIEWER_COL] = None
    for code_id in codebook.ids:
        sheet[code_id] = None
    if by is not None:
        sheet[by] = text_values(frame[by]).iloc[drawn].to_numpy()
    sheet[AUDIT_COL] = description
    design = _design_items(description, name, counts, int(eligible.sum()), n, by, seed, date, codebook, metadata)
    return AuditSample(sheet, strata, description, design, seed, id_col, text_col, by)


def _design_items(description: str, name: str, counts: str, eligible: int, n: int, by: str | None, seed: int,
                  date: str, codebook: Codebook, metadata: dict | None) -> pd.DataFrame:
    """The ``design`` sheet's item/value rows."""
    model = "none given: answers the model was trained on may be in the sample"
    if metadata:
        keeps = TRAINING_IDS_KEY in metadata
        model = (f"trained {metadata.get('created', 'at an unknown time')}; "
                 + ("answers it was trained on were not drawn" if keeps else
                    "its folder keeps no training ids, so answers it was trained on may be in the sample"))
    items = [
        ("design", description),
        ("purpose", "measure the model's suggestions on this wave; coded blind; never trained on"),
        ("source file", name),
        ("source rows", counts),
        ("eligible answers", eligible),
        ("sample size", n),
        ("method", "simple random sample without replacement" + (
            f" within each group of '{by}', proportional allocation, at least {MIN_PER_STRATUM} per group where "
            f"it has them" if by else "")),
        ("seed", seed),
        ("drawn", date),
        ("codebook", f"{codebook.name} (version {codebook.version or '-'}, fingerprint {codebook.fingerprint})"),
        ("model", model),
        ("repeat the draw", "opm-nlp review sample with the same file, --n, --by, --model and --seed "
                            "(the same answers must still be unreviewed)"),
    ]
    return pd.DataFrame(items, columns=["item", "value"]).astype({"value": str})


def write_audit(sample: AuditSample, codebook: Codebook, path: str | Path) -> Path:
    """Write an audit sample atomically: an XLSX coding workbook, or (CSV, Parquet) the ``answers`` table alone.

    The workbook has ``answers`` (0/1 drop-downs, code definitions on the headers, no suggestions),
    ``codebook``, ``design`` (its items, then the strata) and ``instructions`` (code blind, and why).
    A plain table keeps the design in its ``audit_sample`` column.
    """
    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        return write_table(sample.frame, path)
    return write_coding_workbook(
        sample.frame, codebook, path, _INSTRUCTIONS, what="audit sheet",
        reviewed_comment="Put 1 when you have coded this row, also when no code applies. Only rows with 1 count "
                         "in the audit.",
        extra_sheets={DESIGN_SHEET: [sample.design, sample.strata]})
