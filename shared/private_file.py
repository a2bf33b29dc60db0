"""Files that hold secrets, written atomically and private (0600) from their first byte.

The content goes to a temporary file in the same folder, created by `mkstemp` (mode 0600 whatever
the umask, O_EXCL), is flushed to disk, then renamed over the target: readers see the old file or
the whole new one, and no other user can open either at any moment.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


@contextlib.contextmanager
def private_writer(path: Path, owner: tuple[int, int] | None = None) -> Iterator[TextIO]:
    """A text handle whose content replaces `path` (0600, optionally chowned) when the block ends."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if owner is not None:
            os.fchown(fd, *owner)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_private(path: Path, text: str, owner: tuple[int, int] | None = None) -> None:
    with private_writer(path, owner) as fh:
        fh.write(text)
