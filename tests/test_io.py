import os
import stat
import sys
from pathlib import Path

import pytest

from capeval._io import atomic_directory, atomic_write, atomic_write_text, is_replaceable_directory


def test_atomic_write_replaces_and_keeps_permissions(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_failed_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "complete")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as fh:
            fh.write("half")
            raise RuntimeError("crash")
    assert target.read_text() == "complete"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_symlink_is_followed_not_replaced(tmp_path):
    target = tmp_path / "real.txt"
    target.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    atomic_write_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new"


def test_devices_are_written_directly():
    atomic_write_text("/dev/null", "discarded")
    assert not os.path.isfile("/dev/null")


# -- atomic_directory: a set of files replaced as a whole -----------------------------------------
SET = ("a.md", "b.html", "c.json")


def write_set(target, generation, names=SET):
    with atomic_directory(target, SET + tuple(names)) as tmp:
        for name in names:
            (tmp / name).write_text(f"{generation}\n")
            assert not (target / name).exists() or (target / name).read_text() != f"{generation}\n"


def listing(path):
    return sorted(p.name for p in path.iterdir())


def test_atomic_directory_new_and_replaced(tmp_path):
    target = tmp_path / "report"
    write_set(target, 1)
    assert listing(target) == ["a.md", "b.html", "c.json"]
    write_set(target, 2, names=("a.md",))  # the new set has fewer files: no stale b.html, c.json beside it
    assert listing(target) == ["a.md"] and (target / "a.md").read_text() == "2\n"
    assert listing(tmp_path) == ["report"]  # no temporary directory left
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~umask


@pytest.mark.parametrize("interruption", [RuntimeError, KeyboardInterrupt])
def test_interrupted_set_leaves_the_old_one(tmp_path, interruption):
    target = tmp_path / "report"
    write_set(target, 1)
    with pytest.raises(interruption):
        with atomic_directory(target, SET) as tmp:
            (tmp / "a.md").write_text("2\n")
            raise interruption("stopped after the first file")
    assert listing(target) == ["a.md", "b.html", "c.json"]
    assert {(target / n).read_text() for n in ("a.md", "b.html", "c.json")} == {"1\n"}
    assert listing(tmp_path) == ["report"]
    with pytest.raises(KeyboardInterrupt):  # a first run interrupted: nothing at all
        with atomic_directory(tmp_path / "fresh") as tmp:
            (tmp / "a.md").write_text("1\n")
            raise KeyboardInterrupt
    assert listing(tmp_path) == ["report"]


def test_foreign_directories_are_not_replaced(tmp_path):
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    assert not is_replaceable_directory(foreign, SET)
    with pytest.raises(FileExistsError, match="did not write"):
        with atomic_directory(foreign, SET):
            pass
    assert listing(foreign) == ["thesis.tex"]
    (foreign / "thesis.tex").unlink()
    (foreign / "a.md").mkdir()  # a directory named like a set's file is not one of its files
    assert not is_replaceable_directory(foreign, SET)
    empty = tmp_path / "empty"
    empty.mkdir()
    write_set(empty, 1)
    assert "a.md" in listing(empty)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        with atomic_directory(tmp_path / "file"):
            pass


def test_the_current_directory_is_never_swapped(tmp_path, monkeypatch):
    """An empty working directory (`capeval leaderboard -o .`) would be replaced under the process."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert not is_replaceable_directory(".", SET) and not is_replaceable_directory(tmp_path, SET)
    with pytest.raises(FileExistsError):
        with atomic_directory(".", SET):
            pass
    assert Path.cwd() == work and listing(tmp_path) == ["work"]


def test_a_symlinked_set_keeps_its_link(tmp_path):
    real = tmp_path / "real"
    write_set(real, 1)
    link = tmp_path / "link"
    link.symlink_to(real)
    write_set(link, 2)
    assert link.is_symlink() and (link / "a.md").read_text() == "2\n" and listing(tmp_path) == ["link", "real"]


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_readers_never_see_a_mixed_set(tmp_path, monkeypatch, exchange):
    """A reader pinning the directory (as any open directory handle does) sees one generation.

    A reader that opened the old set just before a swap may see it shrink as it is deleted, but
    never a new file beside an old one.
    """
    import threading

    from capeval import _io

    if not exchange:
        monkeypatch.setattr(_io, "_exchange", lambda a, b: False)
    target = tmp_path / "report"
    names = [f"f{i}.txt" for i in range(8)]
    write_set(target, 0, names)
    seen, stop = [], threading.Event()

    def reader():
        while not stop.is_set():
            try:
                fd = os.open(target, os.O_RDONLY)
            except FileNotFoundError:  # the two-renames fallback: absent for an instant
                continue
            try:
                files = sorted(os.listdir(fd))
                contents = set()
                for name in files:
                    file_fd = os.open(name, os.O_RDONLY, dir_fd=fd)
                    with os.fdopen(file_fd) as fh:
                        contents.add(fh.read())
                seen.append((tuple(files), frozenset(contents)))
            except FileNotFoundError:  # the old generation is being deleted under the handle
                pass
            finally:
                os.close(fd)

    thread = threading.Thread(target=reader)
    thread.start()
    for generation in range(1, 60):
        write_set(target, generation, names)
    stop.set()
    thread.join()
    assert len(seen) > 10
    for files, contents in seen:
        # the whole set, or part of an old one that is being deleted under the reader's handle
        assert set(files) <= set(names)
        assert len(contents) <= 1, contents  # never files of two generations in one snapshot
    assert any(files == tuple(names) for files, _ in seen)


def test_exchange_is_used_on_linux(tmp_path):
    from capeval._io import _exchange

    if not sys.platform.startswith("linux"):
        pytest.skip("renameat2 is Linux-only")
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    (b / "x").write_text("b")
    if not _exchange(a, b):
        pytest.skip("this kernel or filesystem has no RENAME_EXCHANGE")
    assert (a / "x").read_text() == "b" and (b / "x").read_text() == "a"
