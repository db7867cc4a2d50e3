"""The settings of a training run and of a tagging run, each one frozen object.

The command line builds them once from its options (``opm-nlp train``, ``opm-nlp tag``); the library
passes them on unchanged, down to the Dask workers. A Python user can build them the same way.

Examples
--------
>>> from opm_nlp.model.options import TagOptions
>>> options = TagOptions("answer", "response_id", chunk_size=500)
>>> options.record()["chunk_size"]
500
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from opm_nlp.embedding.encoder import DEFAULT_BACKEND
from opm_nlp.exceptions import DataError

#: How chunks are tagged: in this process, or as partitions on a Dask cluster.
ENGINES = ("local", "dask")
#: Marks an option of how a run goes that leaves its output unchanged: not in the resume record.
_RUN_ONLY = {"recorded": False}


@dataclass(frozen=True)
class TagOptions:
    """How to tag a file of answers (:func:`~opm_nlp.model.batch.tag_file`).

    Parameters
    ----------
    text_col, id_col : str
        Answer text and response id columns.
    encoding : str, optional
        Text encoding of CSV input (default: detect UTF-8, UTF-8 with BOM, cp1252).
    sheet : str, optional
        Worksheet of XLSX input (default: the first).
    carry : sequence of str, optional
        Columns to copy to the output (default: all other columns); kept as a tuple.
    chunk_size : int
        Answers per chunk (the unit of progress, memory and resumption).
    engine : {'local', 'dask'}
        Tag chunks in this process, or as partitions on a Dask cluster.
    review_margin : float, optional
        Flag an answer for review when a code's score is this close to its threshold (default: the
        margin the model was trained with).
    backend : {'torch', 'onnx', 'onnx-int8'}, optional
        Embedding backend (default: the one the model was trained with).
    cache : bool
        Use the on-disk embedding cache.
    scheduler : str, optional
        Address of a running Dask scheduler (``engine='dask'``); default a local cluster.
    progress : bool
        Show a progress bar on stderr.

    Raises
    ------
    DataError
        If ``engine``, ``chunk_size`` or ``review_margin`` is out of range.

    Notes
    -----
    The options that shape the output are the resume record of an interrupted run (:meth:`record`);
    ``cache``, ``scheduler`` and ``progress`` only change how the run goes, so a resumed run may change them.
    """

    text_col: str
    id_col: str
    encoding: str | None = None
    sheet: str | None = None
    carry: tuple[str, ...] | None = None
    chunk_size: int = 2000
    engine: str = "local"
    review_margin: float | None = None
    backend: str | None = None
    cache: bool = field(default=True, metadata=_RUN_ONLY)
    scheduler: str | None = field(default=None, metadata=_RUN_ONLY)
    progress: bool = field(default=True, metadata=_RUN_ONLY)

    def __post_init__(self):
        if self.carry is not None:
            object.__setattr__(self, "carry", tuple(self.carry))
        if self.engine not in ENGINES:
            raise DataError(f"Unknown engine '{self.engine}'. Use one of {list(ENGINES)}.")
        if self.chunk_size < 1:
            raise DataError(f"--chunk-size must be at least 1; got {self.chunk_size}.")
        if self.review_margin is not None and not 0 <= self.review_margin <= 1:
            raise DataError(f"--review-margin must be between 0 and 1; got {self.review_margin}.")

    def record(self) -> dict:
        """The options that shape the output, JSON-ready: what an interrupted run's record keeps.

        A run is resumed only when these equal the recorded ones.
        """
        recorded = {f.name for f in fields(self) if f.metadata.get("recorded", True)}
        return {name: list(value) if isinstance(value, tuple) else value
                for name, value in asdict(self).items() if name in recorded}

    @classmethod
    def from_record(cls, record: dict, **run) -> TagOptions:
        """Options from a :meth:`record` (other keys ignored), with ``run`` settings (``cache``, ...)."""
        names = {f.name for f in fields(cls) if f.metadata.get("recorded", True)}
        return cls(**{name: record[name] for name in names if name in record}, **run)


@dataclass(frozen=True)
class TrainOptions:
    """How to train a model (:func:`~opm_nlp.model.training.train_model`).

    Parameters
    ----------
    method : {'embedding', 'keyword'}
        ``embedding`` learns from coded answers; ``keyword`` is the codebook's stem-word query.
    embedding_model : str, optional
        sentence-transformers model folder or name; default the packaged all-MiniLM-L6-v2.
    embedding_layers : int, optional
        Describe answers by the embedding model's last this-many layers (default three where the
        model allows, else one).
    context_col : str, optional
        Column saying what each answer responds to (e.g. the survey question); tagging then needs it.
    review_margin : float
        Tagging flags an answer for review when a code's score is this close to its threshold.
    codebook_examples : bool
        Also learn from the codebook's examples and definitions.
    fine_tune : int, optional
        Epochs of fine-tuning the embedding network; ``None``: two from 1,000 coded answers, else 0.
    sentences : bool
        Also score each sentence of an answer of several sentences.
    backend : {'onnx-int8', 'onnx', 'torch'}
        How the embedding network runs.
    cache : bool
        Use the on-disk embedding cache.

    See Also
    --------
    opm_nlp.model.coding_model.CodingModel : what each option does, in detail.
    """

    method: str = "embedding"
    embedding_model: str | None = None
    embedding_layers: int | None = None
    context_col: str | None = None
    review_margin: float = 0.15
    codebook_examples: bool = True
    fine_tune: int | None = None
    sentences: bool = True
    backend: str = DEFAULT_BACKEND
    cache: bool = True

    def model_kwargs(self) -> dict:
        """The keyword arguments of :class:`~opm_nlp.model.coding_model.CodingModel` (all but ``context_col``,
        which is given to ``fit``)."""
        kwargs = asdict(self)
        del kwargs["context_col"]
        return kwargs
