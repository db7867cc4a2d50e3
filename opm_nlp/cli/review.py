"""``opm-nlp review``: people confirm or correct suggestions, in Label Studio or a spreadsheet."""

from __future__ import annotations

from pathlib import Path

import click

from opm_nlp.cli.common import (
    CommandGroup,
    codebook_or_model,
    review_codebook_options,
    server_options,
    sheet_option,
    tagged_options,
)


@click.group(cls=CommandGroup)
def review() -> None:
    """Have people confirm or correct the suggestions: in Label Studio or in a spreadsheet.

    Reviewed files feed `opm-nlp train --data` (only rows marked reviewed=1 are used).
    """


_UPDATE_CONFIG = click.option(
    "--update-config", is_flag=True,
    help="Give a project made before opm-nlp marked evidence the interface that highlights it (its answers and "
         "reviews are kept); without it such a project is refused.")


@review.command("push")
@click.argument("tagged_path", metavar="TAGGED", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--project", required=True, help="Label Studio project title (created if it does not exist).")
@_UPDATE_CONFIG
@review_codebook_options
@tagged_options
@sheet_option
@server_options
def review_push(tagged_path, project, update_config, codebook_path, model_dir, text_col, id_col, encoding, sheet,
                url, api_key) -> None:
    """Send tagged answers to Label Studio for review, least certain first.

    Each answer becomes a task with the model's codes pre-ticked and the words that carried each one
    (the evidence_spans column of the tagged file) highlighted, labelled with the code; the reviewer
    confirms or corrects both. Answers already in the project (same response id) are not sent again, so
    a later wave adds only its new answers. Server and key come from LABEL_STUDIO_URL and
    LABEL_STUDIO_API_KEY.

    \b
    Example:
      export LABEL_STUDIO_URL=http://localhost:8080 LABEL_STUDIO_API_KEY=<your token>
      opm-nlp review push tagged.csv --project "OPM wave 2022" --model models/opm_default
    """
    from opm_nlp.columns import EVIDENCE_SPANS_COL
    from opm_nlp.io.tables import read_table
    from opm_nlp.review.common import decision_rule_of, model_version, prepare_for_review
    from opm_nlp.review.labelstudio import push_tagged
    from opm_nlp.review.labelstudio_server import connect

    cb, metadata = codebook_or_model(codebook_path, model_dir)
    tagged, scores, text_col, id_col = prepare_for_review(read_table(tagged_path, encoding=encoding, sheet=sheet), cb,
                                                          text_col, id_col, source=str(tagged_path))
    server = connect(url, api_key)
    result = push_tagged(server, tagged, scores, cb, project, text_col, id_col, model_version(cb, metadata),
                         decision_rule_of(cb, metadata), update_config=update_config, source=str(tagged_path))
    empty = f"; {result.empty_skipped} empty answers not sent" if result.empty_skipped else ""
    click.echo(f"Project '{project}' (id {result.project_id}, {'created' if result.created_project else 'existing'}): "
               f"added {result.added} answers for review, {result.already_there} were already there{empty}.")
    click.echo(f"Review them at {result.url} (least certain first).")
    if EVIDENCE_SPANS_COL not in tagged.columns:
        click.echo(f"{tagged_path} has no '{EVIDENCE_SPANS_COL}' column (tagged before opm-nlp wrote evidence), so no "
                   f"words are highlighted; tag the answers again to show the evidence.")


@review.command("pull")
@click.option("--project", required=True, help="Label Studio project title.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Reviewed table to write: .csv, .xlsx or .parquet.")
@review_codebook_options
@click.option("--include-unreviewed", is_flag=True,
              help="Also write answers nobody has reviewed yet, with reviewed=0 and the model's codes "
                   "(train leaves them out).")
@server_options
def review_pull(project, out, codebook_path, model_dir, include_unreviewed, url, api_key) -> None:
    """Fetch reviewers' codes from Label Studio as a coded table, and how often they agreed with the model.

    The table has the id and answer columns, reviewed, reviewer, reviewed_at, changed_suggestion,
    model_version, suggested_codes, one 0/1 column per code id and reviewed_spans (the words the reviewer
    left marked with each code ticked, JSON in code points): training data for `opm-nlp train --data`.
    Only reviewed answers are written unless --include-unreviewed.

    \b
    Example:
      opm-nlp review pull --project "OPM wave 2022" --out reviewed.csv --model models/opm_default
    """
    from opm_nlp.exceptions import ReviewError
    from opm_nlp.io.paths import check_distinct
    from opm_nlp.io.tables import write_table
    from opm_nlp.review.common import format_agreement, review_agreement
    from opm_nlp.review.labelstudio import pull_reviews
    from opm_nlp.review.labelstudio_server import connect

    check_distinct([codebook_path], out)
    cb, _ = codebook_or_model(codebook_path, model_dir)
    server = connect(url, api_key)
    result = pull_reviews(server, project, cb, include_unreviewed=include_unreviewed)
    waiting = result.tasks - result.reviewed
    if not result.reviewed and not include_unreviewed:
        raise ReviewError(f"No answer of project '{project}' has been reviewed yet ({result.tasks} tasks); nothing "
                          f"written. Review some in Label Studio, or pass --include-unreviewed.")
    write_table(result.table, out, answer_col=result.text_col)
    skipped = f", {result.skipped} skipped by reviewers" if result.skipped else ""
    kind, done = (" (audit sample, coded blind)", "coded") if result.audit else ("", "reviewed")
    click.echo(f"Project '{project}'{kind}: {result.reviewed} of {result.tasks} answers {done} "
               f"({waiting} not yet{skipped}).")
    if result.several_reviews:
        click.echo(f"{result.several_reviews} answers were reviewed more than once; the latest review is used.")
    if result.spans_left_out:
        click.echo(f"{result.spans_left_out} marked spans belong to codes the reviewer did not tick (e.g. the "
                   f"evidence of a suggestion they unticked); reviewed_spans holds the spans of ticked codes only.")
    which = "all answers (unreviewed: reviewed=0, model codes)" if include_unreviewed else "reviewed answers only"
    if result.audit and include_unreviewed:
        which = "all answers (not yet coded: reviewed=0, no codes)"
    click.echo(f"Wrote {len(result.table)} rows ({which}) to {out}")
    if result.audit:  # no suggestion was shown, so there is no acceptance to count
        click.echo(f"Every row keeps the audit's design in 'audit_sample'; train leaves such rows out. Measure the "
                   f"model on it with: opm-nlp evaluate MODEL_DIR --data {out} --text-col {result.text_col} "
                   f"--id-col {result.id_col}")
        return
    if result.blind:  # a batch picked by review next, coded blind: no suggestion to agree with
        click.echo(f"Coded blind (answers picked by review next): train with it: opm-nlp train ... --data {out}")
        return
    table, summary = review_agreement(result.table, cb, source=f"project '{project}'")
    click.echo(format_agreement(table, summary))


@review.command("sheet")
@click.argument("tagged_path", metavar="TAGGED", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Review workbook to write (.xlsx).")
@review_codebook_options
@tagged_options
@sheet_option
def review_sheet(tagged_path, out, codebook_path, model_dir, text_col, id_col, encoding, sheet) -> None:
    """Write a spreadsheet for reviewing suggestions without Label Studio.

    One row per answer, least certain first, with the suggested codes pre-filled as 0/1 (drop-down),
    the scores, a 'reviewed' column to mark, and the codebook on a second sheet. The filled
    workbook is training data: `opm-nlp train --data review.xlsx ...` uses the rows marked reviewed=1.

    \b
    Example:
      opm-nlp review sheet tagged.csv --out review.xlsx --model models/opm_default
    """
    from opm_nlp.io.paths import check_distinct
    from opm_nlp.io.tables import read_table
    from opm_nlp.review.common import decision_rule_of, model_version, prepare_for_review
    from opm_nlp.review.sheet import review_frame, write_review_sheet

    check_distinct([tagged_path, codebook_path], out)
    cb, metadata = codebook_or_model(codebook_path, model_dir)
    tagged, scores, text_col, id_col = prepare_for_review(read_table(tagged_path, encoding=encoding, sheet=sheet), cb,
                                                          text_col, id_col, source=str(tagged_path))
    frame = review_frame(tagged, scores, cb, text_col, id_col, model_version(cb, metadata),
                         decision_rule_of(cb, metadata))
    write_review_sheet(frame, cb, out)
    click.echo(f"Review sheet with {len(frame)} answers (least certain first) written to {out}. Correct the 0/1 "
               f"code columns, put 1 in 'reviewed', then: opm-nlp train ... --data {out}")


@review.command("sample")
@click.argument("tagged_path", metavar="TAGGED", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--n", "n", required=True, type=click.IntRange(1), help="Answers to draw.")
@click.option("--by", default=None, help="Column to stratify by, e.g. wave (proportional allocation, at least 2 "
                                         "answers per group where it has them).")
@click.option("--seed", default=None, type=click.IntRange(0),
              help="Seed of the draw: the same seed draws the same answers (default: a random seed, printed "
                   "and recorded).")
@click.option("--out", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Audit sheet to write: .xlsx (a coding workbook with the design), or .csv/.parquet.")
@click.option("--project", default=None, help="Also (or instead) send the sample to this Label Studio project, "
                                              "coded blind (created if it does not exist).")
@review_codebook_options
@tagged_options
@sheet_option
@server_options
def review_sample(tagged_path, n, by, seed, out, project, codebook_path, model_dir, text_col, id_col, encoding,
                  sheet, url, api_key) -> None:
    """Draw a random audit sample of answers to code blind, to measure the model on a wave.

    Draws from answered answers nobody has reviewed yet and, with --model, that the model was not
    trained on. The sheet shows no suggestions, scores or model columns: reviewers who see a suggestion
    tend to accept it. Every row records the design in 'audit_sample'; train leaves such rows out.

    \b
    Example:
      opm-nlp review sample tagged.csv --n 150 --by wave --model models/opm_default --out audit.xlsx
    """
    from opm_nlp.io.paths import check_distinct
    from opm_nlp.io.tables import read_table
    from opm_nlp.review.audit import draw_audit_sample, write_audit

    if out is None and project is None:
        raise click.UsageError("Pass --out audit.xlsx (a sheet to code) or --project NAME (Label Studio), or both.")
    if out is not None:
        check_distinct([tagged_path, codebook_path], out)
    cb, metadata = codebook_or_model(codebook_path, model_dir)
    sample = draw_audit_sample(read_table(tagged_path, encoding=encoding, sheet=sheet), cb, n, text_col=text_col,
                               id_col=id_col, by=by, seed=seed, metadata=metadata, source=str(tagged_path))
    pushed = None
    if project is not None:  # before writing anything: a refused project leaves no half-done audit
        from opm_nlp.review.audit_labelstudio import push_audit
        from opm_nlp.review.labelstudio_server import connect

        pushed = push_audit(connect(url, api_key), sample, cb, project)
    if out is not None:
        write_audit(sample, cb, out)
    click.echo(f"Audit sample: {sample.description}.")
    if by is not None:
        strata = sample.strata
        click.echo(f"Allocation by {by} (sampled of eligible): " + ", ".join(
            f"{group}: {taken} of {size}" for group, taken, size in zip(strata[by], strata["sampled"], strata["eligible"]))
            + ".")
    click.echo(f"Seed {sample.seed}: pass --seed {sample.seed} to draw the same answers again.")
    if metadata is None:
        click.echo("Without --model, answers the model was trained on may be drawn; pass --model to leave them out.")
    elif "training_ids" not in metadata:
        click.echo("The model folder keeps no training ids (trained before opm-nlp recorded them), so answers it "
                   "was trained on may be drawn; retrain it to record them, or draw from a wave it was not trained on.")
    if out is not None:
        click.echo(f"Wrote {len(sample.frame)} answers to {out}: code them blind (no suggestions shown), put 1 in "
                   f"'reviewed' on each row coded.")
    if pushed is not None:
        click.echo(f"Project '{project}' (id {pushed.project_id}, {'created' if pushed.created_project else 'existing'},"
                   f" blind): added {pushed.added} answers, {pushed.already_there} were already there. Code them at "
                   f"{pushed.url}")


@review.command("next")
@click.argument("pool_path", metavar="POOL", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--n", "n", required=True, type=click.IntRange(1), help="Answers to pick.")
@click.option("--model", "model_dir", default=None, type=click.Path(path_type=Path),
              help="Model folder trained on the answers coded so far (answers it was trained on are not picked).")
@click.option("--codebook", "codebook_path", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Codebook YAML file, for a first batch before any model: answers near each code's definition "
                   "and spread over the rest.")
@click.option("--coded", "coded_paths", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A file of answers coded already (repeatable): its ids are not picked. Needs the pool's id "
                   "column.")
@click.option("--with-suggestions", is_flag=True,
              help="Pre-fill the model's codes to correct (default: blind, empty code columns).")
@click.option("--seed", default=None, type=click.IntRange(0),
              help="Seed of the pick: the same seed picks the same answers (default: a random seed, printed).")
@click.option("--out", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Sheet to write: .xlsx (a coding workbook), or .csv/.parquet.")
@click.option("--project", default=None, help="Also (or instead) send the batch to this Label Studio project "
                                              "(created if it does not exist).")
@_UPDATE_CONFIG
@tagged_options
@sheet_option
@server_options
def review_next(pool_path, n, model_dir, codebook_path, coded_paths, with_suggestions, seed, out, project,
                update_config, text_col, id_col, encoding, sheet, url, api_key) -> None:
    """Pick the answers to code next: those whose codes would teach the model most.

    From answers nobody has coded (not reviewed, not in --coded files, not trained on, not in an audit
    sample), picks N the model is unsure about, rare codes first, spread over what people wrote. With
    --codebook instead of --model (no model yet) it picks answers near each code's definition and
    spread over the rest. Blind by default: the sheet shows no suggestion. The filled sheet is
    training data: opm-nlp train --data next.xlsx ...

    \b
    Example:
      opm-nlp review next wave2022.csv --n 100 --model models/opm_default --out next.xlsx
    """
    from opm_nlp.io.paths import check_distinct
    from opm_nlp.io.tables import read_table
    from opm_nlp.review.next_batch import pick_next_batch, write_next_batch

    if out is None and project is None:
        raise click.UsageError("Pass --out next.xlsx (a sheet to code) or --project NAME (Label Studio), or both.")
    if (model_dir is None) == (codebook_path is None):
        raise click.UsageError("Pass --model MODEL_DIR (trained on the answers coded so far) or, before any model, "
                               "--codebook CODEBOOK; not both.")
    if out is not None:
        check_distinct([pool_path, codebook_path, *coded_paths], out)
    cb, metadata, model = _codebook_and_model(codebook_path, model_dir)
    coded = [(read_table(path, encoding=encoding, sheet=sheet), str(path)) for path in coded_paths]
    batch = pick_next_batch(read_table(pool_path, encoding=encoding, sheet=sheet), cb, n, model=model, coded=coded,
                            text_col=text_col, id_col=id_col, seed=seed, with_suggestions=with_suggestions,
                            source=str(pool_path))
    pushed = None
    if project is not None:  # before writing anything: a refused project leaves no half-done batch
        from opm_nlp.review.common import decision_rule_of, model_version
        from opm_nlp.review.labelstudio_server import connect
        from opm_nlp.review.next_labelstudio import push_next

        pushed = push_next(connect(url, api_key), batch, cb, project, model_version(cb, metadata),
                           decision_rule_of(cb, metadata), update_config=update_config)
    if out is not None:
        write_next_batch(batch, cb, out)
    click.echo(f"Next batch: {batch.description}.")
    click.echo(f"Seed {batch.seed}: pass --seed {batch.seed} to pick the same answers again.")
    if metadata is not None and "training_ids" not in metadata and not coded_paths:
        click.echo("The model folder keeps no training ids, so answers it was trained on may be picked; pass the "
                   "coded files with --coded.")
    how = "code them (the model's codes are pre-filled: correct them)" if with_suggestions else \
        "code them blind (no suggestions shown)"
    if out is not None:
        click.echo(f"Wrote {len(batch.frame)} answers to {out}: {how}, put 1 in 'reviewed' on each row coded, "
                   f"then train with it: opm-nlp train ... --data {out}")
    if pushed is not None:
        click.echo(f"Project '{project}' (id {pushed.project_id}, {'created' if pushed.created_project else 'existing'}"
                   f"{'' if with_suggestions else ', blind'}): added {pushed.added} answers, {pushed.already_there} "
                   f"were already there. Code them at {pushed.url}")


def _codebook_and_model(codebook_path, model_dir):
    """(codebook, metadata, model) from --codebook (no model) or --model (a trained embedding model)."""
    if model_dir is None:
        from opm_nlp.codebook.codes import load_codebook

        return load_codebook(codebook_path), None, None
    from opm_nlp.cli.common import check_model_folder
    from opm_nlp.exceptions import ModelError
    from opm_nlp.model.coding_model import CodingModel

    check_model_folder(model_dir)
    model = CodingModel.load(model_dir)
    if model.method != "embedding":
        raise ModelError(f"{model_dir} is a keyword model, which learns nothing from coded answers, so no answer "
                         f"would teach it more. Pass --codebook {model_dir / 'codebook.yaml'} to pick a first batch "
                         f"for an embedding model.")
    return model.codebook, model.metadata, model


@review.command("stats")
@click.argument("reviewed_path", metavar="REVIEWED", type=click.Path(dir_okay=False, path_type=Path))
@review_codebook_options
@click.option("--encoding", default=None,
              help="Text encoding of CSV input (default: detect UTF-8, UTF-8 with BOM, cp1252).")
@sheet_option
def review_stats(reviewed_path, codebook_path, model_dir, encoding, sheet) -> None:
    """How often reviewers accepted or changed the model's codes, per code (kappa, kept, added, removed).

    Reads a file from `review pull` or a filled `review sheet`; only rows marked reviewed=1 count.
    Reviewers who see suggestions tend to accept them, so read this as an upper bound of agreement.

    \b
    Example:
      opm-nlp review stats review.xlsx --model models/opm_default
    """
    from opm_nlp.io.tables import read_table
    from opm_nlp.review.common import format_agreement, review_agreement

    cb, _ = codebook_or_model(codebook_path, model_dir)
    table, summary = review_agreement(read_table(reviewed_path, encoding=encoding, sheet=sheet), cb,
                                      source=str(reviewed_path))
    click.echo(format_agreement(table, summary))
