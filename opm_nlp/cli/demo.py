"""``opm-nlp demo``: tag the illustrative OPM new wave with the shipped model and summarise its themes.

The answers in ``examples/`` were written for opm-nlp as illustration; they are not OPM study data.
"""

from __future__ import annotations

from pathlib import Path

import click

from opm_nlp.cli.common import verbosity_options
from opm_nlp.exceptions import ModelError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = REPO_ROOT / "models" / "opm_default"
EXAMPLE_NEW_WAVE = REPO_ROOT / "examples" / "opm_wave2022_illustrative.csv"
TEXT_COL = "answer"
ID_COL = "response_id"


def run_demo(out: str | Path, model_dir: Path, new_wave: Path, progress: bool = True) -> dict:
    """Tag ``new_wave`` with the model in ``model_dir``; write ``tagged.csv`` and ``theme_frequencies.csv``.

    Returns
    -------
    dict
        Paths of the two files (``tagged``, ``frequencies``) and ``summary_text`` for the terminal.
    """
    from opm_nlp.columns import NEEDS_REVIEW_COL
    from opm_nlp.io.responses import read_responses
    from opm_nlp.io.tables import answered, write_table
    from opm_nlp.model.coding_model import CodingModel
    from opm_nlp.model.metadata import trust_sentence
    from opm_nlp.report.tables import theme_frequencies

    if not (model_dir / "metadata.json").is_file():
        raise ModelError(f"The default model is missing from {model_dir}; rebuild it with: make model")
    out = Path(out)
    model = CodingModel.load(model_dir)
    answers = read_responses(new_wave, TEXT_COL, ID_COL)
    tagged = model.tag(answers, TEXT_COL, ID_COL, progress=progress)
    frequencies = theme_frequencies(tagged, model.codebook, TEXT_COL)
    tagged_path = write_table(tagged, out / "tagged.csv")
    frequencies_path = write_table(frequencies.reset_index(), out / "theme_frequencies.csv")

    with_answer = int(answered(tagged[TEXT_COL]).sum())
    lines = [
        f"Illustrative OPM wave ({new_wave.name}; invented answers, not study data): "
        f"{len(tagged)} respondents, {with_answer} with an answer.",
        f"Model: {model_dir.name}, trained on {model.metadata['training']['answers']} coded answers. "
        f"{trust_sentence(model.metadata)}",
        f"{int(tagged[NEEDS_REVIEW_COL].sum())} answers are flagged for review.",
        "",
        "Suggested themes (respondents, % of those who answered):",
    ]
    width = max(len(label) for label in frequencies["label"])
    for _, row in frequencies.sort_values("respondents", ascending=False).iterrows():
        lines.append(f"  {row['label']:<{width}}  {row['respondents']:>4}  {row['pct_of_answered']:5.1f}%")
    return {"tagged": tagged_path, "frequencies": frequencies_path, "summary_text": "\n".join(lines)}


@click.command()
@click.option("--out", default="demo_output", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the tagged table and the theme-frequency summary.")
@verbosity_options
def demo(out, quiet) -> None:
    """Tag the illustrative OPM new wave with the shipped default model and summarise the themes.

    \b
    Example:
      opm-nlp demo --out demo_output
    """
    result = run_demo(out, model_dir=DEFAULT_MODEL, new_wave=EXAMPLE_NEW_WAVE, progress=not quiet)
    click.echo(result["summary_text"])
    click.echo(f"\nTagged answers: {result['tagged']}\nTheme frequencies: {result['frequencies']}")
