"""opm-nlp: code free-text survey answers against a codebook, offline.

The pipeline, one module per stage: :mod:`~opm_nlp.codebook.codes` (themes as data),
:mod:`~opm_nlp.io.tables` (reading answers and coded data), :mod:`~opm_nlp.embedding.segment` (sentences and
lemmas), :mod:`~opm_nlp.embedding.encoder` (encoders and the embedding cache), :mod:`~opm_nlp.classify.estimator`
(scikit-learn estimators), :mod:`~opm_nlp.model.coding_model` (the saved model), :mod:`~opm_nlp.model.batch` (tagging
files in chunks, resumable, on Dask), :mod:`~opm_nlp.classify.metrics` (agreement), :mod:`~opm_nlp.review.common`,
:mod:`~opm_nlp.review.labelstudio` and :mod:`~opm_nlp.review.sheet` (people review suggestions),
:mod:`~opm_nlp.report.summary` and :mod:`~opm_nlp.report.build` (theme frequencies), :mod:`~opm_nlp.exchange.refi`
(REFI-QDA exchange with QDA software).
"""

from opm_nlp.codebook.codes import Code, Codebook, load_codebook
from opm_nlp.exceptions import CodebookError, DataError, ModelError, OpmNlpError

__version__ = "0.1.0"

__all__ = [
    "Code",
    "Codebook",
    "CodebookError",
    "DataError",
    "ModelError",
    "OpmNlpError",
    "load_codebook",
    "__version__",
]
