"""People review the model's suggestions: in a spreadsheet or in Label Studio, and back as training data.

May import: :mod:`opm_nlp.model` and every stage below it; not :mod:`opm_nlp.report` or
:mod:`opm_nlp.exchange` (peers).
"""
