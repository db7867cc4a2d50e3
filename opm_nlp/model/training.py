"""Training a model from files of coded answers, as ``opm-nlp train`` does.

:func:`read_training_data` reads each coded file (any of the coded formats), leaves out rows of a
review file that nobody marked reviewed, and combines the files (for a response id in several, the
later file's codes win); :func:`train_model` trains a :class:`~opm_nlp.model.coding_model.CodingModel`
on the result with the settings of a :class:`~opm_nlp.model.options.TrainOptions`.

Examples
--------
>>> from opm_nlp import TrainOptions, load_codebook, read_training_data, train_model
>>> codebook = load_codebook("codebook/opm_behavior_change.yaml")                          # doctest: +SKIP
>>> data = read_training_data(["coded.csv", "review.xlsx"], codebook, "answer", "response_id")  # doctest: +SKIP
>>> print(*data.notes, sep="\\n")                                                          # doctest: +SKIP
>>> train_model(codebook, data, TrainOptions(review_margin=0.2)).save("models/mine")       # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from opm_nlp.codebook.codes import Codebook
from opm_nlp.columns import AUDIT_COL
from opm_nlp.exceptions import DataError
from opm_nlp.codebook.coded import combine_coded, read_coded
from opm_nlp.io.tables import answered, text_values
from opm_nlp.model.coding_model import CodingModel
from opm_nlp.model.options import TrainOptions
from opm_nlp.model.reviewed import keep_reviewed
from opm_nlp.model.training_ids import TRAINING_IDS_KEY, training_ids_record

#: The model folder's metadata key for the stopping forecast (:func:`_forecast`).
FORECAST_KEY = "forecast"


@dataclass(frozen=True, eq=False)
class TrainingData:
    """Coded answers to train on, and what reading them found.

    Attributes
    ----------
    coded : DataFrame or None
        Wide coded table (one 0/1 column per code id), one row per response id; ``None`` when there
        are no files (a model from the codebook alone).
    text_col : str
        Answer text column.
    id_col : str or None
        Response id column.
    sources : tuple of str
        Names of the files read, in order.
    changed_labels : int
        (response, code) labels a later file changed.
    added_answers : int
        Answers a later file added (response ids no earlier file had).
    recoded_answers : int
        Answers a later file coded again (its codes replace the earlier file's, changed or not).
    notes : tuple of str
        One line per file that had rows nobody marked reviewed, or rows of an audit sample (both left
        out), for the user.
    """

    coded: pd.DataFrame | None
    text_col: str = "text"
    id_col: str | None = None
    sources: tuple[str, ...] = ()
    changed_labels: int = 0
    notes: tuple[str, ...] = ()
    added_answers: int = 0
    recoded_answers: int = 0

    @property
    def answers(self) -> int:
        """Coded answers with text (the ones training learns from)."""
        return 0 if self.coded is None else int(answered(self.coded[self.text_col]).sum())


def unreviewed_note(path: str | Path, left_out: int, edited: int) -> str:
    """The line telling the user that rows of ``path`` not marked reviewed were left out."""
    note = (f"{path}: left out {left_out} answers not marked reviewed=1 (they hold model suggestions, "
            f"not human codes)")
    if edited:
        note += f"; {edited} of them have codes changed from the suggestion: mark them reviewed=1 if they are done"
    return note + "."


def audit_note(path: str | Path, left_out: int) -> str:
    """The line telling the user that rows of an audit sample in ``path`` were left out of training."""
    return (f"{path}: left out {left_out} answers of an audit sample (marked in '{AUDIT_COL}'): an audit "
            f"measures the model, so it is never trained on.")


def leave_out_audit(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Drop the rows of an audit sample (a non-empty ``audit_sample`` cell) from a coded table.

    An audit sample is drawn at random and coded blind to measure a model (``opm-nlp review sample``);
    trained on, it would measure the model on answers it has seen. Returns the other rows and how many
    were dropped; a table without the column is returned unchanged.
    """
    if AUDIT_COL not in frame.columns:
        return frame, 0
    audit = text_values(frame[AUDIT_COL]).ne("").to_numpy()
    return frame[~audit].reset_index(drop=True), int(audit.sum())


def read_human_coded(path: str | Path, codebook: Codebook, text_col: str, id_col: str, encoding: str | None = None,
                     format: str = "auto", code_col: str | None = None,
                     sheet: str | None = None) -> tuple[pd.DataFrame, str | None]:
    """One file of coded answers with only the rows people coded or reviewed.

    Parameters are those of :func:`~opm_nlp.codebook.coded.read_coded`. In a review file (with a
    ``reviewed`` column), rows not marked reviewed hold the model's suggestion and are left out
    (:func:`~opm_nlp.model.reviewed.keep_reviewed`).

    Returns
    -------
    coded : DataFrame
        The wide coded table.
    note : str or None
        :func:`unreviewed_note` when rows were left out.

    Raises
    ------
    DataError
        If the file holds no coded answer with text (e.g. a review sheet with no row marked reviewed=1).
    """
    frame, left_out, edited, _ = _read_reviewed(path, codebook, text_col, id_col, encoding, format, code_col, sheet)
    if not answered(frame[text_col]).any():
        raise DataError(_no_coded_answers([path], [frame], [left_out], text_col, "to compare with"))
    return frame, unreviewed_note(path, left_out, edited) if left_out else None


def _read_reviewed(path: str | Path, codebook: Codebook, text_col: str, id_col: str, encoding: str | None,
                   format: str, code_col: str | None, sheet: str | None, drop_audit: bool = False
                   ) -> tuple[pd.DataFrame, int, int, int]:
    """A coded file's reviewed rows, the rows left out and, of those, the edited ones (:func:`keep_reviewed`),
    and the audit rows left out before that (with ``drop_audit``, :func:`leave_out_audit`)."""
    frame = read_coded(path, codebook, text_col, id_col, encoding=encoding, format=format, code_col=code_col,
                       sheet=sheet)
    frame, audit = leave_out_audit(frame) if drop_audit else (frame, 0)
    return (*keep_reviewed(frame, codebook, str(path)), audit)


def read_training_data(paths: Sequence[str | Path], codebook: Codebook, text_col: str | None = None,
                       id_col: str | None = None, encoding: str | None = None, format: str = "auto",
                       code_col: str | None = None, sheet: str | None = None) -> TrainingData:
    """Read and combine files of coded answers for training.

    Parameters
    ----------
    paths : sequence of str or Path
        Coded files (CSV/XLSX/Parquet), in order: for a response id in several files, the later
        file's codes win. Empty: no coded answers (train from the codebook alone).
    codebook : Codebook
        Codes the files' labels must come from.
    text_col, id_col : str
        Answer text and response id columns; required with ``paths``.
    encoding, format, code_col, sheet
        As for :func:`~opm_nlp.codebook.coded.read_coded`.

    Returns
    -------
    TrainingData

    Raises
    ------
    DataError
        If ``paths`` are given without ``text_col`` and ``id_col``, a file cannot be read, or the files
        hold no coded answer with text (e.g. a review sheet with no row marked reviewed=1).
    """
    if not paths:
        return TrainingData(None, text_col or "text", id_col)
    if text_col is None or id_col is None:
        raise DataError("The text and id columns are needed to read coded answers (--text-col, --id-col).")
    frames, notes, left_out, audits = [], [], [], []
    for path in paths:
        frame, dropped, edited, audit = _read_reviewed(path, codebook, text_col, id_col, encoding, format, code_col,
                                                       sheet, drop_audit=True)
        frames.append(frame)
        left_out.append(dropped)
        audits.append(audit)
        if audit:
            notes.append(audit_note(path, audit))
        if dropped:
            notes.append(unreviewed_note(path, dropped, edited))
    if not any(answered(frame[text_col]).any() for frame in frames):
        raise DataError(_no_coded_answers(paths, frames, left_out, text_col, "to train on", audits))
    coded, changed = combine_coded(frames, codebook, id_col)
    seen, added, recoded = set(frames[0][id_col]), 0, 0
    for frame in frames[1:]:
        ids = set(frame[id_col])
        added, recoded, seen = added + len(ids - seen), recoded + len(ids & seen), seen | ids
    return TrainingData(coded, text_col, id_col, tuple(Path(p).name for p in paths), changed, tuple(notes),
                        added, recoded)


def _no_coded_answers(paths: Sequence[str | Path], frames: list[pd.DataFrame], left_out: list[int],
                      text_col: str, purpose: str, audits: Sequence[int] | None = None) -> str:
    """Why files of coded answers hold none (``purpose``: 'to train on'), file by file, and what to do."""
    reasons, fixes = [], []
    for path, frame, dropped, audit in zip(paths, frames, left_out, audits or [0] * len(paths)):
        if audit and not dropped and not len(frame):
            reasons.append(f"{path}: all its {audit} rows are an audit sample (marked in '{AUDIT_COL}'), which "
                           f"measures the model and is never trained on")
            fixes.append("measure the model with it (opm-nlp evaluate MODEL --data AUDIT) and train on other "
                         "coded answers")
        elif dropped and not len(frame):
            reasons.append(f"{path}: none of its {dropped} rows is marked reviewed=1")
            fixes.append("put 1 in 'reviewed' for the rows people have checked")
        elif len(frame):
            reasons.append(f"{path}: all {len(frame)} answers in '{text_col}' are empty")
            fixes.append(f"check that '{text_col}' is the column of answers (--text-col)")
        else:
            reasons.append(f"{path}: no rows")
    fixes = list(dict.fromkeys(fixes))
    if purpose == "to train on":
        fixes.append("leave out --data to train from the codebook alone")
    fix = ", or ".join(fixes) or "pass a file of coded answers"
    return f"No coded answers {purpose} ({'; '.join(reasons)}). {fix[0].upper()}{fix[1:]}."


def train_model(codebook: Codebook, data: TrainingData, options: TrainOptions | None = None, *,
                progress: bool = False, model: CodingModel | None = None) -> CodingModel:
    """Train a model on ``data`` with the settings of ``options``.

    Parameters
    ----------
    codebook : Codebook
        The codes to suggest.
    data : TrainingData
        From :func:`read_training_data`; without coded answers the model learns from the codebook alone.
    options : TrainOptions, optional
        Method, embedding model, context column, review margin... (default: ``TrainOptions()``).
    progress : bool
        Show progress bars of the slow steps on stderr.
    model : CodingModel, optional
        The model already built from ``codebook`` and ``options`` (:meth:`CodingModel.from_options`), e.g. to
        ask :meth:`~CodingModel.fine_tune_epochs` before the slow part.

    Returns
    -------
    CodingModel
        The fitted model (not saved: call its ``save``). Its metadata keeps salted hashes of the response
        ids of the answers it learned from (``training_ids``, :mod:`opm_nlp.model.training_ids`), so that
        an audit sample can be drawn from answers it has not seen.
    """
    options = TrainOptions() if options is None else options
    if model is None:
        model = CodingModel.from_options(codebook, options)
    start = time.perf_counter()
    model.fit(data.coded, data.text_col, sources=list(data.sources), context_col=options.context_col,
              progress=progress)
    seconds = time.perf_counter() - start
    learned = [] if data.coded is None or data.id_col is None else \
        data.coded.loc[answered(data.coded[data.text_col]), data.id_col].tolist()
    model.metadata[TRAINING_IDS_KEY] = training_ids_record(learned)
    if model.method == "embedding" and data.coded is not None:
        model.metadata[FORECAST_KEY] = {**_forecast(model, data, options), "training_seconds": round(seconds, 2)}
    return model


def _forecast(model: CodingModel, data: TrainingData, options: TrainOptions) -> dict:
    """What more coded answers are likely to add (:mod:`opm_nlp.classify.forecast`), for the model folder."""
    from opm_nlp.classify.estimator import MIN_POSITIVES
    from opm_nlp.classify.forecast import forecast_for

    usable = answered(text_values(data.coded[data.text_col]))
    coded = data.coded.loc[usable]
    contexts = None if options.context_col is None else coded[options.context_col].astype(str).tolist()
    examples = model._examples()
    return forecast_for(model.classifier, text_values(coded[data.text_col]).tolist(),
                        coded[model.codebook.ids].to_numpy(dtype=int), model.codebook.ids, contexts,
                        examples, MIN_POSITIVES)
