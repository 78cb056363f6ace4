"""Data sources and sinks on remote paths: S3 (a moto server) and HTTP (a local server)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from keel.config import parse_config
from keel.data import DataCatalog
from keel.errors import DataError, InvalidInput

FRAME = pd.DataFrame({"id": [1, 2, 3], "score": [0.5, 1.5, 2.5], "label": ["a", "b", "c"]})


def s3_catalog(s3_server, body: str) -> DataCatalog:  # type: ignore[no-untyped-def]
    options = json.dumps(s3_server.storage_options())
    return DataCatalog(parse_config(body.replace("OPTIONS", options), env={}))


@pytest.mark.s3
@pytest.mark.parametrize("type_", ["csv", "euro_csv", "parquet", "json", "jsonl"])
def test_frame_types_round_trip_on_s3(s3_server, type_: str) -> None:  # type: ignore[no-untyped-def]
    entry = f"{{type: {type_}, path: 's3://{s3_server.bucket}/data/{type_}/d', storage_options: OPTIONS}}"
    data = s3_catalog(s3_server, f"datasources:\n  d: {entry}\ndatasinks:\n  d: {entry}\n")
    data.sink("d").put_dataframe(FRAME)
    assert_frame_equal(data.source("d").get_dataframe(), FRAME, check_dtype=type_ == "parquet")


@pytest.mark.s3
@pytest.mark.parametrize(("type_", "payload"), [("text_file", "hé"), ("binary_file", b"\x00\x01")])
def test_raw_types_round_trip_on_s3(s3_server, type_: str, payload: str | bytes) -> None:  # type: ignore[no-untyped-def]
    entry = (
        f"{{type: {type_}, path: 's3://{s3_server.bucket}/raw/{type_}', storage_options: OPTIONS}}"
    )
    data = s3_catalog(s3_server, f"datasources:\n  r: {entry}\ndatasinks:\n  r: {entry}\n")
    data.sink("r").put_raw(payload)
    assert data.source("r").get_raw() == payload


@pytest.mark.s3
def test_dtypes_sidecar_on_s3(s3_server) -> None:  # type: ignore[no-untyped-def]
    base = f"s3://{s3_server.bucket}/typed"
    entry = f"{{type: csv, path: '{base}/d.csv', dtypes_path: '{base}/d.dtypes.json', storage_options: OPTIONS}}"
    data = s3_catalog(s3_server, f"datasources:\n  d: {entry}\ndatasinks:\n  d: {entry}\n")
    frame = FRAME.assign(
        when=pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03"]),
        label=FRAME["label"].astype("category"),
    )
    data.sink("d").put_dataframe(frame)
    assert_frame_equal(data.source("d").get_dataframe(), frame)


@pytest.mark.s3
def test_a_failed_s3_write_leaves_the_old_object(s3_server) -> None:  # type: ignore[no-untyped-def]
    entry = (
        f"{{type: parquet, path: 's3://{s3_server.bucket}/keep.parquet', storage_options: OPTIONS}}"
    )
    data = s3_catalog(s3_server, f"datasources:\n  p: {entry}\ndatasinks:\n  p: {entry}\n")
    data.sink("p").put_dataframe(FRAME)
    with pytest.raises(DataError, match=r"data sink 'p': cannot write s3://.*keep\.parquet"):
        data.sink("p").put_dataframe(pd.DataFrame({"x": [object()]}))
    assert_frame_equal(data.source("p").get_dataframe(), FRAME)


@pytest.mark.s3
def test_a_missing_s3_object_names_the_source_and_path(s3_server) -> None:  # type: ignore[no-untyped-def]
    path = f"s3://{s3_server.bucket}/nothing/here.csv"
    data = s3_catalog(
        s3_server,
        f"datasources:\n  gone: {{type: csv, path: '{path}', storage_options: OPTIONS}}\n",
    )
    with pytest.raises(DataError, match=rf"data source 'gone': file not found: {path}"):
        data.source("gone").get_dataframe()


def test_http_sources_read_and_refuse_writes(http_folder: tuple[str, Path]) -> None:
    url, folder = http_folder
    FRAME.to_csv(folder / "d.csv", index=False)
    FRAME.to_parquet(folder / "d.parquet", index=False)
    (folder / "notes.txt").write_text("über\n", encoding="utf-8")
    body = (
        f"datasources:\n  c: {{type: csv, path: '{url}/d.csv'}}\n"
        f"  p: {{type: parquet, path: '{url}/d.parquet'}}\n"
        f"  t: {{type: text_file, path: '{url}/notes.txt'}}\n"
        f"  missing: {{type: csv, path: '{url}/missing.csv'}}\n"
        f"datasinks:\n  c: {{type: csv, path: '{url}/d.csv'}}\n"
    )
    data = DataCatalog(parse_config(body, env={}))
    assert_frame_equal(data.source("c").get_dataframe(), FRAME)
    assert_frame_equal(data.source("p").get_dataframe(), FRAME)
    assert data.source("t").get_raw() == "über\n"
    with pytest.raises(
        InvalidInput,
        match=r"data sink 'c': cannot write to http://.*: http\(s\) paths are read-only",
    ):
        data.sink("c").put_dataframe(FRAME)
    with pytest.raises(DataError, match=rf"data source 'missing': .*{url}/missing\.csv"):
        data.source("missing").get_dataframe()
