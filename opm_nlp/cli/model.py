"""``opm-nlp model``: work on model folders (convert one of the old, pickled format)."""

from __future__ import annotations

from pathlib import Path

import click

from opm_nlp.cli.common import CommandGroup


@click.group(cls=CommandGroup)
def model() -> None:
    """Work on model folders: convert one saved in the old format (a pickled classifier)."""


@model.command("convert")
@click.argument("old_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the converted model to (new, empty, or an earlier model folder).")
@click.option("--trust-pickle", is_flag=True,
              help="Confirm that you trust OLD_DIR: converting loads its classifier.joblib, a pickle, which runs "
                   "any code it holds. Only for a folder you trained yourself or got from someone you trust.")
def model_convert(old_dir: Path, out: Path, trust_pickle: bool) -> None:
    """Convert a model folder of the old format (classifier.joblib) to one that is data only.

    opm-nlp loads model folders of JSON, YAML and arrays, which run no code; it refuses the old format,
    whose classifier is a pickle that runs any code it holds when loaded. This command loads that pickle
    once, for a folder you trust, and writes the same model (same scores) as data to --out; OLD_DIR is
    left as it is. For a folder from anyone else, retrain the model instead (opm-nlp train ... --out DIR).

    \b
    Example:
      opm-nlp model convert models/old_model --out models/old_model_v2 --trust-pickle
    """
    from opm_nlp.model.convert import convert_model_folder

    convert_model_folder(old_dir, out, trust_pickle=trust_pickle)
    click.echo(f"Converted {old_dir} to {out}: a model folder of JSON, YAML and arrays, loaded without running code.")
