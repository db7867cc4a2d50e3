"""The coding model a researcher trains, saves, shares and tags with.

A codebook + encoder + fitted classifier + thresholds; its folder format and model card; training
from coded files; tagging files in chunks (resumable, or on Dask); evaluation against human codes.

May import: :mod:`opm_nlp.classify` and every stage below it.
"""
