"""The progress bar of file transfers (uploads to and downloads from an artifact store).

This module owns :class:`ProgressBar`: one line on stderr, redrawn as files are done
(``uploading  3/10 files [#######.............] 1.2/3.4 MB``), closed with a newline. It
is what mlopus' ``file_transfer.prog_bar`` turns on; a disabled bar writes nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TextIO

__all__ = ["ProgressBar"]

WIDTH = 24
#: seconds between redraws (the last one is always drawn)
REDRAW_EVERY = 0.1


class ProgressBar:
    """A context manager giving ``advance(nbytes)``: one call per file done.

    Args:
        action: the verb shown first (``uploading``, ``downloading``).
        sizes: the size of each file to transfer.
        enabled: draw the bar (False: ``advance`` does nothing).
        stream: where to draw (default: ``sys.stderr`` at the time of entering).
    """

    def __init__(
        self,
        action: str,
        sizes: Sequence[int],
        enabled: bool = True,
        stream: TextIO | None = None,
    ) -> None:
        self.action = action
        self.files = len(sizes)
        self.total = sum(sizes)
        self.enabled = enabled and bool(sizes)
        self._stream = stream
        self._done_files = 0
        self._done_bytes = 0
        self._drawn_at = 0.0

    def __enter__(self) -> Callable[[int], None]:
        if self.enabled:
            self._stream = self._stream or sys.stderr
            self._draw(force=True)
        return self.advance

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.enabled and self._stream is not None:
            if self._done_files != self.files:  # stopped early: show where
                self._draw(force=True)
            self._stream.write("\n")
            self._stream.flush()

    def advance(self, nbytes: int) -> None:
        """Count one more file of ``nbytes`` as done."""
        if not self.enabled:
            return
        self._done_files += 1
        self._done_bytes += nbytes
        self._draw(force=self._done_files == self.files)

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._drawn_at < REDRAW_EVERY:
            return
        self._drawn_at = now
        share = self._done_bytes / self.total if self.total else self._done_files / self.files
        filled = round(WIDTH * min(share, 1.0))
        bar = "#" * filled + "." * (WIDTH - filled)
        line = (
            f"\r{self.action} {self._done_files}/{self.files} files [{bar}] "
            f"{_size(self._done_bytes)}/{_size(self.total)}"
        )
        assert self._stream is not None
        self._stream.write(line)
        self._stream.flush()


def _size(nbytes: int) -> str:
    value = float(nbytes)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"  # pragma: no cover
