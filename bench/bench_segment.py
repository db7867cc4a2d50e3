"""Sentence splitting checked against spaCy on real answers, and timed. Results go in docs/benchmarks.md.

Usage (from the repository root, after `make setup`):

    .venv/bin/python bench/bench_segment.py [--nhs DIR]

Every NHS Friends and Family Test answer (train and test, ../shared/data/nhs_fft or --nhs DIR) and the
two-answer texts that bench/bench_tagging.py times tagging on are split by `sentence_spans` and, each
text, by spaCy's blank English pipeline and sentencizer; the spans must be the same. Prints how many
texts skip spaCy and the time of each way (each on a pipeline of its own, loaded before timing).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench_tagging import make_answers  # noqa: E402

from opm_nlp.embedding.segment import import_spacy, sentence_spans, sentencizer, single_sentence  # noqa: E402


def spacy_spans(pipeline, texts: list[str]) -> list[list[tuple[int, int]]]:
    """Every text through the pipeline's sentencizer, spaces around each sentence left out."""
    out = []
    for doc in pipeline.pipe(texts):
        spans = []
        for sentence in doc.sents:
            part = doc.text[sentence.start_char:sentence.end_char]
            if part.strip():
                start = sentence.start_char + len(part) - len(part.lstrip())
                spans.append((start, start + len(part.strip())))
        out.append(spans)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nhs", type=Path, default=ROOT.parent / "shared" / "data" / "nhs_fft")
    parser.add_argument("--n-speed", type=int, default=2000)
    args = parser.parse_args()
    answers = pd.concat([pd.read_csv(args.nhs / "train.csv"), pd.read_csv(args.nhs / "test.csv")])["text"]
    sets = {"NHS answers": answers.astype(str).tolist(),
            "two-answer texts": make_answers(args.nhs, args.n_speed, seed=1)["answer"].tolist()}
    print("| texts | n | same spans as spaCy | skip spaCy | `sentence_spans` (s) | spaCy on every text (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, texts in sets.items():
        sentencizer.cache_clear()
        sentencizer()
        start = time.perf_counter()
        ours = sentence_spans(texts)
        ours_s = time.perf_counter() - start
        reference = import_spacy().blank("en")
        reference.add_pipe("sentencizer")
        start = time.perf_counter()
        theirs = spacy_spans(reference, texts)
        theirs_s = time.perf_counter() - start
        same = sum(a == b for a, b in zip(ours, theirs))
        print(f"| {label} | {len(texts):,} | {same:,} | {sum(map(single_sentence, texts)):,} | {ours_s:.2f} "
              f"| {theirs_s:.2f} |")
        if same != len(texts):
            raise SystemExit(f"{len(texts) - same} texts split otherwise than spaCy splits them")


if __name__ == "__main__":
    main()
