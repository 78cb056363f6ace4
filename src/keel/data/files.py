"""File data sources and sinks: csv, euro_csv, parquet, json, jsonl, text_file, binary_file.

Paths are local files (relative ones are read against the config file's folder) or any
fsspec URL (``s3://…``, ``gs://…``, ``memory://…``); ``http(s)://`` URLs can be read, not
written. A path may hold ``{name}`` placeholders filled from the call's ``params``.

Local files are handed to pandas by path, so keel adds no copy to a read. Writes never
leave a partial file: locally the data goes to a temporary file in the target folder that is
then renamed over the target; remotely it is serialised in memory and sent in one PUT.
"""

from __future__ import annotations

import contextlib
import functools
import io
import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from keel.data.base import (
    DataContext,
    DataSink,
    DataSource,
    Params,
    SinkSettings,
    SourceSettings,
)
from keel.data.registry import register_sink, register_source
from keel.errors import DataError, InvalidInput

if TYPE_CHECKING:
    import pandas as pd

READ_ONLY_SCHEMES = ("http://", "https://")


class FileSourceSettings(SourceSettings):
    path: str
    storage_options: dict[str, Any] = Field(default_factory=dict)


class FileSinkSettings(SinkSettings):
    path: str
    storage_options: dict[str, Any] = Field(default_factory=dict)


class CsvSourceSettings(FileSourceSettings):
    dtypes_path: str | None = None


class CsvSinkSettings(FileSinkSettings):
    dtypes_path: str | None = None


def is_url(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


class _FileLocation:
    """Resolving and describing the path of a file source or sink."""

    settings: FileSourceSettings | FileSinkSettings
    context: DataContext
    label: str

    def resolve(self, template: str, params: Params) -> str:
        path = template
        if "{" in template:
            try:
                path = template.format_map(dict(params or {}))
            except KeyError as exc:
                raise InvalidInput(
                    f"{self.label}: the path {template} needs params[{exc.args[0]!r}]"
                ) from None
            except (ValueError, IndexError) as exc:
                message = f"{self.label}: bad placeholder in path {template}: {exc}"
                raise InvalidInput(message) from None
        if path.startswith("file://"):
            path = path[len("file://") :]
        if is_url(path):
            return path
        local = Path(path).expanduser()
        if not local.is_absolute():
            local = self.context.base_dir / local
        return str(local)

    def path_for(self, params: Params) -> str:
        return self.resolve(self.settings.path, params)

    def target(self) -> str:
        return self.settings.path

    def storage_options(self, path: str) -> dict[str, Any] | None:
        # pandas refuses storage_options for local paths.
        return dict(self.settings.storage_options) if is_url(path) else None

    def failed(self, path: str, exc: BaseException, doing: str) -> DataError:
        if isinstance(exc, FileNotFoundError):
            return DataError(f"{self.label}: file not found: {path}")
        if isinstance(exc, IsADirectoryError):
            return DataError(f"{self.label}: {path} is a folder, not a file")
        if isinstance(exc, PermissionError):
            return DataError(f"{self.label}: permission denied: {path}")
        message = self.context.scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
        return DataError(f"{self.label}: cannot {doing} {path}: {message or type(exc).__name__}")


# --- sources ---------------------------------------------------------------------------


class FileSource(_FileLocation, DataSource):
    """A file read whole; the data-frame formats are subclasses."""

    settings_model = FileSourceSettings
    settings: FileSourceSettings
    text = False
    gives_frames: ClassVar[bool] = False

    def read_raw(self, params: Params) -> str | bytes:
        import fsspec

        path = self.path_for(params)
        try:
            with fsspec.open(path, "rb", **(self.storage_options(path) or {})) as handle:
                data = handle.read()
        except Exception as exc:
            raise self.failed(path, exc, "read") from None
        if not self.text:
            return data
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{self.label}: {path} is not UTF-8 text (byte {exc.start}); "
                "use type binary_file for bytes"
            ) from None


