"""cli."""

from opm_nlp.cli.main import cli, main

__all__ = ["cli", "main"]
