"""``opm-nlp demo``: the illustrative OPM chain end to end on the shipped data.

Tag the new wave with the shipped model, then estimate each theme's share with the shipped audit sample
(40 answers of the wave drawn at random and coded blind): prediction-powered estimates with 95%
intervals, beside the model's own counts. The answers in ``examples/`` were written for opm-nlp as
illustration; they are not OPM study data.
"""

from __future__ import annotations

from pathlib import Path

import click

from opm_nlp.cli.common import verbosity_options
from opm_nlp.exceptions import ModelError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = REPO_ROOT / "models" / "opm_default"
EXAMPLE_NEW_WAVE = REPO_ROOT / "examples" / "opm_wave2022_illustrative.csv"
EXAMPLE_AUDIT = REPO_ROOT / "examples" / "opm_wave2022_audit_illustrative.csv"
TEXT_COL = "answer"
ID_COL = "response_id"


def run_demo(out: str | Path, model_dir: Path, new_wave: Path, audit_file: Path = EXAMPLE_AUDIT,
             progress: bool = True) -> dict:
    """Tag ``new_wave`` with the model in ``model_dir`` and estimate its themes with the audit ``audit_file``.

    Writes ``tagged.csv`` and ``theme_frequencies.csv`` (the columns ``opm-nlp report --audit`` writes:
    counts, Wilson intervals, and the prediction-powered estimates with their intervals) into ``out``.

    Returns
    -------
    dict
        Paths of the two files (``tagged``, ``frequencies``) and ``summary_text`` for the terminal.
    """
    from opm_nlp.columns import NEEDS_REVIEW_COL, human_coded_mask
    from opm_nlp.io.responses import read_responses
    from opm_nlp.io.tables import answered, atomic_output, read_table, write_csv, write_table
    from opm_nlp.model.coding_model import CodingModel
    from opm_nlp.model.metadata import trust_sentence
    from opm_nlp.report.audit import read_audit
    from opm_nlp.report.build import build_report
    from opm_nlp.report.prevalence import trust_of
    from opm_nlp.report.tables import prepare_table

    if not (model_dir / "metadata.json").is_file():
        raise ModelError(f"The default model is missing from {model_dir}; rebuild it with: make model")
    out = Path(out)
    model = CodingModel.load(model_dir)
    tagged = model.tag(read_responses(new_wave, TEXT_COL, ID_COL), TEXT_COL, ID_COL, progress=progress)
    tagged_path = write_table(tagged, out / "tagged.csv")
    # The estimates are made from the file as written, as 'opm-nlp report tagged.csv --audit ...' reads it,
    # so that the demo's figures are the report's to the last digit.
    wave = prepare_table(read_table(tagged_path), model.codebook, TEXT_COL, ID_COL, source=str(tagged_path))
    audit = read_audit(read_table(audit_file), model.codebook, wave, TEXT_COL, ID_COL,
                       reviewed=human_coded_mask(wave), source=audit_file.name, tagged_source=tagged_path.name,
                       metadata=model.metadata)
    report = build_report(wave, model.codebook, TEXT_COL, ID_COL, quotes=0, source=str(tagged_path), audit=audit,
                          trust=trust_of(model.metadata), model=model_dir.name)
    frequencies = report.sheets()["frequencies"]  # the table report writes as theme_frequencies.csv
    with atomic_output(out / "theme_frequencies.csv") as tmp:
        write_csv(frequencies, tmp)

    with_answer = int(answered(tagged[TEXT_COL]).sum())
    lines = [
        f"Illustrative OPM wave ({new_wave.name}; invented answers, not study data): "
        f"{len(tagged)} respondents, {with_answer} with an answer.",
        f"Model: {model_dir.name}, trained on {model.metadata['training']['answers']} coded answers. "
        f"{trust_sentence(model.metadata)}",
        f"{int(tagged[NEEDS_REVIEW_COL].sum())} answers are flagged for review.",
        f"Audit: {len(audit.codes)} answers of the wave drawn at random and coded blind, without the model's "
        f"suggestions ({audit_file.name}; coded for illustration).",
        *(f"Note: {note}" for note in [*audit.notes, *report.notes]),
        "",
        f"Themes, % of the {with_answer} who answered: the model's scores on every answer corrected by the audit "
        f"(prediction-powered), with the 95% interval; beside it the model's own count.",
    ]
    shown = frequencies.sort_values("estimate_pct", ascending=False, kind="stable")
    width = max(len(label) for label in shown["label"])
    for _, row in shown.iterrows():
        interval = f"({row['estimate_ci_low']:.1f}–{row['estimate_ci_high']:.1f})"
        lines.append(f"  {row['label']:<{width}}  {row['estimate_pct']:5.1f}%  {interval:<13}  "
                     f"model: {row['respondents']:>3} ({row['model_only_pct']:.1f}%)")
    top = shown.iloc[0]
    lines += ["", f"Read \"{top['label']}: {top['estimate_pct']:.1f}% ({top['estimate_ci_low']:.1f}–"
                  f"{top['estimate_ci_high']:.1f})\" as: whatever the model's errors, an interval made this way "
                  f"from a random audit contains the share among this wave's respondents in about 95 of 100 "
                  f"audits; a larger audit narrows it."]
    return {"tagged": tagged_path, "frequencies": out / "theme_frequencies.csv", "summary_text": "\n".join(lines)}


@click.command()
@click.option("--out", default="demo_output", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the tagged table and the theme-frequency summary.")
@verbosity_options
def demo(out, quiet) -> None:
    """Tag the illustrative OPM new wave with the shipped model, then estimate its themes with the shipped audit.

    Prints, per theme, the prediction-powered estimate (the model's suggestions corrected by 40 answers
    of the wave coded blind, examples/opm_wave2022_audit_illustrative.csv) with its 95% interval, beside
    the model's own count; writes OUT/tagged.csv and OUT/theme_frequencies.csv (as 'opm-nlp report
    --audit' writes it).

    \b
    Example:
      opm-nlp demo --out demo_output
    """
    result = run_demo(out, model_dir=DEFAULT_MODEL, new_wave=EXAMPLE_NEW_WAVE, progress=not quiet)
    click.echo(result["summary_text"])
    click.echo(f"\nTagged answers: {result['tagged']}\nTheme frequencies: {result['frequencies']}")
