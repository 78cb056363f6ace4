"""Data sources and sinks on remote paths: S3 (a moto server) and HTTP (a local server).

No mocks: the S3 tests talk to the session's moto server over HTTP (``s3_server``), the HTTP
tests to a ``ThreadingHTTPServer`` serving a temporary folder (``http_folder``). Configs are
real keel.yml files read with :func:`keel.config.load_config`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from keel.config import load_config
from keel.data import DataCatalog
from keel.errors import DataError, InvalidInput
from s3 import S3Server

FRAME = pd.DataFrame(
    {
        "id": [1, 2, 3],
        "score": [0.5, 1.5, 2.5],
        "label": ["a", "b", 'ü, "quoted"'],
        "flag": [True, False, True],
    }
)


def catalog(tmp_path: Path, body: str) -> DataCatalog:
    path = tmp_path / "keel.yml"
    path.write_text(body)
    return DataCatalog(load_config(path, env={}))


def storage_options_yaml(s3: S3Server) -> str:
    """``storage_options`` as a user writes it in keel.yml."""
    return (
        f"{{client_kwargs: {{endpoint_url: '{s3.endpoint}', region_name: us-east-1}}, "
        "key: testing, secret: testing}"
    )


@pytest.fixture
def s3_prefix(s3_server: S3Server) -> str:
    """A fresh ``s3://bucket/<random>`` folder: the server is shared by the whole session."""
    return f"s3://{s3_server.bucket}/{uuid.uuid4().hex}"


@pytest.fixture
def s3fs_(s3_server: S3Server) -> Iterator[Any]:
    """An s3fs filesystem on the moto server, to look at objects behind keel's back."""
    import s3fs

    fs = s3fs.S3FileSystem(**s3_server.storage_options(), skip_instance_cache=True)
    yield fs


def entry(type_: str, path: str, s3: S3Server) -> str:
    return f"{{type: {type_}, path: '{path}', storage_options: {storage_options_yaml(s3)}}}"


# --------------------------------------------------------------------------- S3


@pytest.mark.s3
@pytest.mark.parametrize(
    ("type_", "name"),
    [
        ("csv", "d.csv"),
        ("euro_csv", "d.csv"),
        ("parquet", "d.parquet"),
        ("json", "d.json"),
        ("jsonl", "d.jsonl"),
    ],
)
def test_frame_types_round_trip_on_s3(
    s3_server: S3Server, s3_prefix: str, s3fs_: Any, tmp_path: Path, type_: str, name: str
) -> None:
    path = f"{s3_prefix}/{type_}/{name}"
    e = entry(type_, path, s3_server)
    data = catalog(tmp_path, f"datasources:\n  d: {e}\ndatasinks:\n  d: {e}\n")
    data.sink("d").put_dataframe(FRAME)
    assert s3fs_.exists(path)  # it went to S3, not to a local file named like the URL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keel.yml"]
    assert_frame_equal(data.source("d").get_dataframe(), FRAME)
    if type_ == "euro_csv":
        assert s3fs_.cat_file(path).decode().splitlines()[1] == "1;0,5;a;True"


@pytest.mark.s3
@pytest.mark.parametrize(
    ("type_", "payload"), [("text_file", "hé\nthere\n"), ("binary_file", b"\x00\x01\xff")]
)
def test_raw_types_round_trip_on_s3(
    s3_server: S3Server,
    s3_prefix: str,
    s3fs_: Any,
    tmp_path: Path,
    type_: str,
    payload: str | bytes,
) -> None:
    path = f"{s3_prefix}/raw/{type_}"
    e = entry(type_, path, s3_server)
    data = catalog(tmp_path, f"datasources:\n  r: {e}\ndatasinks:\n  r: {e}\n")
    data.sink("r").put_raw(payload)
    stored = s3fs_.cat_file(path)
    assert stored == (payload.encode() if isinstance(payload, str) else payload)
    assert data.source("r").get_raw() == payload


@pytest.mark.s3
def test_a_path_with_params_on_s3(s3_server: S3Server, s3_prefix: str, tmp_path: Path) -> None:
    e = entry("parquet", f"{s3_prefix}/by_day/{{day}}.parquet", s3_server)
    data = catalog(tmp_path, f"datasources:\n  d: {e}\ndatasinks:\n  d: {e}\n")
    data.sink("d").put_dataframe(FRAME, params={"day": "2026-01-01"})
    data.sink("d").put_dataframe(FRAME.head(1), params={"day": "2026-01-02"})
    assert_frame_equal(data.source("d").get_dataframe({"day": "2026-01-01"}), FRAME)
    assert_frame_equal(data.source("d").get_dataframe({"day": "2026-01-02"}), FRAME.head(1))


@pytest.mark.s3
def test_dtypes_sidecar_on_s3(s3_server: S3Server, s3_prefix: str, tmp_path: Path) -> None:
    e = (
        f"{{type: csv, path: '{s3_prefix}/d.csv', dtypes_path: '{s3_prefix}/d.dtypes.json', "
        f"storage_options: {storage_options_yaml(s3_server)}}}"
    )
    data = catalog(tmp_path, f"datasources:\n  d: {e}\ndatasinks:\n  d: {e}\n")
    frame = FRAME.assign(
        when=pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03"]),
        label=FRAME["label"].astype("category"),
    )
    data.sink("d").put_dataframe(frame)
    assert_frame_equal(data.source("d").get_dataframe(), frame)


