"""``python -m opm_nlp``: the same as the ``opm-nlp`` command."""

from opm_nlp.cli.main import main

main()
