"""An exclusive lock on a build folder, so concurrent processes never share a half-written one.

The co-simulation, synthesis and proof caches under ``build/`` are keyed by what
they build; ``make test`` runs pytest on every core (pytest-xdist), so two workers
can reach the same key at once.  The second waits for the first, then finds the
finished build and reuses it.  ``flock`` is released by the kernel if a process
dies, so a crashed run never leaves a stale lock behind.
"""
from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["folder_lock"]


@contextmanager
def folder_lock(folder: Path, name: str = ".lock") -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (created if missing) for the ``with`` block."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
