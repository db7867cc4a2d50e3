"""The coding model a researcher trains, saves, shares and tags with.

A codebook + encoder + fitted classifier + thresholds (``coding_model``); its folder format, data
only (``folder``, with its array file ``arrays``; ``convert`` for folders of the old, pickled format),
metadata and model card (``metadata``, ``card``), held-out figures recorded in the folder
(``heldout``); the options of a training and a
tagging run (``options``); training from coded files, leaving out unreviewed rows (``training``,
``reviewed``); the tagged table with its evidence (``tagged``); tagging files in chunks, resumable (``batch``,
``chunks``), or on Dask (``dask_tagging``).

May import: :mod:`opm_nlp.classify` and every stage below it.
"""
