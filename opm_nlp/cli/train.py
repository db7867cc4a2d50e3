"""``opm-nlp train`` and ``opm-nlp evaluate``: a model from coded answers, and how well it agrees with people."""

from __future__ import annotations

from pathlib import Path

import click

from opm_nlp.cli.common import (
    backend_options,
    check_model_folder,
    coded_options,
    data_options,
    format_interval,
    model_dir_argument,
    sheet_option,
    verbosity_options,
)


@click.command()
@click.option("--codebook", "codebook_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Codebook YAML file.")
@click.option("--data", "data_paths", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Coded answers (CSV/XLSX/Parquet). Repeat for several files; for a response id in "
                   "several files, the later file's codes win. Leave out to start from the codebook's "
                   "examples and definitions alone.")
@data_options(required=False)
@sheet_option
@coded_options
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Model folder to write.")
@click.option("--method", default="embedding", show_default=True, type=click.Choice(["embedding", "keyword"]),
              help="embedding: learn from the coded answers; keyword: the codebook's stem-word query.")
@click.option("--embedding-model", default=None,
              help="sentence-transformers model folder or cached name (default: packaged all-MiniLM-L6-v2).")
@click.option("--embedding-layers", default=None, type=click.IntRange(1),
              help="Describe answers by the embedding model's last N layers (default: 3 where the model "
                   "allows, else 1, its sentence embedding).")
@click.option("--context-col", default=None,
              help="Column saying what each answer responds to (e.g. the question, when a file holds answers "
                   "to several questions); answers to tag need the same column.")
@click.option("--review-margin", default=0.15, show_default=True, type=click.FloatRange(0, 1),
              help="Tagging flags an answer for review when a code's score is this close to its threshold "
                   "(larger: more answers routed to people).")
@click.option("--no-codebook-examples", is_flag=True,
              help="Learn from the coded answers only, not also from the codebook's examples and definitions.")
@click.option("--fine-tune/--no-fine-tune", default=None,
              help="Also fine-tune the embedding network on the coded answers (better suggestions; minutes of "
                   "training instead of seconds, a ~40 MB larger model, slower tagging; needs PyTorch). "
                   "Default: on from 1,000 coded answers.")
@click.option("--no-sentence-scores", is_flag=True,
              help="Score whole answers only, not also each sentence of a longer answer (faster tagging of "
                   "long answers; themes carried by one sentence of a long answer are found less often).")
