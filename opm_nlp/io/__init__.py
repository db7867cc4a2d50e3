"""Reading and writing tables: answers in, results out.

CSV (encoding detected), XLSX and Parquet, read whole or in chunks, with errors that name the file,
column and row; outputs written all-or-nothing (a temporary file, then a rename). Knows nothing of
codebooks or models.

May import: :mod:`opm_nlp.exceptions`, :mod:`opm_nlp.columns`.
"""
