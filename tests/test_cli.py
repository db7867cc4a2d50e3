import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from opm_nlp.cli.main import cli

from .conftest import CODEBOOK, CODED, NEW_WAVE, ROOT

COLS = ["--text-col", "answer", "--id-col", "response_id"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def all_commands(group=cli, prefix=()):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from all_commands(command, prefix + (name,))
        else:
            yield prefix + (name,)


@pytest.mark.parametrize("command", list(all_commands()), ids=" ".join)
def test_every_command_has_help_with_an_example(command):
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert re.search(r"Examples?:", result.output) and "opm-nlp " + " ".join(command) in result.output


def test_python_m_and_help_do_not_import_torch():
    code = ("import sys; from opm_nlp.cli.main import main; sys.argv=['opm-nlp','--help'];\n"
            "try: main()\nexcept SystemExit: pass\n"
            "assert 'torch' not in sys.modules and 'sklearn' not in sys.modules, 'heavy import at start-up'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    result = subprocess.run([sys.executable, "-m", "opm_nlp", "--help"], capture_output=True, text=True, check=True)
    assert "Suggest codes for new answers" in result.stdout


def test_codebook_validate_lists_codes_as_a_tree():
    result = run("codebook", "validate", CODEBOOK)
    assert result.exit_code == 0
    assert "valid codebook 'OPM behaviour change' version 1.0, 12 codes" in result.output
    assert "\n    relationship_phases: Phases of the relationship" in result.output


def test_invalid_codebook_is_one_line_and_exit_1(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncodes:\n  - id: a\n    label: A\n")
    result = run("codebook", "validate", bad)
    assert result.exit_code == 1
    assert result.output == f"Error: {bad}, code #1 (line 3) 'a': missing 'definition'. Every code needs a label and a definition.\n"


def test_train_tag_evaluate_round_trip(tmp_path, trained_dir):
    small = pd.read_csv(CODED, dtype=str).head(60)
    small.to_csv(tmp_path / "coded.csv", index=False)
    out = tmp_path / "kw"
    result = run("train", "--codebook", CODEBOOK, "--data", tmp_path / "coded.csv", *COLS, "--out", out,
                 "--method", "keyword", "--quiet")
    assert result.exit_code == 0, result.output
    assert f"Model written to {out}" in result.output

    tagged_path = tmp_path / "tagged.xlsx"
    result = run("tag", trained_dir, NEW_WAVE, *COLS, "--out", tagged_path, "--quiet")
    assert result.exit_code == 0, result.output
    assert "Tagged 175 answers (3 empty);" in result.output
    tagged = pd.read_excel(tagged_path, dtype={"response_id": str})
    source = pd.read_csv(NEW_WAVE, dtype=str, keep_default_na=False)
    assert tagged["response_id"].tolist() == source["response_id"].tolist()
    assert {"wave", "institution", "role", "aligning_expectations", "score_aligning_expectations",
            "suggested_codes", "needs_review"} <= set(tagged.columns)

    report = tmp_path / "eval.json"
    result = run("evaluate", trained_dir, "--data", CODED, *COLS, "--second-coder", tmp_path / "coded.csv",
                 "--json", report)
    assert result.exit_code == 0, result.output
    assert "Model vs opm_coded_illustrative.csv: 387 answers" in result.output
    assert re.search(r"Micro-F1 0\.\d{3} \(95% interval 0\.\d{3}-[01]\.\d{3}\), macro-F1 0\.\d{3} "
                     r"\(0\.\d{3}-[01]\.\d{3}\): how much they depend on which 387 answers were coded", result.output)
    assert "On the 60 answers both people coded" in result.output
    figures = json.loads(report.read_text())
    assert figures["kappa_comparison"]["aligning_expectations"]["kappa_human_human"] == 1.0
    assert 0 < figures["model_vs_human"]["macro"]["f1"] <= 1
    low, high = figures["f1_intervals"]["macro"]
    assert low <= figures["model_vs_human"]["macro"]["f1"] <= high


def test_train_reports_combined_files_and_changed_labels(tmp_path):
    first = pd.read_csv(CODED, dtype=str).head(40)
    second = first.head(5).copy()
    second["structure"] = "1"
    first.to_csv(tmp_path / "a.csv", index=False)
    second.to_csv(tmp_path / "b.csv", index=False)
    changed = int((first.head(5)["structure"] != "1").sum())
    result = run("train", "--codebook", CODEBOOK, "--data", tmp_path / "a.csv", "--data", tmp_path / "b.csv",
                 *COLS, "--out", tmp_path / "m", "--method", "keyword")
    assert result.exit_code == 0, result.output
    assert (f"Combined 2 files: 40 answers; later files added 0 answers and coded 5 of the earlier files' answers "
            f"again ({changed} labels changed).") in result.output
    # a later file of new answers adds them: its labels change nothing, and the line says so
    pd.read_csv(CODED, dtype=str).iloc[40:50].to_csv(tmp_path / "c.csv", index=False)
    result = run("train", "--codebook", CODEBOOK, "--data", tmp_path / "a.csv", "--data", tmp_path / "c.csv",
                 *COLS, "--out", tmp_path / "m", "--method", "keyword")
    assert result.exit_code == 0, result.output
    assert ("Combined 2 files: 50 answers; later files added 10 answers and coded 0 of the earlier files' answers "
            "again (0 labels changed).") in result.output


@pytest.mark.parametrize("args, message", [
    (["tag", "{model}", NEW_WAVE, "--text-col", "text", "--id-col", "response_id", "--out", "{tmp}/o.csv"],
     "Error: Column 'text' not found in {new}. Columns: ['response_id', 'answer', 'wave', 'institution', 'role']. "
     "Pass --text-col with the column that holds the answers.\n"),
    (["tag", "{tmp}", NEW_WAVE, *COLS, "--out", "{tmp}/o.csv"],
     "Error: {tmp} is not a model folder (no metadata.json). A model folder is a folder written by 'opm-nlp train' "
     "(it holds metadata.json, codebook.yaml and the classifier), e.g. models/opm_default.\n"),
    (["tag", "{model}", NEW_WAVE, *COLS, "--out", "{tmp}/o.docx"],
     "Error: {tmp}/o.docx: unsupported file type '.docx'. Use .csv, .tsv, .xlsx or .parquet.\n"),
    (["train", "--codebook", CODEBOOK, "--data", NEW_WAVE, *COLS, "--out", "{tmp}/m"],
     "Error: {new}: no code columns found. Expected one 0/1 column per code, named by its id"),
])
def test_user_errors_are_one_line_without_traceback(tmp_path, trained_dir, args, message):
    fill = {"model": trained_dir, "tmp": tmp_path, "new": NEW_WAVE}
    result = run(*[str(a).format(**fill) for a in args])
    assert result.exit_code == 1
    assert result.output.startswith(message.format(**fill))
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "o.docx").exists()


def test_demo_writes_tagged_table_and_frequencies(tmp_path):
    result = run("demo", "--out", tmp_path / "d", "--quiet")
    assert result.exit_code == 0, result.output
    assert "invented answers, not study data" in result.output
    tagged = pd.read_csv(tmp_path / "d" / "tagged.csv")
    frequencies = pd.read_csv(tmp_path / "d" / "theme_frequencies.csv")
    assert len(tagged) == 175
    assert frequencies.set_index("code")["respondents"].to_dict() == {
        c: int(tagged[c].sum()) for c in frequencies["code"]}


def test_default_model_matches_the_shipped_codebook(codebook):
    from opm_nlp.model.coding_model import CodingModel

    model = CodingModel.load(ROOT / "models" / "opm_default", codebook=codebook)
    assert model.metadata["training"]["sources"] == [CODED.name]


def test_context_column_is_recorded_and_required_for_tagging(tmp_path):
    coded = pd.read_csv(CODED, dtype=str).head(80)
    coded["question"] = "What will you change?"
    coded.to_csv(tmp_path / "coded.csv", index=False)
    result = run("train", "--codebook", CODEBOOK, "--data", tmp_path / "coded.csv", *COLS, "--out", tmp_path / "m",
                 "--context-col", "question", "--quiet")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "m" / "metadata.json").read_text())["context_col"] == "question"
    result = run("tag", tmp_path / "m", NEW_WAVE, *COLS, "--out", tmp_path / "t.csv", "--quiet")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: Context column 'question' not found in {NEW_WAVE}. Columns: [")
    assert not (tmp_path / "t.csv").exists()


def test_train_from_the_codebook_alone_then_tag(tmp_path, codebook):
    out = tmp_path / "zero"
    result = run("train", "--codebook", CODEBOOK, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    assert "from the codebook alone" in result.output
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["training"]["answers"] == 0 and meta["cv_metrics"] is None
    assert meta["training"]["codebook_examples"] == len(codebook.examples())
    card = (out / "README.md").read_text()
    assert "and on the codebook's" in card and "not calibrated on real answers" in card
    result = run("tag", out, NEW_WAVE, *COLS, "--out", tmp_path / "t.csv", "--quiet")
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "t.csv")["suggested_codes"].notna().sum() > 0


def test_training_without_codebook_examples_is_recorded(tmp_path):
    out = tmp_path / "m"
    result = run("train", "--codebook", CODEBOOK, "--data", CODED, *COLS, "--out", out, "--quiet",
                 "--no-codebook-examples")
    assert result.exit_code == 0, result.output
    assert "learning codes" not in result.output and "%|" not in result.output, "--quiet shows no progress bars"
    assert re.search(r"Cross-validated micro-F1 0\.\d{3} \(95% interval 0\.\d{3}-0\.\d{3}\), "
                     r"macro-F1 0\.\d{3} \(0\.\d{3}-0\.\d{3}\) \(5-fold", result.output), result.output
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["training"]["codebook_examples"] == 0
    # when to stop: what more coding is likely to add, printed and kept in the folder and its card
    assert re.search(r"More coding: 100 more coded answers are likely to add [+-]\d\.\d{3} micro-F1", result.output)
    assert meta["forecast"]["n_answers"] > 300 and set(meta["forecast"]["gains"]) == {"100", "500"}
    assert 0 <= meta["forecast"]["seconds"] <= meta["forecast"]["training_seconds"] / 5 + 2  # cheap beside training
    assert "## When to stop coding" in (out / "README.md").read_text()
    result = run("train", "--codebook", CODEBOOK, "--data", CODED, "--out", out)
    assert result.exit_code == 2 and "--text-col and --id-col are required with --data" in result.output


def test_one_coded_answer_trains_and_evaluates_without_an_interval(tmp_path, trained_dir):
    pd.read_csv(CODED, dtype=str).head(1).to_csv(tmp_path / "one.csv", index=False)
    result = run("train", "--codebook", CODEBOOK, "--data", tmp_path / "one.csv", *COLS, "--out", tmp_path / "m",
                 "--quiet")
    assert result.exit_code == 0, result.output
    assert re.search(r"Cross-validated micro-F1 \d\.\d{3}, macro-F1 \d\.\d{3} \(\d-fold", result.output), result.output
    assert json.loads((tmp_path / "m" / "metadata.json").read_text())["cv_metrics"]["micro_f1_interval"] == [None, None]
    result = run("evaluate", trained_dir, "--data", tmp_path / "one.csv", *COLS)
    assert result.exit_code == 0, result.output
    assert "1 answers" in result.output and "interval" not in result.output and "nan" not in result.output


def test_evaluate_shows_progress_on_many_answers_unless_quiet(tmp_path, trained_dir):
    coded = pd.read_csv(CODED, dtype=str)
    many = pd.concat([coded.assign(response_id=coded["response_id"] + f"-{k}") for k in range(3)])  # 1,161
    many.to_csv(tmp_path / "many.csv", index=False)
    result = run("evaluate", trained_dir, "--data", tmp_path / "many.csv", *COLS)
    assert result.exit_code == 0, result.output
    answered = int(many["answer"].fillna("").str.strip().ne("").sum())  # empty answers are not tagged
    assert "tagging: 100%|" in result.output and f"{answered}/{answered}" in result.output
    result = run("evaluate", trained_dir, "--data", tmp_path / "many.csv", *COLS, "--quiet")
    assert result.exit_code == 0, result.output
    assert "tagging" not in result.output and f"Model vs many.csv: {len(many)} answers" in result.output


def test_review_margin_is_set_at_training_and_routes_answers(tmp_path, codebook):
    out = tmp_path / "m"
    result = run("train", "--codebook", CODEBOOK, "--data", CODED, *COLS, "--out", out, "--quiet",
                 "--review-margin", "0.05")
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["review_margin"] == 0.05
    result = run("tag", out, NEW_WAVE, *COLS, "--out", tmp_path / "t.csv", "--quiet")
    assert result.exit_code == 0, result.output
    tagged = pd.read_csv(tmp_path / "t.csv", keep_default_na=False)
    scores = tagged[[f"score_{c}" for c in codebook.ids]].apply(pd.to_numeric, errors="coerce").to_numpy()
    # how far each score is from flipping its decision under the model's rule (its thresholds, cap, ...)
    from opm_nlp.classify.decision import rule_of, suggest
    from opm_nlp.model.coding_model import CodingModel

    distance = np.nan_to_num(suggest(rule_of(CodingModel.load(out).classifier), scores)[1], nan=np.inf)
    near = (distance < 0.05).any(axis=1)
    empty = tagged["answer"].str.strip().eq("")  # empty answers always go to a person
    assert 0 < tagged["needs_review"].sum() < len(tagged)
    assert (tagged["needs_review"].astype(bool) == (near | empty)).all()
    assert run("train", "--codebook", CODEBOOK, "--out", out, "--review-margin", "2").exit_code == 2
    # a wider margin for one run routes more answers to people, without retraining
    result = run("tag", out, NEW_WAVE, *COLS, "--out", tmp_path / "wide.csv", "--quiet", "--review-margin", "0.3")
    assert result.exit_code == 0, result.output
    wide = pd.read_csv(tmp_path / "wide.csv", keep_default_na=False)
    near = (distance < 0.3).any(axis=1)
    assert (wide["needs_review"].astype(bool) == (near | empty)).all()
    assert wide["needs_review"].sum() > tagged["needs_review"].sum()
    assert f"{wide['needs_review'].sum()} need review" in result.output
    assert run("tag", out, NEW_WAVE, *COLS, "--out", tmp_path / "x.csv", "--review-margin", "-1").exit_code == 2


def test_embedding_layers_are_chosen_at_training_and_checked(tmp_path):
    out = tmp_path / "m"
    result = run("train", "--codebook", CODEBOOK, "--data", CODED, *COLS, "--out", out, "--quiet",
                 "--embedding-layers", "1")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "metadata.json").read_text())["embedding"]["layers"] == 1
    assert "its last" not in (out / "README.md").read_text()
    result = run("tag", out, NEW_WAVE, *COLS, "--out", tmp_path / "t.csv", "--quiet")
    assert result.exit_code == 0, result.output
    result = run("train", "--codebook", CODEBOOK, "--data", CODED, *COLS, "--out", tmp_path / "m9",
                 "--embedding-layers", "9")
    assert result.exit_code == 1
    assert result.output == ("Error: layers=9, but the embedding model 'all-MiniLM-L6-v2' has 6 layers. "
                             "Use at most 6.\n")
    assert not (tmp_path / "m9").exists()


