"""The model card: a README.md written into every saved model folder."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opm_nlp.classify.forecast import forecast_lines
from opm_nlp.model.metadata import decision_sentence, trust_figures

if TYPE_CHECKING:  # pragma: no cover
    from opm_nlp.model.coding_model import CodingModel


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.2f}"


def _kind_phrase(trust: dict | None) -> str:
    if trust is None:
        return "none measured (no coded answers to cross-validate on, no held-out answers)"
    if trust["kind"] == "held-out":
        return (f"**held-out** — measured on {trust['answers']} answers coded by people that the model was not "
                f"trained on ({', '.join(trust['data'])})")
    return ("**cross-validated** on the training answers (optimistic; no held-out figures recorded: "
            "`opm-nlp evaluate MODEL --data HELD_OUT ... --save` adds them)")


def _heldout_paragraph(held: dict) -> str:
    """The held-out summary: F1, kappa and alpha with their intervals, and how to read them."""
    from opm_nlp.classify.agreement import reading_sentence

    def interval(values) -> str:
        return "" if not values or None in values else f" (95% interval {_fmt(values[0])}–{_fmt(values[1])})"

    return (f"Held-out ({held['answers']} answers coded by people, {', '.join(held['data'])}, measured "
            f"{held['date']}): micro-F1 {_fmt(held['micro_f1'])}{interval(held.get('micro_f1_interval'))}, "
            f"macro-F1 {_fmt(held['macro_f1'])}{interval(held.get('macro_f1_interval'))}, mean Krippendorff's "
            f"alpha {_fmt(held.get('macro_alpha'))}. These are the figures to quote. "
            + reading_sentence(held.get("macro_kappa"), tuple(held.get("macro_kappa_interval") or (None, None))
                               if None not in (held.get("macro_kappa_interval") or [None]) else None))


def render_model_card(model: CodingModel) -> str:
    """Markdown describing what the model is, what it was trained on and how far to trust it."""
    meta = model.metadata
    codebook = model.codebook
    training = meta["training"]
    cv = meta.get("cv_metrics")
    trust = trust_figures(meta)
    short = "held-out" if trust and trust["kind"] == "held-out" else "CV"
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
                         f"{'int8' if emb.get('fine_tune_int8') else 'float32'}).")
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
        *([f"- {decision_sentence(meta)}"] if decision_sentence(meta) else []),
        f"- An answer is flagged for review when a code's score is within {meta['review_margin']} of its threshold"
        + (" (under the cap on codes per answer, also when it is within that of the score that would change "
           "which codes are kept; a code given by \"at least one\" is always flagged)."
           if (meta.get("decision") or {}).get("cap") or (meta.get("decision") or {}).get("at_least_one") else "."),
        "",
        "## Codes",
        "",
        f"Agreement with people per code: {_kind_phrase(trust)}.",
        "",
        f"| code | label | training positives | threshold | {short} precision | {short} recall | {short} F1 | "
        f"{short} kappa |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for code in codebook.codes:
        per = (trust or {}).get("per_code", {}).get(code.id, {})
        lines.append(
            f"| `{code.id}` | {code.label} | {training['positives'][code.id]} | "
            f"{meta['thresholds'][code.id]:.2f} | {_fmt(per.get('precision'))} | {_fmt(per.get('recall'))} | "
            f"{_fmt(per.get('f1'))} | {_fmt(per.get('kappa'))} |"
        )
    lines.append("")
    if trust and trust["kind"] == "held-out":
        lines += [_heldout_paragraph(meta["heldout_metrics"]), ""]
    if cv:
        intervals = ""
        if cv.get("micro_f1_interval") and None not in cv["micro_f1_interval"] + cv["macro_f1_interval"]:
            (micro_low, micro_high), (macro_low, macro_high) = cv["micro_f1_interval"], cv["macro_f1_interval"]
            intervals = (f" 95% bootstrap intervals over the {training['answers']} coded answers: micro "
                         f"{_fmt(micro_low)}–{_fmt(micro_high)}, macro {_fmt(macro_low)}–{_fmt(macro_high)} (how "
                         f"much the figures depend on which answers happened to be coded).")
        lines += [
            f"Cross-validated ({cv['folds']}-fold) micro-F1 {_fmt(cv['micro_f1'])}, macro-F1 {_fmt(cv['macro_f1'])}."
            f"{intervals} These are {cv['note']}"
            + (": quote the held-out figures above." if short == "held-out" else
               ". Measure agreement on answers the model has not seen, and record it here, with "
               "`opm-nlp evaluate MODEL --data HELD_OUT ... --save`."),
            "",
        ]
    more = forecast_lines(meta.get("forecast"), limit=50)
    if more:
        lines += ["## When to stop coding", "", *(f"- {line}" for line in more), ""]
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
