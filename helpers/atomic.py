"""Atomic file writes: a temp file in the target's folder, flushed to disk, then one rename.

Readers (the report, a resumed run, a second notebook) never see half a file, and a kill
mid-write leaves the previous version intact. The file and then its folder are fsynced,
so a power cut or a Colab VM reset right after the rename cannot leave an empty file.
Temp files are named `.tmp-<target name>-*`, so the orphans of a SIGKILL can be found and
removed by the next write's owner (`remove_orphans`). Used for result JSONs, checkpoints,
the dataset cache, report.md and the benchmark file.
"""
from __future__ import annotations

import contextlib
import glob
import os
import tempfile


def _fsync_folder(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:              # e.g. Windows cannot open a folder; the rename still holds
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temp_prefix(path: str) -> str:
    return f".tmp-{os.path.basename(path)}-"


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = ".tmp"):
    """Yield a temp path to write; on success it replaces `path` (mode 0644)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=_temp_prefix(path), suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)                 # mkstemp makes 0600; these files are for sharing
        with open(tmp, "rb+") as f:          # the bytes are on disk before the name points at them
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_folder(folder)                # ...and so is the rename
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def remove_orphans(path: str) -> list[str]:
    """Delete temp files that a killed writer of `path` left behind; returns their paths.
    Call it only where nothing else is writing `path` at the same time."""
    folder = os.path.dirname(os.path.abspath(path))
    found = glob.glob(os.path.join(glob.escape(folder), glob.escape(_temp_prefix(path)) + "*"))
    for orphan in found:
        with contextlib.suppress(FileNotFoundError):
            os.remove(orphan)
    return found


def write_text(path: str, text: str) -> None:
    with atomic_path(path, suffix=os.path.splitext(path)[1]) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def splice(path: str, name: str, body: str) -> str:
    """Replace what lies between `<!-- name:start -->` and `<!-- name:end -->` in the text
    file `path` (a README) with `body`, atomically; SystemExit naming the file when the
    markers are missing, so nothing generated lands where a reader did not put it. The
    one way the package writes into a README. Returns the block written."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if not (start in text and end in text and text.index(start) < text.index(end)):
        raise SystemExit(f"error: {path} has no {start} ... {end} block")
    block = f"{start}\n{body.rstrip()}\n{end}"
    write_text(path, text[:text.index(start)] + block + text[text.index(end) + len(end):])
    return block
