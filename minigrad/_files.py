"""Files written whole or not at all: a crash never leaves half a model or picture."""

from __future__ import annotations

import glob
import os
import re
import secrets
import stat
from collections.abc import Callable
from typing import BinaryIO


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Call `write(binary_file)` on a temporary file beside `path`, then rename it to `path`.

    As writing in place would: a symbolic link keeps pointing where it did (the
    file it names is replaced), and a file that exists keeps its permissions.
    The data reaches the disk before the rename (a power cut leaves the old file
    or the new one); the temporary file is removed on any error, and those left
    by a writer killed outright (SIGKILL) are removed by the next save of `path`.
    """
    path = os.fspath(path)
    target = os.path.realpath(path)
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {path!r}: no directory {directory!r}")
    if os.path.isdir(target):
        raise IsADirectoryError(f"cannot write {path!r}: it is a directory")
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = None
    tmp = temporary_path(target)
    try:
        # Not mkstemp: its files are private (0600) and would stay so after the rename.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as e:  # named after the user's path, not the temporary one
        raise type(e)(e.errno, e.strerror, path) from None
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)  # atomic: tmp is in the same directory
    except BaseException:
        os.unlink(tmp)
        raise
    _sync_directory(directory)
    remove_leftovers(target)


def _short(name: str) -> str:
    # The name cut short: a file name may be 255 bytes, and the temporary one adds 19.
    return os.fsencode(name)[:200].decode(errors="ignore")  # not mid-character


def temporary_path(target: str) -> str:
    """A new, unique name beside `target` for the file that will replace it."""
    directory, name = os.path.split(target)
    return os.path.join(directory, f".{_short(name)}.{secrets.token_hex(6)}.part")


def remove_leftovers(target: str) -> None:
    """Remove the temporary files of `target` that writers killed outright left behind."""
    directory, name = os.path.split(target)
    short = _short(name)
    pattern = rf"\.{re.escape(short)}\.[0-9a-f]{{12}}\.part"
    for leftover in glob.glob(
        os.path.join(glob.escape(directory), f".{glob.escape(short)}.*.part")
    ):
        if re.fullmatch(pattern, os.path.basename(leftover)):
            try:
                os.unlink(leftover)
            except FileNotFoundError:  # another save got there first
                pass


def _sync_directory(directory: str) -> None:
    """Make the rename itself durable; some file systems cannot, which is no error."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
