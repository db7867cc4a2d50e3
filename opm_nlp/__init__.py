"""opm-nlp: code free-text survey answers against a codebook, offline.

The pipeline, one module per stage: :mod:`~opm_nlp.codebook` (themes as data),
:mod:`~opm_nlp.surveys` (reading answers and coded data), :mod:`~opm_nlp.segment` (sentences and
lemmas), :mod:`~opm_nlp.embedding` (sentence-transformers, lazily), :mod:`~opm_nlp.classifier`
(scikit-learn estimators), :mod:`~opm_nlp.bundle` (the saved model), :mod:`~opm_nlp.evaluation`
(agreement) and :mod:`~opm_nlp.summary` (theme frequencies).
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
