"""Turning answers into vectors: model folders, the sentence encoder, its ONNX runs, the embedding cache, segmentation.

May import: :mod:`opm_nlp.codebook`, :mod:`opm_nlp.io` and the base modules. torch and
sentence-transformers are imported only inside the functions that need them.
"""
