"""Atomic file writes: a temp file in the target's folder, then one rename.

Readers (the report, a resumed run, a second notebook) never see half a file, and a kill
mid-write leaves the previous version intact. Used for result JSONs, checkpoints, the
dataset cache, report.md and the benchmark file.
"""
from __future__ import annotations

import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = ".tmp"):
    """Yield a temp path to write; on success it replaces `path` (mode 0644)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)                 # mkstemp makes 0600; these files are for sharing
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_text(path: str, text: str) -> None:
    with atomic_path(path, suffix=os.path.splitext(path)[1]) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
