"""The public API at the top level: every name resolves, and importing the package stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import opm_nlp


@pytest.mark.parametrize("name", [n for n in opm_nlp.__all__ if n != "__version__"])
def test_every_public_name_resolves_and_is_documented(name):
    value = getattr(opm_nlp, name)
    assert value.__doc__ and value.__doc__.strip(), f"opm_nlp.{name} has no docstring"


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="module 'opm_nlp' has no attribute 'tag_everything'"):
        opm_nlp.tag_everything  # noqa: B018


def test_import_loads_neither_scikit_learn_nor_torch():
    code = ("import sys, opm_nlp; opm_nlp.load_codebook; opm_nlp.read_coded; opm_nlp.read_responses\n"
            "heavy = sorted(m for m in ('sklearn', 'torch', 'sentence_transformers') if m in sys.modules)\n"
            "assert not heavy, heavy")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_review_tools_load_without_scikit_learn():
    """Sorting a review by the model's decision rule needs the rule, not the machinery that fits it."""
    code = ("import sys, opm_nlp.review.common, opm_nlp.review.sheet\n"
            "assert 'sklearn' not in sys.modules, 'sklearn'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
