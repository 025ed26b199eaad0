"""Small I/O helpers shared across capeval and capeval_models: files and sets of files written atomically."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Collection
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


# -- the cache directory and file fingerprints -------------------------------------------------------
ENV_CACHE = "CAPEVAL_CACHE"


def cache_root() -> Path:
    """``$CAPEVAL_CACHE``, else ``~/.cache/capeval``: where compiled and derived files are kept."""
    env = os.environ.get(ENV_CACHE)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "capeval"


def file_sha256(path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB blocks (the file closed at once)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

# -- a directory of files replaced as a set ---------------------------------------------------------
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where not supported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):  # glibc < 2.28, musl
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):  # old kernel, a filesystem without it
        return False
    raise OSError(err, os.strerror(err), str(b))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap_in(new: Path, target: Path) -> None:
    """Put the complete directory `new` at `target`; the old set (if any) is removed afterwards."""
    if not target.exists():
        os.rename(new, target)
    elif _exchange(new, target):  # target now holds the new set, `new` the old one
        shutil.rmtree(new, ignore_errors=True)
    else:  # two renames: in between, `target` is briefly absent (never a mix of old and new files)
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
        os.rename(target, old / "set")
        os.rename(new, target)
        shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(target.parent)


def is_replaceable_directory(path, names: Collection[str] = ()) -> bool:
    """True where :func:`atomic_directory` may replace `path`: absent, empty, or holding only files
    named in `names` (those a previous set of the same kind may have written)."""
    path = Path(os.path.realpath(path))
    if not path.exists():
        return True
    cwd = Path.cwd()
    if not path.is_dir() or path == cwd or path in cwd.parents:  # swapping it would leave this process in a deleted directory
        return False
    allowed = set(names)
    return all(entry.name in allowed and entry.is_file() and not entry.is_symlink() for entry in path.iterdir())


@contextlib.contextmanager
def atomic_directory(target, names: Collection[str] = ()):
    """Write a set of files into a temporary directory beside `target`, then swap it in whole.

    ::

        with atomic_directory("report", names=["leaderboard.md", "leaderboard.html"]) as tmp:
            (tmp / "leaderboard.md").write_text(...)
            (tmp / "leaderboard.html").write_text(...)

    Readers of `target` see the old set or the new one, never a mix: on Linux the swap is one
    ``renameat2(RENAME_EXCHANGE)``; elsewhere two renames leave `target` absent for an instant. An
    exception or Ctrl-C inside the block (or before the swap) removes the temporary directory and
    leaves the old set as it was. The new set replaces the whole directory, so an existing `target`
    must be empty or hold only files named in `names` (the files a set of this kind may contain):
    any other directory is refused with ``FileExistsError`` rather than have files capeval did not
    write deleted (see :func:`is_replaceable_directory`).
    """
    target = Path(os.path.realpath(target))  # "." and "..", and a symlink's target (the link stays)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "exists and is not a directory", str(target))
    if not is_replaceable_directory(target, names):
        raise FileExistsError(
            errno.EEXIST,
            "a directory holding files capeval did not write; it would be replaced as a whole: choose a new or empty directory",
            str(target),
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes 0700 directories
    try:
        yield tmp
        _fsync_dir(tmp)
        _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
