"""Exchange with QDA software: a tagged or reviewed table as a REFI-QDA project (``.qdpx``).

May import: :mod:`opm_nlp.model` and every stage below it; not :mod:`opm_nlp.review` or
:mod:`opm_nlp.report` (peers).
"""
