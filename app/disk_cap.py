"""A size cap on the folders the app writes result images to, so disk stays bounded however long it serves.

Every answered picture is a PNG in the app's private folder, then a copy in Gradio's (``service.py``);
each distinct request adds one. :func:`prune` deletes the oldest files of a folder (by modification time)
until it holds at most ``max_bytes``, never a file younger than ``min_age_s`` (one being answered right
now); :class:`FolderCap` runs it at most every ``every_s`` seconds, from the code that writes. A pruned
picture is only gone from the server: a page showing it keeps it, and the same request writes it again.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path


def prune(folder: Path, max_bytes: int, min_age_s: float, now: float | None = None) -> int:
    """Delete the oldest files under ``folder`` until their total size ≤ ``max_bytes``, skipping files
    modified less than ``min_age_s`` seconds ago; remove folders left empty. Returns the bytes freed."""
    now = time.time() if now is None else now
    files = []
    for path in folder.rglob("*"):
        try:
            if path.is_file():
                st = path.stat()
                files.append((st.st_mtime, st.st_size, path))
        except OSError:  # removed meanwhile
            continue
    total, freed = sum(size for _, size, _ in files), 0
    for mtime, size, path in sorted(files):
        if total - freed <= max_bytes or now - mtime < min_age_s:
            break
        try:
            path.unlink()
            freed += size
        except OSError:
            continue
        if path.parent != folder:
            try:
                path.parent.rmdir()  # only when empty
            except OSError:
                pass
    return freed


class FolderCap:
    """Keep each of ``folders`` under ``max_bytes``; :meth:`tick` prunes at most every ``every_s`` seconds."""

    def __init__(self, folders: list[Path], max_bytes: int, min_age_s: float = 60.0, every_s: float = 10.0):
        self.folders, self.max_bytes, self.min_age_s, self.every_s = folders, max_bytes, min_age_s, every_s
        self.last = -math.inf  # the first tick prunes (time.monotonic() may start near 0 on a fresh boot)
        self.lock = threading.Lock()

    def tick(self) -> None:
        now = time.monotonic()
        if now - self.last < self.every_s or not self.lock.acquire(blocking=False):
            return
        try:
            self.last = now
            for folder in self.folders:
                if folder.is_dir():
                    prune(folder, self.max_bytes, self.min_age_s)
        finally:
            self.lock.release()
