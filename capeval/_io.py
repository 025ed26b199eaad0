"""Small I/O helpers shared across capeval and capeval_models."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_write(path, mode: str = "w", encoding: str | None = "utf-8", newline: str | None = None):
    """Open a temp file beside `path`; on success fsync and rename it over `path`.

    A crash or exception leaves `path` untouched (no half-written file that looks complete).
    A symlink is followed (its target is replaced, the link stays); devices and pipes such as
    /dev/stdout are written directly, since they cannot be renamed over.
    """
    path = Path(path)
    if path.is_symlink():  # write the link's target, keep the link
        path = Path(os.path.realpath(path))
    if path.exists() and not path.is_file():  # a device or a pipe: a rename would replace it
        with open(path, mode, **({} if "b" in mode else {"encoding": encoding, "newline": newline})) as fh:
            yield fh
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, **({} if binary else {"encoding": encoding, "newline": newline})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path, data: bytes) -> None:
    with atomic_write(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path, text: str) -> None:
    with atomic_write(path, "w") as fh:
        fh.write(text)
