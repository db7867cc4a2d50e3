"""The ``opm-nlp`` command: thin click commands over the library, one module per command group.

Commands parse options, call the library and print; heavy packages are imported inside the commands
that need them, so ``opm-nlp --help`` starts fast. Library errors become one line and exit status 1.

May import every stage.
"""

from opm_nlp.cli.main import cli, main

__all__ = ["cli", "main"]