class FrameSource(FileSource):
    """A file that pandas reads into a DataFrame."""

    text = True
    chunked: ClassVar[bool] = True
    gives_frames: ClassVar[bool] = True

    def read_dataframe(
        self, params: Params, chunksize: int | None
    ) -> pd.DataFrame | Iterator[pd.DataFrame]:
        path = self.path_for(params)
        if chunksize is not None and not self.chunked:
            raise self.unsupported("chunksize", "read it whole, or use jsonl for chunks")
        prepared = self.prepare()
        try:
            result = self.read(path, chunksize, prepared)
        except Exception as exc:
            raise self.failed(path, exc, "read") from None
        if chunksize is None:
            return self.finish(result, prepared)
        return self._chunks(result, path, prepared)

    def _chunks(self, chunks: Any, path: str, prepared: Any) -> Iterator[pd.DataFrame]:
        try:
            with contextlib.closing(chunks) if hasattr(chunks, "close") else _null():
                for chunk in chunks:
                    yield self.finish(chunk, prepared)
        except (DataError, InvalidInput):
            raise
        except Exception as exc:
            raise self.failed(path, exc, "read") from None

    def prepare(self) -> Any:
        """Whatever a read needs besides the path (e.g. the dtypes); one call per read."""
        return None

    def read(self, path: str, chunksize: int | None, prepared: Any) -> Any:
        raise NotImplementedError

    def finish(self, frame: pd.DataFrame, prepared: Any) -> pd.DataFrame:
        return frame


@contextlib.contextmanager
def _null() -> Iterator[None]:
    yield


@register_source("csv", "euro_csv")
class CsvSource(FrameSource):
    """CSV through ``pandas.read_csv``; ``euro_csv`` reads ``;``-separated, ``,``-decimal."""

    settings_model = CsvSourceSettings
    settings: CsvSourceSettings

    def prepare(self) -> dict[str, Any] | None:
        # Read on every call: a sink in the same process may have just rewritten it.
        if self.settings.dtypes_path is None:
            return None
        from keel.data.dtypes import read_dtypes

        path = self.resolve(self.settings.dtypes_path, None)
        return read_dtypes(path, self.storage_options(path))

    def read(self, path: str, chunksize: int | None, spec: dict[str, Any] | None) -> Any:
        import pandas as pd

        kwargs: dict[str, Any] = {"sep": ";", "decimal": ","} if self.type == "euro_csv" else {}
        if spec is not None:
            from keel.data.dtypes import read_csv_kwargs

            kwargs.update(read_csv_kwargs(spec))
        kwargs.update(self.settings.options)
        return pd.read_csv(
            path, chunksize=chunksize, storage_options=self.storage_options(path), **kwargs
        )

    def finish(self, frame: pd.DataFrame, spec: dict[str, Any] | None) -> pd.DataFrame:
        if spec is None:
            return frame
        from keel.data.dtypes import enforce_dtypes

        return enforce_dtypes(frame, spec, self.label)


@register_source("parquet")
class ParquetSource(FrameSource):
    """Parquet through ``pandas.read_parquet``; chunks are pyarrow record batches."""

    text = False

    def read(self, path: str, chunksize: int | None, prepared: Any) -> Any:
        import pandas as pd

        options = self.settings.options
        if chunksize is None:
            return pd.read_parquet(path, storage_options=self.storage_options(path), **options)
        return self._batches(path, chunksize)

    def _batches(self, path: str, chunksize: int) -> Iterator[pd.DataFrame]:
        import fsspec
        import pyarrow.parquet as pq

        with fsspec.open(path, "rb", **(self.storage_options(path) or {})) as handle:
            columns = self.settings.options.get("columns")
            for batch in pq.ParquetFile(handle).iter_batches(batch_size=chunksize, columns=columns):
                yield batch.to_pandas()


