"""Start-up time of the command line and of the package import. Results go in docs/benchmarks.md.

Usage (from the repository root, after `make setup`):

    .venv/bin/python bench/bench_startup.py [--runs 20]

Each run is a fresh process; prints the minimum, median and maximum wall-clock seconds of
`opm-nlp --help` and of `python -c "import opm_nlp"`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "opm-nlp --help": [str(Path(sys.executable).with_name("opm-nlp")), "--help"],
    "python -c 'import opm_nlp'": [sys.executable, "-c", "import opm_nlp"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    print("| command | min s | median s | max s |\n|---|---:|---:|---:|")
    for name, command in COMMANDS.items():
        seconds = []
        for _ in range(args.runs):
            start = time.perf_counter()
            subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
            seconds.append(time.perf_counter() - start)
        print(f"| `{name}` | {min(seconds):.3f} | {statistics.median(seconds):.3f} | {max(seconds):.3f} |")


if __name__ == "__main__":
    main()