@backend_options
@verbosity_options
def train(codebook_path, data_paths, text_col, id_col, encoding, sheet, coded_format, code_col, out, method,
          embedding_model, embedding_layers, context_col, review_margin, no_codebook_examples, fine_tune,
          no_sentence_scores, backend, no_cache, quiet) -> None:
    """Train a model from answers people have already coded.

    The embedding method also learns from the codebook's examples and definitions, which carry the
    model while few answers are coded; without --data it learns from them alone (a first model for a
    new codebook: expect rough suggestions, and review them).

    \b
    Example:
      opm-nlp train --codebook codebook/opm_behavior_change.yaml \\
          --data examples/opm_coded_illustrative.csv \\
          --text-col answer --id-col response_id --out models/my_model
    """
    from opm_nlp.classify.finetune import DEFAULT_EPOCHS
    from opm_nlp.codebook.codes import load_codebook
    from opm_nlp.embedding.encoder import DEFAULT_BACKEND
    from opm_nlp.io.paths import check_outside
    from opm_nlp.model.coding_model import CodingModel
    from opm_nlp.model.folder import check_model_out
    from opm_nlp.model.metadata import decision_sentence
    from opm_nlp.model.options import TrainOptions
    from opm_nlp.model.training import read_training_data, train_model

    if fine_tune and method != "embedding":
        raise click.UsageError("--fine-tune applies to --method embedding only.")
    check_outside([codebook_path, *data_paths], out)
    check_model_out(out)  # before any training: --out may hold an earlier model, nothing else
    replaced_heldout = _has_heldout(out)
    cb = load_codebook(codebook_path)
    epochs = None if fine_tune is None else DEFAULT_EPOCHS if fine_tune else 0
    options = TrainOptions(method=method, embedding_model=embedding_model, embedding_layers=embedding_layers,
                           context_col=context_col, review_margin=review_margin,
                           codebook_examples=not no_codebook_examples, fine_tune=epochs,
                           sentences=not no_sentence_scores, backend=backend or DEFAULT_BACKEND, cache=not no_cache)
    model = CodingModel.from_options(cb, options)
    if data_paths and (text_col is None or id_col is None):
        raise click.UsageError("--text-col and --id-col are required with --data.")
    data = read_training_data(data_paths, cb, text_col, id_col, encoding=encoding, format=coded_format,
                              code_col=code_col, sheet=sheet)
    if data.coded is None:
        if not quiet and method == "embedding":
            click.echo(f"Training '{method}' model on the codebook alone: {len(cb.examples())} examples and "
                       f"definitions, {len(cb)} codes...", err=True)
        train_model(cb, data, options, progress=not quiet, model=model).save(out)
        _note_dropped_heldout(replaced_heldout, out)
        what = "the codebook's keywords" if method == "keyword" else "the codebook alone"
        click.echo(f"Model written to {out} (from {what}; no cross-validated figures).")
        return
    for note in data.notes:
        click.echo(note)
    if len(data.sources) > 1:
        click.echo(f"Combined {len(data.sources)} files: {len(data.coded)} answers; later files added "
                   f"{data.added_answers} answers and coded {data.recoded_answers} of the earlier files' answers "
                   f"again ({data.changed_labels} labels changed).")
    if not quiet:
        slow = " (fine-tuning the embedding network too: minutes)" if model.fine_tune_epochs(data.answers) else ""
        click.echo(f"Training '{method}' model on {len(data.coded)} coded answers, {len(cb)} codes{slow}...", err=True)
    train_model(cb, data, options, progress=not quiet, model=model).save(out)
    meta = model.metadata
    skipped = meta["training"]["empty_answers_skipped"]
    if skipped:
        click.echo(f"{skipped} answers with empty text were not used for training.")
    cv = meta["cv_metrics"]
    if cv:
        click.echo(f"Cross-validated micro-F1 {cv['micro_f1']:.3f}{format_interval(cv['micro_f1_interval'], '95% interval ')}, "
                   f"macro-F1 {cv['macro_f1']:.3f}{format_interval(cv['macro_f1_interval'])} "
                   f"({cv['folds']}-fold; see {out / 'README.md'}).")
        click.echo(f"These are cross-validated on the training answers, so optimistic. For figures to quote, measure "
                   f"the model on coded answers it was not trained on and record them: opm-nlp evaluate {out} "
                   f"--data HELD_OUT --text-col ... --id-col ... --save")
    decision = decision_sentence(meta)
    if decision:
        click.echo(decision)
    from opm_nlp.classify.forecast import forecast_lines

    for line in forecast_lines(meta.get("forecast")):
        click.echo(line)
    _note_dropped_heldout(replaced_heldout, out)
    click.echo(f"Model written to {out}")


def _has_heldout(folder: Path) -> bool:
    """Whether ``folder`` holds a model with held-out figures (which training a new one there drops)."""
    from opm_nlp.exceptions import ModelError
    from opm_nlp.model.folder import read_metadata

    if not (folder / "metadata.json").is_file():
        return False
    try:
        return bool(read_metadata(folder).get("heldout_metrics"))
    except ModelError:
        return False


def _note_dropped_heldout(dropped: bool, out: Path) -> None:
    if dropped:
        click.echo(f"The held-out figures of the model {out} held are not carried over (they measured that model): "
                   f"evaluate this one with --save.")


