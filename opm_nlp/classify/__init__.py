"""Estimators that score answers for each code (scikit-learn contract), and agreement metrics.

The embedding classifier (lexical, embedding, sentence and fine-tuned views, stacked per code), the
keyword (stem-word) classifier, the sentence of an answer that carried each code (``evidence``),
fine-tuning of the encoder, thresholds, F1, Cohen's kappa with its bootstrap interval and Krippendorff's
alpha (``metrics``, ``agreement``); a fitted classifier as JSON-able state and arrays, and back
(``state``, ``state_parts``).

May import: :mod:`opm_nlp.embedding`, :mod:`opm_nlp.codebook`, :mod:`opm_nlp.io` and the base modules.
"""
