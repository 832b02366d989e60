"""Files that hold money state or personal data: owner-only, whatever the umask.

The bank's database, a terminal's store and a wallet hold balances, coins,
transcripts and credentials' digests; anyone else on the machine who can read
them learns who paid whom, and a transcript read from them is as good as the
coin to whoever presents it. So every such file is created 0600 and every
directory made for one 0700, by the creator itself rather than by a umask
the operator may have left at 022.

SQLite creates its ``-wal``, ``-shm`` and ``-journal`` files with the mode
of the database file, so a database created here 0600 before SQLite first
opens it keeps all of them owner-only. A database left readable by an
older release is tightened when it is opened (:func:`private_sqlite`).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def private_dir(path: str | Path) -> Path:
    """Create ``path`` and any missing parents, each 0700; directories that
    already exist are left as they are (they may be shared, like a home)."""
    path = Path(path)
    missing = []
    for p in (path, *path.parents):
        if p.is_dir():
            break
        missing.append(p)
    for p in reversed(missing):
        try:
            os.mkdir(p, DIR_MODE)
        except FileExistsError:
            if not p.is_dir():
                raise
            continue
        os.chmod(p, DIR_MODE)  # the umask may have taken bits away (never adds)
    return path


def create_private_file(path: str | Path, *, exclusive: bool = False) -> bool:
    """Create an empty file 0600 (its directory as :func:`private_dir`); True
    if it was created, False if it existed (an error if ``exclusive``)."""
    path = Path(path)
    private_dir(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        fd = os.open(path, flags, FILE_MODE)
    except FileExistsError:
        if exclusive:
            raise
        return False
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return True


def write_private(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path``, which is or becomes mode 0600."""
    path = Path(path)
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # an existing file keeps its mode through O_CREAT
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def tighten(path: str | Path) -> None:
    """Take group and other permissions off a file of ours, if it exists."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        os.chmod(path, mode & 0o700)


def sqlite_path(url: str) -> str | None:
    """The file of a ``sqlite:///PATH`` URL, or None (in memory, or not SQLite)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[-1] if "///" in url else ""
    if not path or ":memory:" in path or path.startswith("file:"):
        return None
    return path.split("?", 1)[0]


def private_sqlite(path: str | Path) -> None:
    """Before SQLite opens ``path``: create it 0600 if missing (its side files
    then follow), or take others' permissions off it and its side files."""
    if create_private_file(path):
        return
    for suffix in ("", *SQLITE_SIDE_FILES):
        tighten(f"{path}{suffix}")
