"""``opm-nlp cache``: show or clear the cache folder."""

from __future__ import annotations

import click

from opm_nlp.cli.common import CommandGroup


@click.group(cls=CommandGroup)
def cache() -> None:
    """Show or clear the cache folder (embeddings, ONNX exports, fine-tuned networks)."""


@cache.command("info")
def cache_info() -> None:
    """Show where the cache is and how much room each part takes.

    \b
    Example:
      opm-nlp cache info
    """
    from opm_nlp.embedding.cache import cache_root, format_bytes, usage

    parts = usage()
    click.echo(f"Cache folder: {cache_root()} (set OPM_NLP_CACHE_DIR to move it)")
    for part in parts:
        click.echo(f"  {part.name:<11} {part.entries:>4} entries {format_bytes(part.size):>8}  {part.holds}")
    click.echo(f"Total {format_bytes(sum(part.size for part in parts))}. Everything is rebuilt when next needed; "
               "'opm-nlp cache clear' deletes it.")


@cache.command("clear")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def cache_clear(yes: bool) -> None:
    """Delete the cache: embeddings of answers, ONNX exports and fine-tuned networks.

    Nothing is lost: models keep their own weights, and the next command that needs a part rebuilds it
    (the first tagging after clearing is slower). Deletes only what opm-nlp wrote in the cache folder.
    Run it when no other opm-nlp command is running.

    \b
    Example:
      opm-nlp cache clear --yes
    """
    from opm_nlp.embedding.cache import cache_root, clear, format_bytes, usage

    total = sum(part.size for part in usage())
    if not yes:
        click.confirm(f"Delete {format_bytes(total)} of cached embeddings and networks in {cache_root()}?", abort=True)
    click.echo(f"Cache cleared: {format_bytes(clear())} freed in {cache_root()}.")