@register_source("json", "jsonl")
class JsonSource(FrameSource):
    """JSON records (``[{...}, ...]``) or JSON lines through ``pandas.read_json``."""

    @property
    def chunked(self) -> bool:  # type: ignore[override]
        return self.type == "jsonl"

    def read(self, path: str, chunksize: int | None, prepared: Any) -> Any:
        import pandas as pd

        kwargs: dict[str, Any] = {"orient": "records", "lines": self.type == "jsonl"}
        kwargs.update(self.settings.options)
        if chunksize is not None:
            kwargs["chunksize"] = chunksize
        return pd.read_json(path, storage_options=self.storage_options(path), **kwargs)


@register_source("text_file")
class TextSource(FileSource):
    """A UTF-8 text file, read whole with ``get_raw``."""

    text = True


@register_source("binary_file")
class BinarySource(FileSource):
    """A file of bytes, read whole with ``get_raw``."""


# --- sinks -----------------------------------------------------------------------------


class FileSink(_FileLocation, DataSink):
    """A file written whole and atomically."""

    settings_model = FileSinkSettings
    settings: FileSinkSettings
    text = False

    def write_raw(self, data: str | bytes, params: Params) -> None:
        if isinstance(data, str):
            payload = data.encode("utf-8")
        elif self.text:
            raise InvalidInput(f"{self.label}: a text_file takes str; use binary_file for bytes")
        else:
            payload = bytes(data)
        self.write_atomic(self.path_for(params), lambda handle: handle.write(payload))

    def write_atomic(self, path: str, write: Callable[[Any], object]) -> None:
        """Call ``write(binary_handle)`` so that ``path`` ends up whole or unchanged."""
        if path.startswith(READ_ONLY_SCHEMES):
            raise InvalidInput(f"{self.label}: cannot write to {path}: http(s) paths are read-only")
        try:
            if is_url(path):
                import fsspec

                buffer = io.BytesIO()
                write(buffer)
                fs, target = fsspec.core.url_to_fs(path, **self.settings.storage_options)
                fs.pipe_file(target, buffer.getvalue())  # one PUT: all or nothing
            else:
                write_local_atomic(Path(path), write)
        except (DataError, InvalidInput):
            raise
        except _UpstreamError as exc:  # the producer of the chunks failed, not the write
            raise exc.original from None
        except Exception as exc:
            raise self.failed(path, exc, "write") from None


class _UpstreamError(Exception):
    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


