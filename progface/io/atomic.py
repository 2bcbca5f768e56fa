"""The one atomic-write helper: every file progface writes goes through :func:`write_atomic`.

The content is written to a unique hidden temp file beside the target (``.<name>.<random>.tmp``)
and moved into place in one step, so a crash never leaves a half-written file. Without
``overwrite`` an existing file is never replaced: the move is a hard link, which fails when the
target exists (no check-then-write race). The temp file is removed whatever happens. The file
gets the permissions a plain ``open(path, "w")`` would give (0666 less the umask), not the
owner-only mode of the temp file.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

__all__ = ["TMP_SUFFIX", "output_folder", "write_atomic", "write_new", "write_text_atomic"]

TMP_SUFFIX = ".tmp"


def write_atomic(path: str | os.PathLike[str], write: Callable[[Path], object],
                 *, overwrite: bool = True) -> Path:  # fmt: skip
    """Call ``write(tmp)`` to fill a temp file, then move it to ``path``; returns ``path``.

    Raises ``FileExistsError`` when ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp(path)
    try:
        write(tmp)
        if overwrite:
            os.replace(tmp, path)
        else:
            _move_no_replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _new_temp(path: Path) -> Path:
    """A new empty hidden file beside ``path``, created with mode 0666 so that the kernel
    applies the umask (what ``open(path, "w")`` gives; mkstemp's 0600 would make outputs
    private, and reading the umask means setting it, which races with other threads)."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}{TMP_SUFFIX}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"{path.parent}: no free temporary name for {path.name}")


def _move_no_replace(tmp: Path, path: Path) -> None:
    try:
        os.link(tmp, path)  # atomic, and refuses an existing target
    except FileExistsError:
        raise FileExistsError(f"{path}: exists (not replaced)") from None
    except OSError:  # a file system without hard links: check, then move
        if path.exists():
            raise FileExistsError(f"{path}: exists (not replaced)") from None
        os.replace(tmp, path)


def output_folder(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """Create the output folder ``path`` (checked before any work); ``FolderError`` names it
    when it is a file or not writable."""
    from progface.data.errors import FolderError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FolderError(path, f"{option} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FolderError(path, f"cannot create the {option} folder ({err.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise FolderError(path, f"the {option} folder is not writable")
    return path


def write_text_atomic(path: str | os.PathLike[str], text: str, *, overwrite: bool = True) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"),
                        overwrite=overwrite)  # fmt: skip


def write_new(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Write to ``path``, or to ``<stem>-2<suffix>``, ``-3`` ... when taken; returns the path."""
    path = Path(path)
    for n in range(1, 10_000):
        target = path if n == 1 else path.with_name(f"{path.stem}-{n}{path.suffix}")
        try:
            return write_atomic(target, write, overwrite=False)
        except FileExistsError:
            continue
    raise FileExistsError(f"{path}: no free name after 10,000 tries")
