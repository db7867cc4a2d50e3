"""People review the model's suggestions: in a spreadsheet or in Label Studio, and back as training data.

They also code audit samples blind (:mod:`opm_nlp.review.audit`): random answers that measure the model
and never train it.

May import: :mod:`opm_nlp.model` and every stage below it; not :mod:`opm_nlp.report` or
:mod:`opm_nlp.exchange` (peers).
"""
