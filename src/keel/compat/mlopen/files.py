"""The input file a pipeline gets: an object like Django's ``File``, as mlopen handed it over.

mlopen gave ``train`` and ``run_pipeline`` the ``FieldFile`` of the chosen input: pipelines
call ``input.open("r")`` and then ``input.readlines()``, iterate over it, read it with
``pd.read_csv(input)``, or pass it to ``open()``. :class:`PipelineFile` does all of that over
a local file. Reading before ``open`` opens it in ``"rb"``, as Django did; pandas reads from
where the handle stands, as it did from Django's file; ``open(input)`` opens the file itself
(``__fspath__``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

#: Django's File.DEFAULT_CHUNK_SIZE
CHUNK_SIZE = 64 * 2**10


class PipelineFile:
    """A local file with the interface of Django's ``File``.

    Args:
        path: the file on disk.
        name: the name the pipeline sees (default: the file's name).

    Example:
        >>> f = PipelineFile("iris.csv")                          # doctest: +SKIP
        >>> with f.open("r"):                                      # doctest: +SKIP
        ...     lines = f.readlines()
    """

    def __init__(self, path: str | os.PathLike[str], name: str | None = None) -> None:
        self.path = str(Path(path).resolve())
        self.name = name or os.path.basename(self.path)
        self.mode: str | None = None
        self._handle: IO[Any] | None = None

    # --- Django File -------------------------------------------------------------------

    @property
    def file(self) -> IO[Any]:
        """The open handle (opened in ``"rb"`` on first use, as Django's ``FieldFile``)."""
        if self._handle is None or self._handle.closed:
            self.open("rb")
        assert self._handle is not None
        return self._handle

    @property
    def size(self) -> int:
        return os.path.getsize(self.path)

    @property
    def closed(self) -> bool:
        return self._handle is None or self._handle.closed

    def open(self, mode: str | None = None) -> PipelineFile:
        """(Re)open the file in ``mode`` (default: the last mode, else ``"rb"``) from its
        start; returns the file itself, so ``with f.open("r"):`` works."""
        self.close()
        self.mode = mode or self.mode or "rb"
        if "b" in self.mode:
            self._handle = open(self.path, self.mode)  # noqa: SIM115 (closed by close())
        else:
            self._handle = open(self.path, self.mode, encoding="utf-8", newline=None)  # noqa: SIM115
        return self

    def close(self) -> None:
        if self._handle is not None and not self._handle.closed:
            self._handle.close()

    def read(self, *args: Any) -> Any:
        return self.file.read(*args)

    def readline(self, *args: Any) -> Any:
        return self.file.readline(*args)

    def readlines(self, *args: Any) -> list[Any]:
        return self.file.readlines(*args)

    def seek(self, *args: Any) -> int:
        return self.file.seek(*args)

    def tell(self) -> int:
        return self.file.tell()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def chunks(self, chunk_size: int | None = None) -> Iterator[Any]:
        """The file from its start in pieces of ``chunk_size`` bytes."""
        size = chunk_size or CHUNK_SIZE
        handle = self.file
        handle.seek(0)
        while True:
            data = handle.read(size)
            if not data:
                break
            yield data

    def multiple_chunks(self, chunk_size: int | None = None) -> bool:
        return self.size > (chunk_size or CHUNK_SIZE)

    def __iter__(self) -> Iterator[Any]:
        """The lines of the file (bytes unless it was opened in a text mode)."""
        return iter(self.file)

    def __enter__(self) -> PipelineFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- what Python and pandas look for -------------------------------------------------

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<PipelineFile: {self.name}>"

    def __bool__(self) -> bool:
        return True

    def __len__(self) -> int:
        return self.size


def as_file(value: Any, name: str | None = None) -> Any:
    """``value`` as a :class:`PipelineFile` when it names a local file (a path object, or a
    path string that exists); anything else as it is."""
    if isinstance(value, PipelineFile):
        return value
    if isinstance(value, os.PathLike):
        return PipelineFile(value, name)
    if isinstance(value, str) and "://" not in value and value and os.path.isfile(value):
        return PipelineFile(value, name)
    return value
