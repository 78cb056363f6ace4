"""The interfaces of data sources and sinks, and the settings every type shares.

A type implements :meth:`DataSource.read_dataframe` / :meth:`DataSource.read_raw` (and
:meth:`DataSink.write_dataframe` / :meth:`DataSink.write_raw`); the public ``get_*`` and
``put_*`` methods wrap them with caching and the checks every type needs. Each type names
its settings model (``settings_model``), so unknown keys in keel.yml are reported per type.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from keel.errors import ConfigError, InvalidInput

if TYPE_CHECKING:
    import pandas as pd

    from keel.config.models import DbmsSection
    from keel.data.cache import ReadCache

Params = Mapping[str, Any] | None

# Phases that select sources and sinks by tag; an untagged entry is given to all of them.
PHASES = ("train", "test", "predict", "dataset")


class DataSettings(BaseModel):
    """Keys every data source and sink accepts."""

    model_config = ConfigDict(extra="forbid")

    type: str
    tags: list[str] = Field(default_factory=list)  # ``tags: train`` is short for ``[train]``
    options: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None

    @field_validator("tags", mode="before")
    @classmethod
    def _one_tag(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class SourceSettings(DataSettings):
    """Keys every data source accepts (caching is a source's concern only)."""

    expires: int = Field(default=0, ge=-1)  # 0 never, -1 for the process's life, N seconds
    cache_size: int = Field(default=32, ge=1)


class SinkSettings(DataSettings):
    """Keys every data sink accepts."""


@dataclass
class DataContext:
    """What sources and sinks need from around them."""

    base_dir: Path = field(default_factory=Path.cwd)  # relative paths are read against it
    dbms: Mapping[str, DbmsSection] = field(default_factory=dict)
    clock: Callable[[], float] | None = None  # for cache expiry; time.monotonic by default
    scrub: Callable[[str], str] = lambda text: text  # masks secrets in messages
    engines: dict[str, Any] = field(default_factory=dict)  # one SQLAlchemy engine per dbms


class _Data:
    kind: ClassVar[str] = "data"
    settings_model: ClassVar[type[DataSettings]] = DataSettings

    def __init__(self, name: str, settings: DataSettings, context: DataContext) -> None:
        self.name = name
        self.settings = settings
        self.context = context

    @property
    def type(self) -> str:
        return self.settings.type

    @property
    def tags(self) -> list[str]:
        return list(self.settings.tags)

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.settings.options)

    @property
    def label(self) -> str:
        """How messages name this: ``data source 'train'``."""
        return f"{self.kind} '{self.name}'"

    def serves(self, phase: str | None) -> bool:
        """Whether this is given to ``phase`` (untagged entries serve every phase)."""
        return phase is None or not self.settings.tags or phase in self.settings.tags

    def target(self) -> str:
        """Where the data lives, for listings (a path, a table, a query)."""
        return ""

    def unsupported(self, what: str, instead: str) -> InvalidInput:
        return InvalidInput(f"{self.label} (type {self.type}) does not support {what}; {instead}")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} type={self.type!r}>"


