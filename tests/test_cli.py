import json
import re
import subprocess
import sys

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
    assert f"Combined 2 files: 40 answers; later files changed {changed} labels." in result.output


@pytest.mark.parametrize("args, message", [
    (["tag", "{model}", NEW_WAVE, "--text-col", "text", "--id-col", "response_id", "--out", "{tmp}/o.csv"],
     "Error: Column 'text' not found in {new}. Columns: ['response_id', 'answer', 'wave', 'institution', 'role']. "
     "Pass --text-col with the column that holds the answers.\n"),
    (["tag", "{tmp}", NEW_WAVE, *COLS, "--out", "{tmp}/o.csv"],
     "Error: {tmp} is not an opm-nlp model folder (no metadata.json). Train one with: opm-nlp train ... --out {tmp}\n"),
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
    assert json.loads((out / "metadata.json").read_text())["training"]["codebook_examples"] == 0
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
    near = (abs(scores - [meta["thresholds"][c] for c in codebook.ids]) < 0.05).any(axis=1)
    empty = tagged["answer"].str.strip().eq("")  # empty answers always go to a person
    assert 0 < tagged["needs_review"].sum() < len(tagged)
    assert (tagged["needs_review"].astype(bool) == (near | empty)).all()
    assert run("train", "--codebook", CODEBOOK, "--out", out, "--review-margin", "2").exit_code == 2
    # a wider margin for one run routes more answers to people, without retraining
    result = run("tag", out, NEW_WAVE, *COLS, "--out", tmp_path / "wide.csv", "--quiet", "--review-margin", "0.3")
    assert result.exit_code == 0, result.output
    wide = pd.read_csv(tmp_path / "wide.csv", keep_default_na=False)
    near = (abs(scores - [meta["thresholds"][c] for c in codebook.ids]) < 0.3).any(axis=1)
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
    assert json.loads((out / "metadata.json").read_text())["embedding"]["fine_tune_epochs"] == 2
    assert "fine-tuned on the coded answers (2 epochs)" in (out / "README.md").read_text()
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