def test_keyword_model_from_the_codebook_alone(tmp_path):
    out = tmp_path / "kw"
    result = run("train", "--codebook", CODEBOOK, "--out", out, "--method", "keyword")
    assert result.exit_code == 0, result.output
    assert result.output == f"Model written to {out} (from the codebook's keywords; no cross-validated figures).\n"
    card = (out / "README.md").read_text()
    assert "from the codebook's keywords, with no coded answers" in card and "Not checked against coded answers" in card
    result = run("tag", out, NEW_WAVE, *COLS, "--out", tmp_path / "t.csv", "--quiet")
    assert result.exit_code == 0, result.output


def test_fine_tuned_model_is_trained_recorded_and_tags(tmp_path, monkeypatch):
    from opm_nlp.classify import finetune

    monkeypatch.setattr(finetune, "MIN_ANSWERS", 300)  # the default fine-tunes from this many answers
    out = tmp_path / "ft"
    result = run("train", "--codebook", CODEBOOK, "--data", CODED, *COLS, "--out", out)
    assert result.exit_code == 0, result.output
    assert "fine-tuning the embedding network too" in result.output
    # minutes of training show where they go: a bar for each network, its scoring, and the codes
    for step in ("fine-tuning network 1 of 3", "scoring with network 1", "fine-tuning network 2 of 3",
                 "scoring with network 2", "fine-tuning network 3 of 3", "learning codes"):
        assert re.search(rf"{step}: 100%", result.stderr), step
    assert re.search(r"learning codes: 100%.*\b12/12\b", result.stderr)
    embedding = json.loads((out / "metadata.json").read_text())["embedding"]
    assert embedding["fine_tune_epochs"] == 2 and embedding["fine_tune_int8"] is True
    card = (out / "README.md").read_text()
    assert "fine-tuned on the coded answers (2 epochs)" in card and "Tagging runs that network too (ONNX, int8)" in card
    result = run("tag", out, NEW_WAVE, *COLS, "--out", tmp_path / "t.csv", "--quiet")
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(tmp_path / "t.csv")) == len(pd.read_csv(NEW_WAVE))
    result = run("train", "--codebook", CODEBOOK, "--out", tmp_path / "kw", "--method", "keyword", "--fine-tune")
    assert result.exit_code == 2 and "--fine-tune applies to --method embedding only" in result.output
    assert not (tmp_path / "kw").exists()
    result = run("train", "--codebook", CODEBOOK, "--out", tmp_path / "kw", "--method", "keyword", "--no-fine-tune")
    assert result.exit_code == 0, result.output


