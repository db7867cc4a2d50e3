"""Theme frequencies with intervals, by wave and subgroup; wave tests, pre/post ratings, quotes, charts, HTML.

May import: :mod:`opm_nlp.model` and every stage below it; not :mod:`opm_nlp.review` or
:mod:`opm_nlp.exchange` (peers).
"""