def _upstream(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Pass chunks on; an error while producing one is marked as not the sink's."""
    while True:
        try:
            chunk = next(chunks)
        except StopIteration:
            return
        except Exception as exc:
            raise _UpstreamError(exc) from exc
        yield chunk


@functools.cache
def _file_mode() -> int:
    # mkstemp creates 0600 files; a written data file should get the usual umask mode.
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_local_atomic(path: Path, write: Callable[[Any], object]) -> None:
    """Call ``write(binary_handle)`` on a temp file beside ``path``, then rename it over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


class FrameSink(FileSink):
    """A file that pandas writes from a DataFrame; no index column unless options say so."""

    text = True

    def write_dataframe(self, df: pd.DataFrame, params: Params) -> None:
        self.write_atomic(self.path_for(params), lambda handle: self.write(df, handle))

    def write_chunks(self, chunks: Iterator[pd.DataFrame], params: Params) -> None:
        first = next(chunks, None)
        if first is None:
            return  # put_chunks writes the empty data set
        stream = _upstream(itertools.chain([first], chunks))

        def write_all(handle: Any) -> None:
            for _chunk in self.stream(stream, handle):
                pass

        path = self.path_for(params)
        if is_url(path) and not path.startswith(READ_ONLY_SCHEMES):
            # Spool to a local temporary file, then upload once: all or nothing.
            with tempfile.TemporaryFile() as spool:
                write_all(spool)
                spool.seek(0)
                self.write_atomic(path, lambda handle: shutil.copyfileobj(spool, handle))
        else:
            self.write_atomic(path, write_all)

    def stream(self, chunks: Iterator[pd.DataFrame], handle: Any) -> Iterator[pd.DataFrame]:
        """Write chunks one after the other, yielding each once written. Types whose
        format cannot be appended to collect the chunks and write them once."""
        import pandas as pd

        frames = list(chunks)
        if frames:
            self.write(pd.concat(frames, ignore_index=True), handle)
        yield from frames

    def write(self, df: pd.DataFrame, handle: Any) -> None:
        raise NotImplementedError


@register_sink("csv", "euro_csv")
class CsvSink(FrameSink):
    """CSV through ``DataFrame.to_csv``; with ``dtypes_path`` the dtypes are written beside."""

    settings_model = CsvSinkSettings
    settings: CsvSinkSettings

    def write(self, df: pd.DataFrame, handle: Any, header: bool = True) -> None:
        kwargs: dict[str, Any] = {"index": False}
        if self.type == "euro_csv":
            kwargs.update(sep=";", decimal=",")
        kwargs.update(self.settings.options)
        if not header:
            kwargs["header"] = False
        df.to_csv(handle, **kwargs)

    def stream(self, chunks: Iterator[pd.DataFrame], handle: Any) -> Iterator[pd.DataFrame]:
        columns = None
        for chunk in chunks:
            if columns is None:
                columns = chunk.columns
                self.write(chunk, handle)
            else:  # same column order as the header, whatever order the chunk has
                self.write(chunk.reindex(columns=columns), handle, header=False)
            yield chunk

    def write_dataframe(self, df: pd.DataFrame, params: Params) -> None:
        super().write_dataframe(df, params)
        self.write_dtypes(df, params)

    def write_chunks(self, chunks: Iterator[pd.DataFrame], params: Params) -> None:
        first: list[pd.DataFrame] = []

        def remember(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for frame in frames:
                if not first:
                    first.append(frame)
                yield frame

        super().write_chunks(remember(chunks), params)
        if first:
            self.write_dtypes(first[0], params)

    def write_dtypes(self, df: pd.DataFrame, params: Params) -> None:
        if self.settings.dtypes_path is None:
            return
        from keel.data.dtypes import write_dtypes

        path = self.resolve(self.settings.dtypes_path, params)
        try:
            write_dtypes(df, path, self.storage_options(path))
        except (DataError, InvalidInput):
            raise
        except Exception as exc:
            raise self.failed(path, exc, "write") from None


@register_sink("parquet")
class ParquetSink(FrameSink):
    """Parquet through ``DataFrame.to_parquet`` (pyarrow)."""

    def write(self, df: pd.DataFrame, handle: Any) -> None:
        kwargs: dict[str, Any] = {"index": False}
        kwargs.update(self.settings.options)
        df.to_parquet(handle, **kwargs)

    def stream(self, chunks: Iterator[pd.DataFrame], handle: Any) -> Iterator[pd.DataFrame]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        writer = None
        try:
            for chunk in chunks:
                table = pa.Table.from_pandas(chunk, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(handle, table.schema)
                else:  # later chunks must fit the first chunk's schema
                    table = table.select(writer.schema.names).cast(writer.schema)
                writer.write_table(table)
                yield chunk
        finally:
            if writer is not None:
                writer.close()


@register_sink("json", "jsonl")
class JsonSink(FrameSink):
    """JSON records or JSON lines through ``DataFrame.to_json`` (ISO dates)."""

    def write(self, df: pd.DataFrame, handle: Any) -> None:
        kwargs: dict[str, Any] = {
            "orient": "records",
            "lines": self.type == "jsonl",
            "date_format": "iso",
        }
        kwargs.update(self.settings.options)
        df.to_json(handle, **kwargs)

    def stream(self, chunks: Iterator[pd.DataFrame], handle: Any) -> Iterator[pd.DataFrame]:
        if self.type != "jsonl":  # one JSON array: written whole
            yield from super().stream(chunks, handle)
            return
        for chunk in chunks:
            self.write(chunk, handle)
            yield chunk


@register_sink("text_file")
class TextSink(FileSink):
    """A UTF-8 text file, written whole with ``put_raw``."""

    text = True


@register_sink("binary_file")
class BinarySink(FileSink):
    """A file of bytes, written whole with ``put_raw``."""
