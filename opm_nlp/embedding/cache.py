"""opm-nlp's cache folder: the on-disk embedding cache, and what the folder holds and clearing it.

Everything under :func:`cache_root` is rebuilt when next needed, so deleting it only costs time.
:class:`EmbeddingCache` keeps the embeddings of every answer embedded (one SQLite file per model,
keyed by the SHA-256 of each text; the texts themselves are not stored). The folder grows with use:
each fine-tuned model that tags answers adds its network (~90 MB) and that network's ONNX export
(~90 MB). The embeddings are derived from survey answers, so a project that ends may want them gone:
:func:`usage` says what each part takes, :func:`clear` deletes them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from opm_nlp.exceptions import OpmNlpError


def cache_root() -> Path:
    """Folder for opm-nlp's caches: ``$OPM_NLP_CACHE_DIR`` or ``~/.cache/opm-nlp``."""
    return Path(os.environ.get("OPM_NLP_CACHE_DIR") or Path.home() / ".cache" / "opm-nlp")


class EmbeddingCache:
    """Embeddings on disk, in one SQLite file per model/backend, keyed by the SHA-256 of the text.

    Parameters
    ----------
    path : Path
        The SQLite file; created (readable by the owner only) with its folder if missing.
    """

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=60, isolation_level=None)
        os.chmod(path, 0o600)  # embeddings derive from sensitive answers: owner only
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS embedding (key BLOB PRIMARY KEY, vector BLOB NOT NULL)")

    @staticmethod
    def key(text: str) -> bytes:
        """The key of ``text``: its SHA-256 digest."""
        return hashlib.sha256(text.encode("utf-8")).digest()

    def get(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors of those ``texts`` that are in the cache."""
        found: dict[str, np.ndarray] = {}
        by_key = {self.key(t): t for t in texts}
        keys = list(by_key)
        for start in range(0, len(keys), 500):
            part = keys[start:start + 500]
            rows = self._db.execute(
                f"SELECT key, vector FROM embedding WHERE key IN ({','.join('?' * len(part))})", part)
            for key, blob in rows:
                found[by_key[key]] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store the vectors of ``texts`` (one row each), replacing any already stored."""
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR REPLACE INTO embedding VALUES (?, ?)",
                             [(self.key(t), v.astype(np.float32).tobytes()) for t, v in zip(texts, vectors)])
        self._db.execute("COMMIT")

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM embedding").fetchone()[0])


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


def format_bytes(size: int) -> str:
    """``size`` bytes as '0 B', '12 kB', '3.4 MB', '1.2 GB'."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            value = size / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{size} B"
