"""Build an opm-nlp codebook for the NHS benchmark from the published framework document.

The NHS labellers coded against the "Patient Experience Qualitative Data Categorisation Framework"
(`../shared/data/nhs_fft/framework/framework3_2023-05-22_49subcats.qmd`, MIT): for each sub-category a
definition and example quotes. This turns it into the codebook a researcher would write for the 31
benchmark codes, so the benchmark can show what definitions and examples alone are worth (zero- and
few-shot). Nothing here looks at the coded answers except to drop example quotes that are also answers
in the test split (they would flatter the test figures).

Usage (from the repository root):

    .venv/bin/python bench/nhs_codebook.py [--nhs DIR] [--out bench/results/nhs_codebook.yaml]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORK = "framework/framework3_2023-05-22_49subcats.qmd"
#: Benchmark labels whose framework heading is worded differently (one label may gather two headings).
ALIASES = {
    "Positive experience & gratitude": ["Gratitude/ good experience"],
    "Negative experience & dissatisfaction": ["Negative experience"],
    "Interaction with family/ carers": ["Service involvement with family/ carers",
                                        "Patient contact with family/ carers"],
}
_PREFIX = re.compile(r"^(positive|negative|mixed|neutral|wishlist)[a-z /]*:\s*", re.IGNORECASE)
_QUOTES = "'‘’\""


def parse_framework(path: Path) -> dict[str, dict]:
    """Heading -> {"theme", "definition", "examples"} for every sub-category of the framework."""
    sections: dict[str, dict] = {}
    theme, current, in_examples = "", None, False
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("## "):
            theme = stripped[3:].strip()
        elif stripped.startswith("### "):
            current = {"theme": theme, "definition": [], "examples": []}
            sections[stripped[4:].strip()] = current
            in_examples = False
        elif current is None or not stripped or stripped.startswith(":::"):
            continue
        elif stripped.startswith("Examples:"):
            in_examples = True
        elif in_examples:
            if stripped.startswith("NB:"):
                continue
            body = _PREFIX.sub("", stripped)
            for item in re.split(rf"[{_QUOTES}]\s*,\s*[{_QUOTES}]", body):
                item = item.strip().strip(_QUOTES).strip().rstrip(".").strip()
                if item:
                    current["examples"].append(item)
        else:
            current["definition"].append(stripped)
    return sections


def build(nhs: Path) -> dict:
    sections = parse_framework(nhs / FRAMEWORK)
    codes = pd.read_csv(nhs / "codes.csv")
    test_texts = {_normal(t) for t in pd.read_csv(nhs / "test.csv")["text"].astype(str)}
    entries, dropped = [], 0
    for code, label in zip(codes["code"], codes["label"]):
        headings = ALIASES.get(label, [label])
        by_name = {h.lower(): s for h, s in sections.items()}
        found = [by_name[h.lower()] for h in headings if h.lower() in by_name]
        if not found:
            raise SystemExit(f"No framework section for {label!r}; add it to ALIASES.")
        definition = " ".join(" ".join(s["definition"]) for s in found).replace("Thin'", "Thin")
        examples = []
        for section in found:
            for example in section["examples"]:
                if _normal(example) in test_texts:
                    dropped += 1
                elif example not in examples:
                    examples.append(example)
        entries.append({"id": code, "label": label, "definition": definition, "examples": examples,
                        "keywords": [w for w in re.findall(r"[a-z]+", label.lower()) if len(w) > 2]})
    return {"name": "NHS patient experience (benchmark codes)", "version": "2023-05-22",
            "description": (f"Built by bench/nhs_codebook.py from {FRAMEWORK} (PatientExperience-QDC, MIT). "
                            f"{dropped} example quotes that are also test-split answers were left out."),
            "codes": entries}


def _normal(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nhs", type=Path, default=ROOT.parent / "shared/data/nhs_fft")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/nhs_codebook.yaml")
    args = parser.parse_args()
    codebook = build(args.nhs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(yaml.safe_dump(codebook, sort_keys=False, allow_unicode=True, width=100), encoding="utf-8")
    counts = [len(c["examples"]) for c in codebook["codes"]]
    print(f"{args.out}: {len(counts)} codes, {sum(counts)} examples (min {min(counts)}, max {max(counts)} per code). "
          f"{codebook['description']}")


if __name__ == "__main__":
    main()