class DataSource(_Data, ABC):
    """Where model code reads data from: ``get_dataframe`` and ``get_raw``."""

    kind = "data source"
    settings_model: ClassVar[type[DataSettings]] = SourceSettings
    settings: SourceSettings
    gives_frames: ClassVar[bool] = True  # False for raw-only types (text_file, binary_file)
    chunked: ClassVar[bool] = False  # whether get_dataframe(chunksize=…) is supported

    def __init__(self, name: str, settings: DataSettings, context: DataContext) -> None:
        super().__init__(name, settings, context)
        self._cache: ReadCache | None = None

    @property
    def cache(self) -> ReadCache:
        if self._cache is None:
            import time

            from keel.data.cache import ReadCache

            self._cache = ReadCache(
                self.settings.expires,
                self.settings.cache_size,
                self.context.clock or time.monotonic,
            )
        return self._cache

    def get_dataframe(
        self, params: Params = None, chunksize: int | None = None
    ) -> pd.DataFrame | Iterator[pd.DataFrame]:
        """The data as a DataFrame, or an iterator of DataFrames of ``chunksize`` rows."""
        if chunksize is not None:
            if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
                raise InvalidInput(f"{self.label}: chunksize must be a positive integer")
            if self.settings.expires != 0:
                raise ConfigError(
                    f"{self.label}: chunksize cannot be combined with caching "
                    f"(expires: {self.settings.expires}); set expires: 0 to read in chunks"
                )
            return self.read_dataframe(params, chunksize)
        if self.settings.expires == 0:
            return self.read_dataframe(params, None)
        from keel.data.cache import cache_key

        frame = self.cache.get_or_load(
            cache_key("get_dataframe", params), lambda: self.read_dataframe(params, None)
        )
        # Copy-on-write makes this cheap, and a caller changing its frame leaves the cache be.
        return frame.copy(deep=False)

    def get_raw(self, params: Params = None, chunksize: int | None = None) -> str | bytes:
        """The data as text or bytes, as stored."""
        if chunksize is not None:
            raise self.unsupported("chunksize for raw data", "read it whole")
        if self.settings.expires == 0:
            return self.read_raw(params)
        from keel.data.cache import cache_key

        return self.cache.get_or_load(cache_key("get_raw", params), lambda: self.read_raw(params))

    def clear_cache(self) -> None:
        if self._cache is not None:
            self._cache.clear()

    # --- what a type implements ------------------------------------------------------

    def read_dataframe(
        self, params: Params, chunksize: int | None
    ) -> pd.DataFrame | Iterator[pd.DataFrame]:
        raise self.unsupported("data frames", "use get_raw()")

    def read_raw(self, params: Params) -> str | bytes:
        raise self.unsupported("raw data", "use get_dataframe()")


class DataSink(_Data, ABC):
    """Where model code writes data to: ``put_dataframe`` and ``put_raw``."""

    kind = "data sink"
    settings_model: ClassVar[type[DataSettings]] = SinkSettings

    def put_dataframe(self, df: pd.DataFrame, params: Params = None) -> None:
        """Write ``df`` (without its index unless ``options`` say otherwise)."""
        import pandas as pd

        if not isinstance(df, pd.DataFrame):
            raise InvalidInput(
                f"{self.label}: put_dataframe takes a pandas DataFrame, got {type(df).__name__}"
            )
        self.write_dataframe(df, params)

    def put_chunks(self, chunks: Iterable[pd.DataFrame], params: Params = None) -> int:
        """Write a stream of DataFrames as one data set; returns the number of rows.

        The sink ends up with all chunks or, if anything fails, as it was: files are
        written to a temporary file and renamed (or uploaded once), tables in one
        transaction. Types that cannot stream collect the chunks and write them once.
        """
        import pandas as pd

        counted = _Counted(chunks, self.label)
        self.write_chunks(iter(counted), params)
        if counted.first is None:  # nothing at all: still write an empty data set
            self.write_dataframe(pd.DataFrame(), params)
        return counted.rows

    def put_raw(self, data: str | bytes, params: Params = None) -> None:
        """Write text or bytes as they are."""
        if not isinstance(data, str | bytes | bytearray):
            raise InvalidInput(
                f"{self.label}: put_raw takes str or bytes, got {type(data).__name__}"
            )
        self.write_raw(data, params)

    # --- what a type implements ------------------------------------------------------

    def write_dataframe(self, df: pd.DataFrame, params: Params) -> None:
        raise self.unsupported("data frames", "use put_raw()")

    def write_raw(self, data: str | bytes, params: Params) -> None:
        raise self.unsupported("raw data", "use put_dataframe()")

    def write_chunks(self, chunks: Iterator[pd.DataFrame], params: Params) -> None:
        import pandas as pd

        frames = list(chunks)
        if frames:
            self.write_dataframe(pd.concat(frames, ignore_index=True), params)


class _Counted:
    """Iterates DataFrame chunks, checking each and counting rows."""

    def __init__(self, chunks: Iterable[pd.DataFrame], label: str) -> None:
        self._chunks = iter(chunks)
        self.label = label
        self.rows = 0
        self.first: pd.DataFrame | None = None

    def __iter__(self) -> Iterator[pd.DataFrame]:
        import pandas as pd

        for chunk in self._chunks:
            if not isinstance(chunk, pd.DataFrame):
                raise InvalidInput(
                    f"{self.label}: put_chunks takes pandas DataFrames, got {type(chunk).__name__}"
                )
            if self.first is None:
                self.first = chunk
            self.rows += len(chunk)
            yield chunk
