"""Error types of :mod:`progface.data`: each names the offending path and says what is wrong."""

from __future__ import annotations

from pathlib import Path


class _PathError(ValueError):
    """A ``ValueError`` whose message is ``"<path>: <reason>"``."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = " ".join(str(reason).split())  # always one line
        super().__init__(f"{self.path}: {self.reason}")

    def __reduce__(self):  # keep the two-argument form picklable (DataLoader workers)
        return (type(self), (self.path, self.reason))


class ImageError(_PathError):
    """An image file that cannot be used: missing, empty, unreadable, truncated, wrong size."""


class FolderError(_PathError):
    """A folder that cannot be used as an image source: missing, a file, or without images."""


class LandmarkFileError(ValueError):
    """A malformed landmark file; the message is ``"<path>:<line>: <reason>"``."""

    def __init__(self, path: str | Path, line: int | None, reason: str) -> None:
        self.path = Path(path)
        self.line = line
        self.reason = " ".join(str(reason).split())
        where = f"{self.path}:{line}" if line is not None else f"{self.path}"
        super().__init__(f"{where}: {self.reason}")

    def __reduce__(self):
        return (type(self), (self.path, self.line, self.reason))
