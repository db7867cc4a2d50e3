"""The ``opm-nlp`` command group: every command, registered from its own module.

Heavy packages (torch, sentence-transformers, scikit-learn, spaCy) are imported inside the commands
that need them, so ``opm-nlp --help`` starts fast.
"""

from __future__ import annotations

import click

from opm_nlp.cli.cache import cache
from opm_nlp.cli.codebook import codebook
from opm_nlp.cli.common import CommandGroup
from opm_nlp.cli.demo import demo
from opm_nlp.cli.export import export
from opm_nlp.cli.model import model
from opm_nlp.cli.report import report
from opm_nlp.cli.review import review
from opm_nlp.cli.tag import tag
from opm_nlp.cli.train import evaluate, train


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="opm-nlp")
def cli() -> None:
    """Code free-text survey answers against a codebook, offline.

    \b
    Typical use:
      opm-nlp codebook validate codebook/opm_behavior_change.yaml
      opm-nlp train --codebook codebook/opm_behavior_change.yaml --data coded.csv \\
          --text-col answer --id-col response_id --out models/mine
      opm-nlp tag models/mine wave3.xlsx --text-col answer --id-col response_id --out tagged.csv
    """


for _command in (codebook, train, tag, evaluate, review, report, export, model, cache, demo):
    cli.add_command(_command)


def main() -> None:
    """Entry point of the ``opm-nlp`` script."""
    cli(prog_name="opm-nlp")


if __name__ == "__main__":  # pragma: no cover
    main()
