"""opm-nlp: code free-text survey answers against a codebook, offline.

The package follows the pipeline, one sub-package per stage (each ``__init__`` says what it does and
what it may import):

    io -> codebook -> embedding -> classify -> model -> review, report, exchange -> cli

The names below are the public API. They resolve on first use, so ``import opm_nlp`` loads neither
scikit-learn nor torch.

Examples
--------
>>> from opm_nlp import CodingModel, load_codebook, read_coded, read_responses  # doctest: +SKIP
>>> codebook = load_codebook("codebook/opm_behavior_change.yaml")               # doctest: +SKIP
>>> coded = read_coded("examples/opm_coded_illustrative.csv", codebook, "answer", "response_id")  # doctest: +SKIP
>>> model = CodingModel(codebook).fit(coded, text_col="answer")                  # doctest: +SKIP
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_API = {
    "Code": "opm_nlp.codebook.codes",
    "Codebook": "opm_nlp.codebook.codes",
    "load_codebook": "opm_nlp.codebook.codes",
    "read_table": "opm_nlp.io.tables",
    "write_table": "opm_nlp.io.tables",
    "read_responses": "opm_nlp.io.responses",
    "read_coded": "opm_nlp.codebook.coded",
    "CodingModel": "opm_nlp.model.coding_model",
    "TrainOptions": "opm_nlp.model.options",
    "TrainingData": "opm_nlp.model.training",
    "read_training_data": "opm_nlp.model.training",
    "train_model": "opm_nlp.model.training",
    "TagOptions": "opm_nlp.model.options",
    "tag_file": "opm_nlp.model.batch",
    "agreement_table": "opm_nlp.classify.metrics",
    "trust_figures": "opm_nlp.model.metadata",
    "trust_sentence": "opm_nlp.model.metadata",
    "theme_frequencies": "opm_nlp.report.tables",
    "build_report": "opm_nlp.report.build",
    "review_frame": "opm_nlp.review.sheet",
    "decision_rule_of": "opm_nlp.review.common",
    "write_review_sheet": "opm_nlp.review.sheet",
    "write_qdpx": "opm_nlp.exchange.qdpx",
    "OpmNlpError": "opm_nlp.exceptions",
    "CodebookError": "opm_nlp.exceptions",
    "DataError": "opm_nlp.exceptions",
    "ModelError": "opm_nlp.exceptions",
    "ReviewError": "opm_nlp.exceptions",
    "ServerError": "opm_nlp.exceptions",
    "SpecError": "opm_nlp.exceptions",
}

__all__ = [*_API, "__version__"]


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'opm_nlp' has no attribute '{name}'")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