# -- evaluate -------------------------------------------------------------------------------------
@click.command()
@model_dir_argument
@click.option("--data", "data_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Answers coded by people, not used for training.")
@data_options
@sheet_option
@coded_options
@click.option("--second-coder", type=click.Path(dir_okay=False, path_type=Path),
              help="The same answers coded by a second person: adds human-human kappa per code.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the figures as JSON.")
@click.option("--save", is_flag=True,
              help="Record the figures in the model folder as its held-out figures (metadata.json and the model "
                   "card), which train, demo, the card and the report then quote. Refused for answers the model "
                   "was trained on.")
@verbosity_options
def evaluate(model_dir, data_path, text_col, id_col, encoding, sheet, coded_format, code_col, second_coder,
             json_path, save, quiet) -> None:
    """How well the model agrees with human coders, per code.

    Precision, recall, F1, Cohen's kappa with a 95% bootstrap interval, Krippendorff's alpha and
    percent agreement, against the answers in --data, which the model must not have been trained on.

    \b
    Example:
      opm-nlp evaluate models/opm_default --data held_out.csv \\
          --text-col answer --id-col response_id --second-coder held_out_coder2.csv --save
    """
    from opm_nlp.classify.metrics import agreement_report, agreement_report_json, format_table
    from opm_nlp.codebook.coded import read_coded
    from opm_nlp.io.paths import check_distinct
    from opm_nlp.io.tables import write_json
    from opm_nlp.model.coding_model import CodingModel
    from opm_nlp.model.heldout import check_not_trained_on, heldout_metrics, save_heldout_metrics
    from opm_nlp.model.training import read_human_coded

    check_model_folder(model_dir)
    if json_path is not None:
        check_distinct([data_path, second_coder], json_path, "--json")
    model = CodingModel.load(model_dir)
    cb = model.codebook
    coded, note = read_human_coded(data_path, cb, text_col, id_col, encoding=encoding, format=coded_format,
                                   code_col=code_col, sheet=sheet)
    if save:  # before the slow part: answers the model learned from give no held-out figures
        check_not_trained_on(model.metadata, coded[id_col].tolist(), str(data_path), model_dir)
    if note:
        click.echo(note)
    second = None
    if second_coder is not None:
        second = read_coded(second_coder, cb, text_col, id_col, encoding=encoding, format=coded_format,
                            code_col=code_col, sheet=sheet)
    report = agreement_report(model, coded, text_col, id_col, second, progress=not quiet)
    click.echo(f"Model vs {data_path.name}: {report['n_answers']} answers")
    table, intervals = report["model_vs_human"], report["f1_intervals"]
    click.echo(format_table(table))
    if format_interval(intervals["micro"]):
        click.echo(f"Micro-F1 {table.loc['micro', 'f1']:.3f}{format_interval(intervals['micro'], '95% interval ')}, "
                   f"macro-F1 {table.loc['macro', 'f1']:.3f}{format_interval(intervals['macro'])}: how much they depend on "
                   f"which {report['n_answers']} answers were coded.")
    shown_interval = "kappa_low-kappa_high: 95% bootstrap interval of kappa; " if format_interval(intervals["micro"]) else ""
    click.echo(f"{shown_interval}alpha: Krippendorff's alpha; agreement: share of answers with the same 0/1.")
    click.echo(report["reading"])
    if second is not None:
        click.echo(f"\nOn the {report['n_double_coded']} answers both people coded, kappa per code, and the two "
                   f"people's alpha and percent agreement:")
        click.echo(format_table(report["kappa_comparison"]))
    if json_path is not None:
        write_json(agreement_report_json(report), json_path)
        click.echo(f"Figures written to {json_path}")
    if save:
        save_heldout_metrics(model, model_dir, heldout_metrics(report, [data_path.name]))
        click.echo(f"Held-out figures recorded in {model_dir / 'metadata.json'} and its model card.")
