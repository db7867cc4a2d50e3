"""The codebook: themes as data, in every form it travels in, and answers coded against it.

YAML (the house format), a spreadsheet table (one row per code) and a REFI-QDA codebook (``.qdc``);
reading human-coded answers in the wide, long or delimited layout into one 0/1 column per code.

May import: :mod:`opm_nlp.io` and the base modules (:mod:`opm_nlp.exceptions`, :mod:`opm_nlp.columns`).
"""
