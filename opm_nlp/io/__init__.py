"""Reading and writing tables: answers in, results out.

CSV (encoding detected), XLSX and Parquet, read whole or in chunks, with errors that name the file,
column and row (:mod:`~opm_nlp.io.tables`, :mod:`~opm_nlp.io.formats`, :mod:`~opm_nlp.io.responses`);
outputs written all-or-nothing (a temporary file, then a rename), with no text a spreadsheet would run
as a formula (:mod:`~opm_nlp.io.formulas`). Knows nothing of codebooks or models.

May import: :mod:`opm_nlp.exceptions`, :mod:`opm_nlp.columns`.
"""
