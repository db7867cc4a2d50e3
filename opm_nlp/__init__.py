"""opm-nlp: code free-text survey answers against a codebook, offline.

The pipeline, one module per stage: :mod:`~opm_nlp.codebook` (themes as data),
:mod:`~opm_nlp.surveys` (reading answers and coded data), :mod:`~opm_nlp.segment` (sentences and
lemmas), :mod:`~opm_nlp.embedding` (encoders and the embedding cache), :mod:`~opm_nlp.classifier`
(scikit-learn estimators), :mod:`~opm_nlp.bundle` (the saved model), :mod:`~opm_nlp.batch` (tagging
files in chunks, resumable, on Dask), :mod:`~opm_nlp.evaluation` (agreement), :mod:`~opm_nlp.review`,
:mod:`~opm_nlp.labelstudio` and :mod:`~opm_nlp.sheet` (people review suggestions),
:mod:`~opm_nlp.summary` and :mod:`~opm_nlp.report` (theme frequencies), :mod:`~opm_nlp.refi`
(REFI-QDA exchange with QDA software).
"""

from opm_nlp.codebook import Code, Codebook, load_codebook
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