@pytest.mark.s3
@pytest.mark.parametrize(
    ("type_", "name", "unwritable"),
    [
        ("parquet", "keep.parquet", pd.DataFrame({"x": [1, object()]})),  # pyarrow refuses
        ("json", "keep.json", pd.DataFrame({"x": [1, 2]}, index=[0, 0])),  # index not unique
    ],
)
def test_a_failed_s3_write_leaves_the_old_object(
    s3_server: S3Server,
    s3_prefix: str,
    s3fs_: Any,
    tmp_path: Path,
    type_: str,
    name: str,
    unwritable: pd.DataFrame,
) -> None:
    path = f"{s3_prefix}/{name}"
    e = entry(type_, path, s3_server)
    body = f"datasources:\n  p: {e}\ndatasinks:\n  p: {e}\n"
    if type_ == "json":  # orient: columns refuses an index with duplicates
        body = body.replace("{type: json,", "{type: json, options: {orient: columns},")
    data = catalog(tmp_path, body)
    data.sink("p").put_dataframe(FRAME)
    before = s3fs_.cat_file(path)
    etag = s3fs_.info(path)["ETag"]
    with pytest.raises(DataError, match=rf"^data sink 'p': cannot write {path}: "):
        data.sink("p").put_dataframe(unwritable)
    s3fs_.invalidate_cache()
    assert s3fs_.cat_file(path) == before and s3fs_.info(path)["ETag"] == etag
    assert s3fs_.ls(path.rsplit("/", 1)[0], detail=False) == [path.removeprefix("s3://")]


@pytest.mark.s3
@pytest.mark.parametrize(
    ("type_", "read"),
    [("csv", "get_dataframe"), ("parquet", "get_dataframe"), ("text_file", "get_raw")],
)
def test_a_missing_s3_object_names_the_source_and_path(
    s3_server: S3Server, s3_prefix: str, tmp_path: Path, type_: str, read: str
) -> None:
    path = f"{s3_prefix}/nothing/here"
    data = catalog(tmp_path, f"datasources:\n  gone: {entry(type_, path, s3_server)}\n")
    with pytest.raises(DataError, match=rf"^data source 'gone': file not found: {path}$"):
        getattr(data.source("gone"), read)()


# --------------------------------------------------------------------------- HTTP


def test_http_sources_read(http_folder: tuple[str, Path], tmp_path: Path) -> None:
    url, folder = http_folder
    FRAME.to_csv(folder / "d.csv", index=False)
    FRAME.to_parquet(folder / "d.parquet", index=False)
    (folder / "2026-01-01.csv").write_text("id\n7\n")
    (folder / "notes.txt").write_text("über\n", encoding="utf-8")
    data = catalog(
        tmp_path,
        f"datasources:\n  c: {{type: csv, path: '{url}/d.csv'}}\n"
        f"  p: {{type: parquet, path: '{url}/d.parquet'}}\n"
        f"  t: {{type: text_file, path: '{url}/notes.txt'}}\n"
        f"  day: {{type: csv, path: '{url}/{{day}}.csv'}}\n",
    )
    assert_frame_equal(data.source("c").get_dataframe(), FRAME)
    assert_frame_equal(data.source("p").get_dataframe(), FRAME)
    assert data.source("t").get_raw() == "über\n"
    assert data.source("day").get_dataframe({"day": "2026-01-01"})["id"].tolist() == [7]
    chunks = list(data.source("c").get_dataframe(chunksize=2))
    assert [len(c) for c in chunks] == [2, 1]


def test_http_paths_are_read_only(http_folder: tuple[str, Path], tmp_path: Path) -> None:
    url, folder = http_folder
    data = catalog(
        tmp_path,
        f"datasinks:\n  c: {{type: csv, path: '{url}/d.csv'}}\n"
        f"  p: {{type: parquet, path: '{url}/d.parquet'}}\n"
        f"  t: {{type: text_file, path: '{url}/notes.txt'}}\n",
    )
    for name, write in (
        ("c", lambda sink: sink.put_dataframe(FRAME)),
        ("p", lambda sink: sink.put_dataframe(FRAME)),
        ("t", lambda sink: sink.put_raw("hello")),
    ):
        with pytest.raises(
            InvalidInput,
            match=rf"^data sink '{name}': cannot write to {url}/.*: http\(s\) paths are read-only",
        ):
            write(data.sink(name))
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize(
    ("type_", "read"),
    [("csv", "get_dataframe"), ("parquet", "get_dataframe"), ("text_file", "get_raw")],
)
def test_an_http_404_names_the_source_and_path(
    http_folder: tuple[str, Path], tmp_path: Path, type_: str, read: str
) -> None:
    url, _ = http_folder
    path = f"{url}/missing.{type_}"
    data = catalog(tmp_path, f"datasources:\n  missing: {{type: {type_}, path: '{path}'}}\n")
    with pytest.raises(DataError) as err:
        getattr(data.source("missing"), read)()
    message = str(err.value)
    assert message.startswith("data source 'missing': ")
    assert path in message
    assert "404" in message or "file not found" in message
