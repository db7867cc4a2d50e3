"""What opm-nlp keeps in its cache folder, and clearing it.

Everything under :func:`~opm_nlp.embedding.encoder.cache_root` is rebuilt when next needed, so deleting it only
costs time. It grows with use: each fine-tuned model that tags answers adds its network (~90 MB) and
that network's ONNX export (~90 MB), and the embeddings of every answer embedded are kept. The
embeddings are derived from survey answers, so a project that ends may want them gone.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from opm_nlp.embedding.encoder import cache_root
from opm_nlp.exceptions import OpmNlpError

#: The folders opm-nlp writes under the cache root, and what each holds. Nothing else there is touched.
PARTS = {
    "embeddings": "embeddings of embedded answers, one file per model",
    "onnx": "embedding networks exported to ONNX",
    "fine-tuned": "networks fine-tuned on coded answers, one folder per trained model",
}


@dataclass(frozen=True)
class Part:
    """One cache folder: its name, what it holds, its path, entries and size in bytes."""

    name: str
    holds: str
    path: Path
    entries: int
    size: int


def _size(path: Path) -> int:
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += (Path(folder) / name).stat().st_size
            except OSError:  # removed meanwhile
                pass
    return total


def usage(root: Path | None = None) -> list[Part]:
    """The cache's parts with their sizes (an absent part has no entries and size 0)."""
    root = cache_root() if root is None else root
    parts = []
    for name, holds in PARTS.items():
        path = root / name
        entries = [p for p in path.iterdir() if not p.name.startswith(".")] if path.is_dir() else []
        parts.append(Part(name, holds, path, len(entries), _size(path) if path.is_dir() else 0))
    return parts


def clear(root: Path | None = None) -> int:
    """Delete the cache's parts (only those in :data:`PARTS`); returns the bytes freed.

    Each part is first renamed aside, so a process that reads the cache meanwhile finds it whole or
    absent (and rebuilds it), never half deleted; what an interrupted clear left aside goes too.
    """
    root = cache_root() if root is None else root
    freed = 0
    for part in usage(root):
        if not part.path.is_dir():
            continue
        try:
            aside = Path(tempfile.mkdtemp(prefix=".deleting-", dir=root))
            try:
                os.replace(part.path, aside / part.name)
            finally:
                shutil.rmtree(aside, ignore_errors=True)
        except OSError as exc:
            raise OpmNlpError(f"Could not delete {part.path}: {exc.strerror or exc}. Check that no other opm-nlp "
                              "command is running and that you may write there, then run 'opm-nlp cache clear' "
                              "again.") from None
        freed += part.size
    for leftover in root.glob(".deleting-*") if root.is_dir() else ():  # from a clear that was interrupted
        shutil.rmtree(leftover, ignore_errors=True)
    return freed


def human(size: int) -> str:
    """``size`` bytes as '0 B', '12 kB', '3.4 MB', '1.2 GB'."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            value = size / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{size} B"
