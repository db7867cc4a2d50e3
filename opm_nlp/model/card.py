"""The model card: a README.md written into every saved model folder."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from opm_nlp.model.coding_model import CodingModel


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.2f}"


def render_model_card(model: CodingModel) -> str:
    """Markdown describing what the model is, what it was trained on and how far to trust it."""
    meta = model.metadata
    codebook = model.codebook
    training = meta["training"]
    cv = meta.get("cv_metrics")
    lines = [
        f"# opm-nlp model: {codebook.name}",
        "",
        f"Suggests codes from the codebook **{codebook.name}** (version {codebook.version or '–'}, "
        f"fingerprint `{meta['codebook']['fingerprint']}`) for free-text survey answers. "
        "Suggestions are for people to review, not final codes.",
        "",
        "## How it works",
    ]
    if model.method == "embedding":
        emb = meta["embedding"]
        layers = int(emb.get("layers", 1))
        pooled = f" (its last {layers} layers, each mean-pooled)" if layers > 1 else ""
        lines += [
            f"- Method: `embedding` — sentence embeddings from `{emb['model']}`{pooled} "
            f"(weights sha256 `{(emb.get('weights_sha256') or 'unknown')[:12]}…`, backend "
            f"`{emb.get('backend', 'torch')}`) and word/character n-grams; per code, one class-weighted logistic "
            "regression on each, stacked into a calibrated probability that also weighs how strongly the other "
            "codes apply; per-code thresholds chosen by cross-validation.",
        ]
        if emb.get("sentences"):
            lines.append("- Answers of several sentences are also scored sentence by sentence with each code's "
                         "embedding regression; the best sentence's score is a further view, so that a theme one "
                         "sentence of a long answer carries is not diluted in the whole answer.")
        epochs = int(emb.get("fine_tune_epochs", 0))
        if epochs:
            lines.append(f"- A further view per code: the embedding network itself fine-tuned on the coded answers "
                         f"({epochs} epochs) with a multi-label head; the stacker learned how far to trust it from "
                         "networks that had not seen the answers they scored. Tagging runs that network too (ONNX, "
                         "float32).")
        if meta.get("context_col"):
            lines.append(f"- Each answer is read with its context from column `{meta['context_col']}` (e.g. the "
                         "survey question); answers to tag need that column.")
    else:
        lines += ["- Method: `keyword` — a stem-word query of each code's keywords (no training)."]
    if model.method == "keyword" and training["answers"] == 0:
        provenance = f"- Built {meta['created']} from the codebook's keywords, with no coded answers."
    else:
        provenance = (
            f"- Trained {meta['created']} on {training['answers']} coded answers"
            + (f" ({training['empty_answers_skipped']} empty answers skipped)" if training["empty_answers_skipped"] else "")
            + (f" from {', '.join(training['sources'])}" if training["sources"] else "")
            + (f", and on the codebook's {training['codebook_examples']} examples and definitions"
               if training.get("codebook_examples") else "") + "."
        )
    lines += [
        provenance,
        f"- An answer is flagged for review when a code's score is within {meta['review_margin']} of its threshold.",
        "",
        "## Codes",
        "",
        "| code | label | training positives | threshold | CV precision | CV recall | CV F1 | CV kappa |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for code in codebook.codes:
        per = (cv or {}).get("per_code", {}).get(code.id, {})
        lines.append(
            f"| `{code.id}` | {code.label} | {training['positives'][code.id]} | "
            f"{meta['thresholds'][code.id]:.2f} | {_fmt(per.get('precision'))} | {_fmt(per.get('recall'))} | "
            f"{_fmt(per.get('f1'))} | {_fmt(per.get('kappa'))} |"
        )
    lines.append("")
    if cv:
        intervals = ""
        if cv.get("micro_f1_interval") and None not in cv["micro_f1_interval"] + cv["macro_f1_interval"]:
            (micro_low, micro_high), (macro_low, macro_high) = cv["micro_f1_interval"], cv["macro_f1_interval"]
            intervals = (f" 95% bootstrap intervals over the {training['answers']} coded answers: micro "
                         f"{_fmt(micro_low)}–{_fmt(micro_high)}, macro {_fmt(macro_low)}–{_fmt(macro_high)} (how "
                         f"much the figures depend on which answers happened to be coded).")
        lines += [
            f"Cross-validated ({cv['folds']}-fold) micro-F1 {_fmt(cv['micro_f1'])}, macro-F1 {_fmt(cv['macro_f1'])}."
            f"{intervals} These are {cv['note']}. Measure agreement on answers the model has not seen with "
            "`opm-nlp evaluate`.",
            "",
        ]
    warnings = []
    if training["answers"] == 0 and model.method == "keyword":
        warnings.append("Not checked against coded answers: see how far to trust it with `opm-nlp evaluate` on "
                        "answers people have coded.")
    elif training["answers"] == 0:
        warnings.append("Trained on the codebook's examples and definitions alone: no coded answers, so no "
                        "cross-validated figures, and scores and thresholds are not calibrated on real answers. "
                        "Use it to get started; review its suggestions and train again on them.")
    elif training["few_examples"]:
        warnings.append(f"Too few coded examples to learn reliably: "
                        f"{', '.join('`' + c + '`' for c in training['few_examples'])}. "
                        "Treat their suggestions with care and code more answers with them.")
    if warnings:
        lines += ["## Warnings", "", *warnings, ""]
    lines += [
        "## Versions",
        "",
        ", ".join(f"{name} {version}" for name, version in meta["versions"].items()),
        "",
        "## Files",
        "",
        "`metadata.json` (everything above, machine-readable), `classifier.json` and `classifier.npz` (the "
        "fitted estimator as data: its parameters and vocabularies, and its arrays), `codebook.yaml` (the "
        "codebook used). Loading the folder runs no code from it: each file is parsed and checked, and one "
        "whose sha256 differs from `metadata.json` is refused.",
        "",
    ]
    return "\n".join(lines)