def test_cache_info_and_clear_delete_only_what_opm_nlp_wrote(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("OPM_NLP_CACHE_DIR", str(root))
    for path, size in [("embeddings/a.sqlite", 1000), ("fine-tuned/abc/model.safetensors", 2000),
                       ("onnx/k/model.onnx", 500)]:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(b"x" * size)
    (root / "notes.txt").write_text("not ours")
    (root / ".deleting-old" / "onnx").mkdir(parents=True)  # left by an interrupted clear
    result = run("cache", "info")
    assert result.exit_code == 0
    assert f"Cache folder: {root}" in result.output and "Total 3.5 kB." in result.output
    assert re.search(r"\n  fine-tuned +1 entries +2\.0 kB  networks fine-tuned", result.output)
    result = CliRunner().invoke(cli, ["cache", "clear"], input="n\n")
    assert result.exit_code == 1 and "Delete 3.5 kB of cached embeddings and networks" in result.output
    assert (root / "embeddings" / "a.sqlite").is_file()
    result = run("cache", "clear", "--yes")
    assert result.exit_code == 0 and "Cache cleared: 3.5 kB freed" in result.output
    assert sorted(p.name for p in root.iterdir()) == ["notes.txt"]
    assert "Total 0 B." in run("cache", "info").output


def test_cache_clear_that_cannot_delete_is_one_line(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    (root / "onnx" / "k").mkdir(parents=True)
    monkeypatch.setenv("OPM_NLP_CACHE_DIR", str(root))

    def refuse(*args):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("opm_nlp.embedding.cache.os.replace", refuse)
    result = CliRunner().invoke(cli, ["cache", "clear", "--yes"])
    assert result.exit_code == 1
    assert result.output == (f"Error: Could not delete {root / 'onnx'}: Permission denied. Check that no other "
                             "opm-nlp command is running and that you may write there, then run 'opm-nlp cache "
                             "clear' again.\n")
    assert (root / "onnx" / "k").is_dir() and sorted(p.name for p in root.iterdir()) == ["onnx"]


# -- an output never replaces an input ------------------------------------------------------------
@pytest.mark.parametrize("args, output, input_", [
    (["tag", "{model}", "{tmp}/in.csv", *COLS, "--carry", "wave", "--out", "{tmp}/in.csv"], "{tmp}/in.csv", "{tmp}/in.csv"),
    (["tag", "{model}", "{tmp}/in.csv", *COLS, "--out", "{tmp}/link.csv"], "{tmp}/link.csv", "{tmp}/in.csv"),
    (["review", "sheet", "{tmp}/in.xlsx", "--model", "{model}", "--out", "{tmp}/in.xlsx"], "{tmp}/in.xlsx", "{tmp}/in.xlsx"),
    (["export", "qdpx", "{tmp}/in.csv", "--codebook", "{tmp}/cb.yaml", "--out", "{tmp}/cb.yaml"], "{tmp}/cb.yaml",
     "{tmp}/cb.yaml"),
    (["codebook", "export", "{tmp}/cb.yaml", "--format", "qdc", "--out", "{tmp}/cb.yaml"], "{tmp}/cb.yaml", "{tmp}/cb.yaml"),
    (["codebook", "import", "{tmp}/in.csv", "--out", "{tmp}/in.csv"], "{tmp}/in.csv", "{tmp}/in.csv"),
    (["report", "{tmp}/report.html", "--codebook", "{tmp}/cb.yaml", "--out", "{tmp}"], "{tmp}/report.html",
     "{tmp}/report.html"),
    (["report", "{tmp}/in.csv", "--codebook", "{tmp}/cb.yaml", "--out", "{tmp}/in.csv"], "{tmp}/in.csv", "{tmp}/in.csv"),
    (["evaluate", "{model}", "--data", "{tmp}/in.csv", *COLS, "--json", "{tmp}/in.csv"], "{tmp}/in.csv", "{tmp}/in.csv"),
])
def test_an_output_that_is_an_input_is_refused_and_the_input_kept(tmp_path, trained_dir, args, output, input_):
    (tmp_path / "in.csv").write_bytes(NEW_WAVE.read_bytes())
    (tmp_path / "link.csv").symlink_to("in.csv")
    (tmp_path / "report.html").write_bytes(NEW_WAVE.read_bytes())
    (tmp_path / "cb.yaml").write_bytes(CODEBOOK.read_bytes())
    pd.read_csv(NEW_WAVE, dtype=str).to_excel(tmp_path / "in.xlsx", index=False)
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    fill = {"model": trained_dir, "tmp": tmp_path}
    result = run(*[str(a).format(**fill) for a in args])
    assert result.exit_code == 1
    assert result.output == (f"Error: The output {output.format(**fill)} is the input file {input_.format(**fill)}; "
                             f"writing it would replace the input. Pass another {'--json' if '--json' in args else '--out'}.\n")
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before


def test_train_refuses_an_output_folder_that_holds_its_data(tmp_path):
    out = tmp_path / "m"
    out.mkdir()
    data = out / "coded.csv"
    data.write_bytes(CODED.read_bytes())
    result = run("train", "--codebook", CODEBOOK, "--data", data, *COLS, "--out", out, "--method", "keyword")
    assert result.exit_code == 1
    assert result.output == (f"Error: The input {data} is inside the output folder {out}, which is written as a "
                             f"whole; writing it would delete the input. Move the input, or pass another --out.\n")
    assert data.read_bytes() == CODED.read_bytes()


# -- training needs coded answers when files are given ---------------------------------------------
def test_train_on_files_without_coded_answers_is_refused(tmp_path):
    review = pd.read_csv(CODED, dtype=str, keep_default_na=False).head(12)
    review["reviewed"] = ""
    review.to_excel(tmp_path / "review.xlsx", index=False)
    empty = pd.read_csv(CODED, dtype=str, keep_default_na=False).head(3)
    empty["answer"] = ""
    empty.to_csv(tmp_path / "empty.csv", index=False)
    out = tmp_path / "m"
    result = run("train", "--codebook", CODEBOOK, "--data", tmp_path / "review.xlsx", *COLS, "--out", out)
    assert result.exit_code == 1
    assert result.output == (f"Error: No coded answers to train on ({tmp_path / 'review.xlsx'}: none of its 12 rows "
                             f"is marked reviewed=1). Put 1 in 'reviewed' for the rows people have checked, or leave "
                             f"out --data to train from the codebook alone.\n")
    result = run("train", "--codebook", CODEBOOK, "--data", tmp_path / "review.xlsx", "--data", tmp_path / "empty.csv",
                 *COLS, "--out", out)
    assert result.exit_code == 1
    assert result.output == (f"Error: No coded answers to train on ({tmp_path / 'review.xlsx'}: none of its 12 rows "
                             f"is marked reviewed=1; {tmp_path / 'empty.csv'}: all 3 answers in 'answer' are empty). "
                             f"Put 1 in 'reviewed' for the rows people have checked, or check that 'answer' is the "
                             f"column of answers (--text-col), or leave out --data to train from the codebook alone.\n")
    assert not out.exists()


# -- --sheet -------------------------------------------------------------------------------------------
@pytest.fixture()
def two_sheets(tmp_path):
    """A workbook whose answers are on its second sheet, after a note, as survey tools export them."""
    path = tmp_path / "answers.xlsx"
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"About this export": ["Survey X, wave 2022"]}).to_excel(writer, sheet_name="About", index=False)
        pd.read_csv(CODED, dtype=str, keep_default_na=False).head(30).to_excel(writer, sheet_name="answers",
                                                                              index=False)
    return path


