"""Which answers to code next: the uncoded answers whose codes would teach the model most.

A team that codes whatever comes first in the file spends much of its effort on answers the model
already codes well, and little on the rare codes it cannot learn yet. :func:`pick_next_batch` picks,
from answers nobody has coded, ``n`` that are

- *uncertain*: some code's decision is a close call under the model's decision rule
  (:func:`informativeness`), weighted towards codes with few coded examples (:func:`rarity_weights`),
  so rare codes come first;
- *spread out*: drawn k-means++-style among the most uncertain answers (:func:`spread_pick`): each next
  answer is drawn with probability proportional to its uncertainty times the squared distance of its
  embedding to the answers already picked or coded, so a batch is not ten versions of one answer.

Without a model (the first batch of a new codebook) :func:`cold_start_pick` takes, for each code, the
answer nearest its label, definition and examples, then spreads the rest over the answers.

Answers already coded are never picked: those the model was trained on (its folder's salted
training-id hashes, :mod:`opm_nlp.model.training_ids`), those in the ``coded`` tables, rows of the pool
marked reviewed, and audit answers (``audit_sample``), which measure the model and must never train
it. The draw is repeatable with its ``seed``.

Examples
--------
>>> batch = pick_next_batch(pool, codebook, 100, model=model, seed=3, source="wave.csv")  # doctest: +SKIP
>>> write_next_batch(batch, codebook, "next.xlsx")                                      # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from opm_nlp.classify.decision import DecisionRule
from opm_nlp.codebook.codes import Codebook
from opm_nlp.columns import AUDIT_COL, REVIEWED_COL, REVIEWER_COL
from opm_nlp.exceptions import DataError
from opm_nlp.io.tables import require_columns, text_values, write_table
from opm_nlp.model.training_ids import TRAINING_IDS_KEY, trained_on
from opm_nlp.review.audit import read_pool
from opm_nlp.review.common import code_closeness, decision_rule_of, model_version
from opm_nlp.review.sheet import review_frame, write_coding_workbook

BATCH_SHEET = "batch"
#: The batch is drawn among this many times ``n`` of the most uncertain answers.
CANDIDATES_PER_PICK = 5
_SEED_RANGE = 1_000_000

_INSTRUCTIONS = [
    "How to code this batch",
    "",
    "These answers were picked as the ones whose codes would teach the model most: answers it is unsure "
    "about, rare codes first, spread over what people wrote. They are listed in the order picked.",
    "",
    "1. On the 'answers' sheet, read each answer and put 1 in every code column that applies (drop-down 0/1). "
    "Hover a code's header for its definition; the 'codebook' sheet has the include/exclude notes.",
    "2. Put 1 in 'reviewed' on every row you have coded, also when no code applies; add your name or initials "
    "in 'reviewer'.",
    "3. The 'batch' sheet says how the answers were picked.",
    "",
    "Then train on it with the answers coded before: opm-nlp train ... --data coded.csv --data next.xlsx",
]
_SUGGESTED = ("The code columns hold the model's suggestion (1 = it applies): correct them so they are your "
              "coding. People who see a suggestion tend to accept it; code blind (without --with-suggestions) "
              "where you can.")


@dataclass(frozen=True, eq=False)
class NextBatch:
    """A batch of answers to code next, from :func:`pick_next_batch`.

    Attributes
    ----------
    frame : DataFrame
        The sheet, in the order picked: id, answer, ``reviewed``, ``reviewer``, one column per code id
        (empty, or the model's suggestion with ``with_suggestions``, then its scores).
    description : str
        How the batch was picked, in one line.
    design : DataFrame
        ``item`` / ``value`` rows: source, counts, method, seed, codebook, model.
    seed : int
    excluded : dict
        Answers left out, by reason: ``empty``, ``coded`` (reviewed rows of the pool and ids in the coded
        tables), ``trained`` (the model's training ids), ``audit``.
    """

    frame: pd.DataFrame
    description: str
    design: pd.DataFrame
    seed: int
    id_col: str
    text_col: str
    with_suggestions: bool
    excluded: dict


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (cosine similarity is then a dot product)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def rarity_weights(positives: np.ndarray) -> np.ndarray:
    """Weight of each code, 1 for the rarest and less the more coded examples it has: ``1/sqrt(1 + p)``, scaled.

    Examples
    --------
    >>> rarity_weights(np.array([0, 3, 99])).round(2).tolist()
    [1.0, 0.5, 0.1]
    """
    raw = 1.0 / np.sqrt(1.0 + np.maximum(np.asarray(positives, dtype=float), 0.0))
    return raw / raw.max() if raw.size else raw


def informativeness(scores: np.ndarray, rule: DecisionRule | np.ndarray, positives: np.ndarray) -> np.ndarray:
    """How much coding each answer would teach the model, 0 to 1: the largest over codes of the code's
    closeness to flipping its decision under the model's rule (:func:`opm_nlp.review.common.code_closeness`:
    1 on its threshold, or wherever a cap or "at least one" makes the decision a close call; 0 at 0 or 1)
    times its :func:`rarity_weights`. ``rule`` is the model's :class:`DecisionRule` or per-code thresholds."""
    scores = np.nan_to_num(np.asarray(scores, dtype=float), nan=0.0)
    if not isinstance(rule, DecisionRule):
        rule = DecisionRule(np.asarray(rule, dtype=float))
    # a code never suggested has a threshold above 1: measured from 1, the highest score it could get
    rule = replace(rule, thresholds=np.minimum(np.asarray(rule.thresholds, dtype=float), 1.0))
    if scores.shape[1] == 0:
        return np.ones(len(scores))
    return (code_closeness(scores, rule) * rarity_weights(positives)).max(axis=1)


def _nearest_distance(vectors: np.ndarray, anchors: np.ndarray | None) -> np.ndarray:
    """Cosine distance of each (unit) row of ``vectors`` to its nearest row of ``anchors`` (1 with none)."""
    distance = np.ones(len(vectors))
    if anchors is None or not len(anchors):
        return distance
    for start in range(0, len(anchors), 2048):
        similarity = vectors @ anchors[start:start + 2048].T
        distance = np.minimum(distance, 1.0 - similarity.max(axis=1))
    return np.clip(distance, 0.0, 2.0)


def spread_pick(vectors: np.ndarray, weights: np.ndarray, n: int, rng: np.random.Generator,
                anchors: np.ndarray | None = None, candidates: int | None = None) -> np.ndarray:
    """Draw ``n`` rows, k-means++-style: each with probability ∝ its weight × squared distance to the nearest
    row drawn before or anchor.

    Parameters
    ----------
    vectors : ndarray of shape (n_rows, dim)
        Unit embeddings of the rows to draw from.
    weights : ndarray of shape (n_rows,)
        Non-negative; only the ``candidates`` rows of largest weight are drawn from (all by default).
    n : int
    rng : Generator
    anchors : ndarray of shape (n_anchors, dim), optional
        Unit embeddings of answers coded already: rows near them are drawn less.
    candidates : int, optional

    Returns
    -------
    ndarray of int
        Row indices in the order drawn.
    """
    weights = np.clip(np.asarray(weights, dtype=float), 0.0, None)
    n = min(int(n), len(vectors))
    size = len(vectors) if candidates is None else max(n, min(int(candidates), len(vectors)))
    pool = np.argsort(-weights, kind="stable")[:size]
    pool_vectors, pool_weights = vectors[pool], weights[pool] + 1e-9
    distance = _nearest_distance(pool_vectors, anchors)
    open_ = np.ones(len(pool), dtype=bool)
    picked = []
    for _ in range(n):
        mass = np.where(open_, pool_weights * distance ** 2, 0.0)
        if mass.sum() <= 0:  # every open row sits on one drawn already: draw evenly among them
            mass = open_.astype(float)
        choice = int(rng.choice(len(pool), p=mass / mass.sum()))
        picked.append(choice)
        open_[choice] = False
        distance = np.minimum(distance, np.clip(1.0 - pool_vectors @ pool_vectors[choice], 0.0, 2.0))
    return pool[np.asarray(picked, dtype=int)]


def cold_start_pick(vectors: np.ndarray, code_vectors: np.ndarray, n: int, rng: np.random.Generator,
                    anchors: np.ndarray | None = None) -> np.ndarray:
    """A first batch without a model: for each code (in random order) the answer nearest its description,
    up to half the batch, then the rest spread over the answers (:func:`spread_pick`, equal weights)."""
    n = min(int(n), len(vectors))
    picked: list[int] = []
    similarity = vectors @ code_vectors.T if len(code_vectors) else np.zeros((len(vectors), 0))
    for j in rng.permutation(similarity.shape[1])[: (n + 1) // 2]:
        column = np.where(np.isin(np.arange(len(vectors)), picked), -np.inf, similarity[:, j])
        picked.append(int(np.argmax(column)))
    rest = np.setdiff1d(np.arange(len(vectors)), picked)
    known = vectors[picked] if anchors is None else np.vstack([anchors, vectors[picked]])
    more = spread_pick(vectors[rest], np.ones(len(rest)), n - len(picked), rng, anchors=known)
    return np.concatenate([np.asarray(picked, dtype=int), rest[more]]).astype(int)


def code_vectors(codebook: Codebook, embed) -> np.ndarray:
    """One unit vector per code: the mean embedding of its label with definition and of its examples."""
    pairs = codebook.examples()
    vectors = unit_rows(embed([text for text, _ in pairs]))
    owners = np.array([code_id for _, code_id in pairs])
    return unit_rows(np.vstack([vectors[owners == c].mean(axis=0) for c in codebook.ids]))


def _coded_ids(coded: list[tuple[pd.DataFrame, str]], id_col: str, text_col: str) -> tuple[set[str], list[str]]:
    """Ids and answers of the coded tables (each needs the pool's id column)."""
    ids: set[str] = set()
    texts: list[str] = []
    for frame, source in coded:
        require_columns(frame, [id_col], source, f"A --coded file needs the pool's id column '{id_col}'.")
        ids |= set(text_values(frame[id_col]))
        if text_col in frame.columns:
            texts += [t for t in text_values(frame[text_col]) if t]
    return ids, texts


def pick_next_batch(pool: pd.DataFrame, codebook: Codebook, n: int, *, model=None, embedder=None,
                    coded: list[tuple[pd.DataFrame, str]] = (), text_col: str | None = None,
                    id_col: str | None = None, seed: int | None = None, with_suggestions: bool = False,
                    source: str = "the answers", today: dt.date | None = None) -> NextBatch:
    """Pick the ``n`` uncoded answers of ``pool`` whose coding would most improve the model.

    Parameters
    ----------
    pool : DataFrame
        Answers with ids: a wave to tag, a tagged or reviewed table (reviewed rows count as coded).
    codebook : Codebook
    n : int
    model : CodingModel, optional
        A trained embedding model; without one the batch covers the codebook's definitions and the space
        of answers (:func:`cold_start_pick`).
    embedder : object with ``encode(texts)``, optional
        Embeds answers without a model (default: the packaged embedding model).
    coded : list of (DataFrame, str)
        Tables of answers coded already, with their paths; their ids are not picked and their answers
        count as covered.
    text_col, id_col : str, optional
        Default: the pool's first two columns.
    seed : int, optional
        The same seed, pool and model pick the same answers; default a random one.
    with_suggestions : bool
        Pre-fill the model's suggestion (a review sheet) instead of empty code columns (coded blind).

    Raises
    ------
    DataError
        If ``n`` is more than the answers nobody has coded, ids are empty or repeated, a coded table lacks
        the id column, or ``with_suggestions`` is asked without a model.
    """
    if model is not None and getattr(model, "method", "embedding") != "embedding":
        raise DataError("review next needs an embedding model (a keyword model learns nothing from coded answers); "
                        "pass no model (--codebook) to pick a first batch.")
    if with_suggestions and model is None:
        raise DataError("--with-suggestions pre-fills the model's codes, so it needs --model MODEL_DIR; without a "
                        "model the batch is coded blind.")
    pool, text_col, id_col, ids, has_text, known = read_pool(pool, codebook, text_col, id_col, source)
    texts = text_values(pool[text_col])
    metadata = getattr(model, "metadata", None) or {}
    coded_ids, coded_texts = _coded_ids(list(coded), id_col, text_col)
    audit = (text_values(pool[AUDIT_COL]) != "").to_numpy() if AUDIT_COL in pool.columns else np.zeros(len(pool), bool)
    known = (known | ids.isin(coded_ids).to_numpy()) & has_text & ~audit
    trained = trained_on(metadata, ids) & has_text & ~known & ~audit
    eligible = has_text & ~known & ~trained & ~audit
    excluded = {"empty": int((~has_text).sum()), "coded": int(known.sum()), "trained": int(trained.sum()),
                "audit": int((audit & has_text).sum())}
    counts = (f"{len(pool):,} rows: {excluded['empty']:,} without an answer, {excluded['coded']:,} coded already"
              + (f", {excluded['trained']:,} the model was trained on" if TRAINING_IDS_KEY in metadata else "")
              + (f", {excluded['audit']:,} in an audit sample" if excluded["audit"] else ""))
    if n > eligible.sum():
        raise DataError(f"{source}: --n {n} is more than the {int(eligible.sum()):,} answers nobody has coded (of "
                        f"{counts}). Pass --n {int(eligible.sum())} or less"
                        f"{'' if eligible.any() else ', or pick from a wave not coded yet'}.")
    seed = secrets.randbelow(_SEED_RANGE) if seed is None else int(seed)
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(eligible)
    embed = (model.embedder.encode if model is not None else (embedder or _default_embedder()).encode)
    vectors = unit_rows(embed(texts.iloc[rows].tolist()))
    anchors = unit_rows(embed(coded_texts)) if coded_texts else None
    if model is None:
        order = rows[cold_start_pick(vectors, code_vectors(codebook, embed), n, rng, anchors)]
        method = ("no model yet: for each code the answer nearest its label, definition and examples (up to half "
                  "the batch), the rest spread over the answers (k-means++ draw)")
        scores = None
    else:
        contexts = None if not model.context_col else text_values(pool[model.context_col]).iloc[rows].tolist()
        scores = model.predict_proba(texts.iloc[rows].tolist(), contexts)
        positives = np.array([(metadata.get("training") or {}).get("positives", {}).get(c, 0) for c in codebook.ids])
        weights = informativeness(scores, model.decision, positives)
        picked = spread_pick(vectors, weights, n, rng, anchors, candidates=CANDIDATES_PER_PICK * n)
        order, scores = rows[picked], scores[picked]
        method = (f"among the {min(CANDIDATES_PER_PICK * n, len(rows)):,} answers whose scores lie nearest a change "
                  f"of a code's decision (codes with fewer coded answers weighted more), a k-means++ draw weighted by that "
                  f"uncertainty and the distance to answers picked or coded already")
    date = (today or dt.datetime.now(dt.timezone.utc).date()).isoformat()
    name = Path(source).name
    shown = "with the model's suggestions" if with_suggestions else "blind"
    description = (f"{n:,} of {int(eligible.sum()):,} answers of {name} nobody has coded, picked to teach the model "
                   f"most; {shown}; seed {seed}; picked {date}")
    frame = _sheet(pool.iloc[order], scores, codebook, model, text_col, id_col, with_suggestions)
    design = _design(description, name, counts, int(eligible.sum()), n, method, seed, date, codebook, metadata)
    return NextBatch(frame, description, design, seed, id_col, text_col, with_suggestions, excluded)


def _default_embedder():
    from opm_nlp.embedding.encoder import Embedder

    return Embedder()


def _sheet(picked: pd.DataFrame, scores, codebook: Codebook, model, text_col: str, id_col: str,
           with_suggestions: bool) -> pd.DataFrame:
    """The answers sheet in the order picked: blind (empty codes), or the review sheet's columns."""
    picked = picked[[id_col, text_col]].reset_index(drop=True)
    if not with_suggestions:
        sheet = pd.DataFrame({id_col: text_values(picked[id_col]).to_numpy(), text_col: picked[text_col].to_numpy()})
        sheet[REVIEWED_COL] = None
        sheet[REVIEWER_COL] = None
        for code_id in codebook.ids:
            sheet[code_id] = None
        return sheet
    tagged = model.tag(picked, text_col, id_col, carry=[])
    frame = review_frame(tagged, scores, codebook, text_col, id_col, model_version(codebook, model.metadata),
                         decision_rule_of(codebook, model.metadata))
    position = {rid: i for i, rid in enumerate(text_values(picked[id_col]))}
    return frame.iloc[np.argsort(text_values(frame[id_col]).map(position).to_numpy(), kind="stable")].reset_index(drop=True)


def _design(description: str, name: str, counts: str, eligible: int, n: int, method: str, seed: int, date: str,
            codebook: Codebook, metadata: dict) -> pd.DataFrame:
    """The ``batch`` sheet's item/value rows."""
    model = "none: a first batch for a new codebook"
    if metadata:
        model = (f"trained {metadata.get('created', 'at an unknown time')} on "
                 f"{(metadata.get('training') or {}).get('answers', 'an unknown number of')} answers; "
                 + ("answers it was trained on were not picked" if TRAINING_IDS_KEY in metadata else
                    "its folder keeps no training ids: pass the coded files with --coded so they are not picked"))
    items = [("batch", description), ("purpose", "answers to code next, to train the model"),
             ("source file", name), ("source rows", counts), ("answers nobody has coded", eligible),
             ("batch size", n), ("method", method), ("seed", seed), ("picked", date),
             ("codebook", f"{codebook.name} (version {codebook.version or '-'}, fingerprint {codebook.fingerprint})"),
             ("model", model),
             ("repeat the pick", "opm-nlp review next with the same file, --n, --model or --codebook, --coded and "
                                 "--seed")]
    return pd.DataFrame(items, columns=["item", "value"]).astype({"value": str})


def write_next_batch(batch: NextBatch, codebook: Codebook, path: str | Path) -> Path:
    """Write a batch atomically: an XLSX coding workbook (``answers``, ``codebook``, ``batch``,
    ``instructions``; the sheet writer of review and audit sheets), or (CSV, Parquet) the answers alone."""
    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        return write_table(batch.frame, path, answer_col=batch.text_col)
    instructions = list(_INSTRUCTIONS)
    if batch.with_suggestions:
        instructions.insert(4, _SUGGESTED)
    return write_coding_workbook(
        batch.frame, codebook, path, instructions, what="batch sheet",
        reviewed_comment="Put 1 when you have coded this row, also when no code applies. Only rows with 1 are "
                         "used for training.",
        extra_sheets={BATCH_SHEET: [batch.design]})
