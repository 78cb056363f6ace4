"""File data sources and sinks on local paths: round trips, options, errors, atomic writes."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from keel.config import parse_config
from keel.data import DataCatalog
from keel.errors import ConfigError, DataError, InvalidInput


def catalog(tmp_path: Path, body: str, **kwargs: Any) -> DataCatalog:
    return DataCatalog(parse_config(body, env={}, base_dir=tmp_path), **kwargs)


def both(name: str, type_: str, path: str, extra: str = "", source_extra: str = "") -> str:
    """A source and a sink of one type on one path (``source_extra``: keys for the source)."""
    entry = f"  {name}: {{type: {type_}, path: {path}{extra}}}\n"
    source = f"  {name}: {{type: {type_}, path: {path}{extra}{source_extra}}}\n"
    return f"datasources:\n{source}datasinks:\n{entry}"


FRAME = pd.DataFrame(
    {
        "id": [1, 2, 3],
        "score": [0.5, float("nan"), 2.25],
        "label": ["a", "b", None],
    }
)


@pytest.mark.parametrize("type_", ["csv", "euro_csv", "parquet", "json", "jsonl"])
def test_every_frame_type_round_trips(tmp_path: Path, type_: str) -> None:
    data = catalog(tmp_path, both("d", type_, f"out/sub/data.{type_}"))
    data.sink("d").put_dataframe(FRAME)
    assert (tmp_path / "out" / "sub" / f"data.{type_}").is_file()  # folders are created
    got = data.source("d").get_dataframe()
    assert_frame_equal(got, FRAME, check_dtype=type_ == "parquet")
    assert list(got.columns) == ["id", "score", "label"]  # no index column was written


def test_euro_csv_uses_semicolons_and_decimal_commas(tmp_path: Path) -> None:
    data = catalog(tmp_path, both("d", "euro_csv", "e.csv"))
    data.sink("d").put_dataframe(pd.DataFrame({"a": [1.5], "b": ["x"]}))
    assert (tmp_path / "e.csv").read_text() == "a;b\n1,5;x\n"
    (tmp_path / "e.csv").write_text("a;b\n2,75;y\n")
    assert data.source("d").get_dataframe().to_dict("list") == {"a": [2.75], "b": ["y"]}


@pytest.mark.parametrize(
    ("type_", "payload"), [("text_file", "grüße\nline 2\n"), ("binary_file", b"\x00\xffkeel")]
)
def test_raw_types_round_trip(tmp_path: Path, type_: str, payload: str | bytes) -> None:
    data = catalog(tmp_path, both("r", type_, "raw/file.bin"))
    data.sink("r").put_raw(payload)
    assert data.source("r").get_raw() == payload
    with pytest.raises(
        InvalidInput, match=rf"data source 'r' \(type {type_}\) does not support data frames"
    ):
        data.source("r").get_dataframe()
    with pytest.raises(InvalidInput, match="does not support data frames"):
        data.sink("r").put_dataframe(FRAME)


def test_text_file_refuses_bytes_and_non_utf8(tmp_path: Path) -> None:
    data = catalog(tmp_path, both("t", "text_file", "t.txt"))
    with pytest.raises(InvalidInput, match="a text_file takes str"):
        data.sink("t").put_raw(b"bytes")
    (tmp_path / "t.txt").write_bytes(b"caf\xe9")
    with pytest.raises(DataError, match=r"data source 't': .*t\.txt is not UTF-8 text \(byte 3\)"):
        data.source("t").get_raw()


def test_frame_files_can_be_read_raw(tmp_path: Path) -> None:
    data = catalog(tmp_path, both("c", "csv", "c.csv"))
    data.sink("c").put_dataframe(pd.DataFrame({"a": [1]}))
    assert data.source("c").get_raw() == "a\n1\n"


def test_options_pass_through_to_reader_and_writer(tmp_path: Path) -> None:
    data = catalog(
        tmp_path,
        "datasources:\n  c: {type: csv, path: c.csv, options: {sep: '|', usecols: [b]}}\n"
        "datasinks:\n  c: {type: csv, path: c.csv, options: {sep: '|', index: true}}\n",
    )
    data.sink("c").put_dataframe(pd.DataFrame({"a": [1], "b": [2]}))
    assert (tmp_path / "c.csv").read_text() == "|a|b\n0|1|2\n"
    assert data.source("c").get_dataframe().to_dict("list") == {"b": [2]}


def test_path_placeholders_are_filled_from_params(tmp_path: Path) -> None:
    data = catalog(tmp_path, both("daily", "csv", "'days/{day}.csv'"))
    data.sink("daily").put_dataframe(pd.DataFrame({"a": [1]}), params={"day": "2026-11-23"})
    assert (tmp_path / "days" / "2026-11-23.csv").is_file()
    assert len(data.source("daily").get_dataframe({"day": "2026-11-23"})) == 1
    with pytest.raises(InvalidInput, match=r"the path days/\{day\}\.csv needs params\['day'\]"):
        data.source("daily").get_dataframe()


def test_chunks(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": range(10)})
    for type_ in ("csv", "parquet", "jsonl"):
        data = catalog(tmp_path, both("d", type_, f"d.{type_}"))
        data.sink("d").put_dataframe(frame)
        chunks = list(data.source("d").get_dataframe(chunksize=4))
        assert [len(c) for c in chunks] == [4, 4, 2], type_
        assert pd.concat(chunks, ignore_index=True)["a"].tolist() == list(range(10))
    data = catalog(tmp_path, both("j", "json", "d.json"))
    with pytest.raises(InvalidInput, match="does not support chunksize"):
        data.source("j").get_dataframe(chunksize=4)
    with pytest.raises(InvalidInput, match="chunksize must be a positive integer"):
        data.source("j").get_dataframe(chunksize=0)


# --- dtypes ------------------------------------------------------------------------------


def test_dtypes_path_keeps_dtypes_through_csv(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "when": pd.to_datetime(["2026-01-01 10:00", "2026-02-03 04:05"]),
            "kind": pd.Categorical(["b", "a"], categories=["b", "a", "c"], ordered=True),
            "count": pd.array([1, None], dtype="Int64"),
            "flag": [True, False],
            "code": ["007", "010"],  # would be read as integers without the dtypes
        }
    )
    data = catalog(tmp_path, both("d", "csv", "d.csv", ", dtypes_path: d.dtypes.json"))
    data.sink("d").put_dataframe(frame)
    assert (tmp_path / "d.dtypes.json").is_file()
    assert_frame_equal(data.source("d").get_dataframe(), frame, check_dtype=True)
    chunks = list(data.source("d").get_dataframe(chunksize=1))
    assert [str(c["kind"].dtype) for c in chunks] == ["category", "category"]


def test_a_missing_dtypes_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("a\n1\n")
    data = catalog(tmp_path, both("d", "csv", "d.csv", ", dtypes_path: none.json"))
    with pytest.raises(Exception, match=r"none\.json"):
        data.source("d").get_dataframe()


# --- errors ------------------------------------------------------------------------------


def test_a_missing_file_names_the_source_and_path(tmp_path: Path) -> None:
    data = catalog(tmp_path, both("train", "csv", "nowhere/train.csv"))
    with pytest.raises(DataError) as err:
        data.source("train").get_dataframe()
    assert (
        str(err.value) == f"data source 'train': file not found: {tmp_path / 'nowhere/train.csv'}"
    )
    with pytest.raises(DataError, match="data source 'train': file not found"):
        data.source("train").get_raw()


def test_a_malformed_csv_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,4,5\n")
    data = catalog(tmp_path, both("bad", "csv", "bad.csv"))
    with pytest.raises(DataError, match=r"data source 'bad': cannot read .*bad\.csv: .*line 3"):
        data.source("bad").get_dataframe()
    with pytest.raises(DataError, match=r"line 3"):
        list(data.source("bad").get_dataframe(chunksize=1))


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    data = catalog(tmp_path, both("p", "parquet", "p.parquet"))
    data.sink("p").put_dataframe(FRAME)
    before = (tmp_path / "p.parquet").read_bytes()
    unwritable = pd.DataFrame({"x": [object(), object()]})  # pyarrow cannot serialise these
    with pytest.raises(DataError, match=r"data sink 'p': cannot write .*p\.parquet"):
        data.sink("p").put_dataframe(unwritable)
    assert (tmp_path / "p.parquet").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["p.parquet"]


def test_written_files_get_the_usual_permissions(tmp_path: Path) -> None:
    data = catalog(tmp_path, both("c", "csv", "c.csv"))
    data.sink("c").put_dataframe(FRAME)
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "c.csv").stat().st_mode & 0o777 == 0o666 & ~mask


def test_sinks_take_frames_and_raw_data_only(tmp_path: Path) -> None:
    data = catalog(tmp_path, both("c", "csv", "c.csv"))
    with pytest.raises(InvalidInput, match="put_dataframe takes a pandas DataFrame, got dict"):
        data.sink("c").put_dataframe({"a": [1]})  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="put_raw takes str or bytes, got int"):
        data.sink("c").put_raw(5)  # type: ignore[arg-type]


def test_a_folder_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "dir.csv").mkdir()
    data = catalog(tmp_path, both("d", "csv", "dir.csv"))
    with pytest.raises(DataError, match=re.escape("is a folder")):
        data.source("d").get_dataframe()


# --- caching -----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_expiring_cache_rereads_after_n_seconds(tmp_path: Path) -> None:
    clock = Clock()
    data = catalog(tmp_path, both("c", "csv", "c.csv", source_extra=", expires: 60"), clock=clock)
    (tmp_path / "c.csv").write_text("a\n1\n")
    first = data.source("c").get_dataframe()
    (tmp_path / "c.csv").write_text("a\n2\n")
    clock.now += 59
    assert data.source("c").get_dataframe()["a"].tolist() == [1]  # still cached
    first.loc[0, "a"] = 99  # changing a returned frame leaves the cache alone
    assert data.source("c").get_dataframe()["a"].tolist() == [1]
    clock.now += 2
    assert data.source("c").get_dataframe()["a"].tolist() == [2]


def test_cache_modes_and_keys(tmp_path: Path) -> None:
    clock = Clock()
    body = (
        "datasources:\n"
        "  never: {type: text_file, path: t.txt, expires: 0}\n"
        "  forever: {type: text_file, path: t.txt, expires: -1}\n"
        "  byday: {type: text_file, path: '{day}.txt', expires: -1, cache_size: 2}\n"
    )
    data = catalog(tmp_path, body, clock=clock)
    (tmp_path / "t.txt").write_text("one")
    assert data.source("never").get_raw() == data.source("forever").get_raw() == "one"
    (tmp_path / "t.txt").write_text("two")
    clock.now += 10**9
    assert data.source("never").get_raw() == "two"
    assert data.source("forever").get_raw() == "one"
    for day in ("a", "b", "c"):
        (tmp_path / f"{day}.txt").write_text(day)
    assert [data.source("byday").get_raw({"day": d}) for d in "abc"] == ["a", "b", "c"]
    (tmp_path / "a.txt").write_text("A")
    (tmp_path / "c.txt").write_text("C")
    # The cache holds 2 entries: "a" was evicted (re-read), "c" is still cached.
    assert data.source("byday").get_raw({"day": "c"}) == "c"
    assert data.source("byday").get_raw({"day": "a"}) == "A"
    data.clear_caches()
    assert data.source("forever").get_raw() == "two"


def test_chunks_and_caching_do_not_mix(tmp_path: Path) -> None:
    data = catalog(tmp_path, both("c", "csv", "c.csv", source_extra=", expires: 60"))
    with pytest.raises(
        ConfigError,
        match=r"data source 'c': chunksize cannot be combined with caching \(expires: 60\); set expires: 0",
    ):
        data.source("c").get_dataframe(chunksize=10)