def test_answers_on_a_second_sheet_are_read_with_sheet(tmp_path, trained_dir, two_sheets):
    hint = "The file has sheets ['About', 'answers']; pass --sheet to read another."
    result = run("tag", trained_dir, two_sheets, *COLS, "--out", tmp_path / "t.csv", "--quiet")
    assert result.exit_code == 1
    assert result.output == (f"Error: Column 'response_id' not found in {two_sheets}. Columns: ['About this export']. "
                             f"Pass --id-col with the column that identifies each response. {hint}\n")
    result = run("tag", trained_dir, two_sheets, *COLS, "--sheet", "answer", "--out", tmp_path / "t.csv", "--quiet")
    assert result.output == (f"Error: {two_sheets}: no sheet 'answer'; the file has sheets ['About', 'answers']. "
                             f"Pass one of them to --sheet.\n")
    result = run("tag", trained_dir, two_sheets, *COLS, "--sheet", "answers", "--out", tmp_path / "t.csv", "--quiet")
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "t.csv").shape[0] == 30

    result = run("train", "--codebook", CODEBOOK, "--data", two_sheets, *COLS, "--out", tmp_path / "m",
                 "--method", "keyword")
    assert result.exit_code == 1 and result.output.endswith(f"Columns: ['About this export'].{' ' + hint}\n")
    result = run("train", "--codebook", CODEBOOK, "--data", two_sheets, "--sheet", "answers", *COLS,
                 "--out", tmp_path / "m", "--method", "keyword", "--quiet")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "m" / "metadata.json").read_text())["training"]["answers"] == 30

    result = run("report", two_sheets, "--codebook", CODEBOOK, "--out", tmp_path / "r")
    assert result.output == (f"Error: {two_sheets}: expected at least an id and a text column, found "
                             f"['About this export']. Pass --id-col and --text-col. {hint}\n")
    result = run("report", two_sheets, "--codebook", CODEBOOK, "--sheet", "answers", "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    assert f"{two_sheets.name}: answers in 'answer', ids in 'response_id'." in result.output
    result = run("export", "qdpx", two_sheets, "--codebook", CODEBOOK, "--sheet", "answers", "--out", tmp_path / "p.qdpx")
    assert result.exit_code == 0 and "30 answers from 'answer'" in result.output, result.output
    result = run("evaluate", trained_dir, "--data", two_sheets, "--sheet", "answers", *COLS, "--quiet")
    assert result.exit_code == 0 and "30 answers" in result.output, result.output


@pytest.mark.parametrize("command", [("train",), ("tag",), ("evaluate",), ("report",), ("review", "sheet"),
                                     ("review", "push"), ("review", "stats"), ("export", "qdpx")])
def test_every_command_that_reads_a_table_has_sheet(command):
    assert "--sheet" in run(*command, "--help").output


# -- a codebook where a model folder is expected --------------------------------------------------
@pytest.mark.parametrize("args", [
    ["tag", "{path}", NEW_WAVE, *COLS, "--out", "{tmp}/o.csv"],
    ["evaluate", "{path}", "--data", CODED, *COLS],
    ["review", "sheet", "{tagged}", "--model", "{path}", "--out", "{tmp}/r.xlsx"],
])
def test_a_codebook_given_as_the_model_says_what_a_model_folder_is(tmp_path, args):
    what = ("A model folder is a folder written by 'opm-nlp train' (it holds metadata.json, codebook.yaml and the "
            "classifier), e.g. models/opm_default.")
    train = "opm-nlp train --codebook {} --data CODED --text-col ... --id-col ... --out models/NAME"
    (tmp_path / "tagged.csv").write_text("response_id,answer\nR1,x\n")
    fill = {"tmp": tmp_path, "tagged": tmp_path / "tagged.csv"}
    result = run(*[str(a).format(path=CODEBOOK, **fill) for a in args])
    assert result.exit_code == 1
    assert result.output == f"Error: {CODEBOOK} is a codebook, not a model folder. {what} Train one from this codebook " \
                            f"with: {train.format(CODEBOOK)}\n"
    result = run(*[str(a).format(path=CODEBOOK.parent, **fill) for a in args])
    assert result.exit_code == 1
    assert result.output == (f"Error: {CODEBOOK.parent} is a folder of codebooks, not a model folder (no "
                             f"metadata.json). {what} Train one from a codebook with: {train.format(CODEBOOK)}\n")
    result = run(*[str(a).format(path=tmp_path / "nowhere", **fill) for a in args])
    assert result.output == f"Error: Model folder {tmp_path / 'nowhere'} not found. {what}\n"


# -- a guessed id column, and one column given as both ------------------------------------------------
def test_a_wrong_guessed_id_column_says_it_was_guessed_and_names_id_col(tmp_path):
    coded = pd.read_csv(CODED, dtype=str, keep_default_na=False)
    coded[["wave", *[c for c in coded.columns if c != "wave"]]].to_csv(tmp_path / "w.csv", index=False)
    rows = [i + 2 for i in coded.index[coded["wave"] == coded["wave"][0]]]
    more = f"rows {rows[:5]} and {len(rows) - 5} more"
    result = run("report", tmp_path / "w.csv", "--codebook", CODEBOOK, "--out", tmp_path / "r")
    assert result.exit_code == 1
    assert result.output == (f"Error: {tmp_path / 'w.csv'}: column 'wave' was taken as the id column because it comes "
                             f"first, but response id '{coded['wave'][0]}' appears more than once ({more}); 3 ids are "
                             f"repeated. Pass --id-col with the column that identifies each response.\n")
    result = run("report", tmp_path / "w.csv", "--codebook", CODEBOOK, "--out", tmp_path / "r", "--id-col", "wave",
                 "--text-col", "answer")
    assert result.output == (f"Error: {tmp_path / 'w.csv'}: response id '{coded['wave'][0]}' appears more than once "
                             f"({more}); 3 ids are repeated. Ids in 'wave' must be unique.\n")
    result = run("report", tmp_path / "w.csv", "--codebook", CODEBOOK, "--out", tmp_path / "r", *COLS)
    assert result.exit_code == 0, result.output


def test_text_col_equal_to_id_col_is_refused(tmp_path, trained_dir):
    result = run("tag", trained_dir, NEW_WAVE, "--text-col", "answer", "--id-col", "answer", "--out",
                 tmp_path / "t.csv", "--quiet")
    assert result.exit_code == 1
    assert result.output == (f"Error: {NEW_WAVE}: 'answer' is both the id and the answer column. Pass --id-col and "
                             f"--text-col with two different columns.\n")
    assert not (tmp_path / "t.csv").exists()


def test_evaluate_on_a_file_without_coded_answers_is_one_line(tmp_path, trained_dir):
    review = pd.read_csv(CODED, dtype=str, keep_default_na=False).head(6)
    review["reviewed"] = "0"
    review.to_csv(tmp_path / "review.csv", index=False)
    result = run("evaluate", trained_dir, "--data", tmp_path / "review.csv", *COLS, "--quiet")
    assert result.exit_code == 1
    assert result.output == (f"Error: No coded answers to compare with ({tmp_path / 'review.csv'}: none of its 6 rows "
                             f"is marked reviewed=1). Put 1 in 'reviewed' for the rows people have checked.\n")
