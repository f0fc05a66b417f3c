"""Small helpers shared across stages."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def silenced_stderr() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the block: native libraries (TensorFlow's C++ logger, KenLM)
    write there directly, where Python's own settings cannot reach. Exceptions still propagate."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """A temporary file beside `path`, renamed onto it only when the block succeeds (removed when it fails).

    `suffix` ends the temporary name, for writers that insist on an extension (Keras' ".keras",
    ".weights.h5"; NumPy's ".npy"). Readers never see a half-written file, and a crash leaves the old one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes 0600; the result should look like any other file
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator:
    """`open(path, mode)` through `atomic_path`, flushed to disk before the rename."""
    with atomic_path(path) as temporary, open(temporary, mode, encoding=None if "b" in mode else "utf-8") as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())
