"""The read cache (expiry, LRU, threads), the dtypes file, and the helpers model code uses."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from keel.data.cache import ReadCache, cache_key
from keel.data.dtypes import enforce_dtypes, read_csv_kwargs, read_dtypes, write_dtypes
from keel.data.helpers import order_columns, to_plain_python
from keel.errors import ConfigError, InvalidInput, NotFound


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_cache_expiry_and_lru() -> None:
    clock = Clock()
    cache = ReadCache(expires=10, size=2, clock=clock)
    loads: list[str] = []

    def load(key: str) -> str:
        loads.append(key)
        return key.upper()

    assert cache.get_or_load("a", lambda: load("a")) == "A"
    assert cache.get_or_load("a", lambda: load("a")) == "A"
    clock.now = 9.9
    cache.get_or_load("a", lambda: load("a"))
    assert loads == ["a"]
    clock.now = 10.0
    cache.get_or_load("a", lambda: load("a"))  # expired at exactly 10 s
    assert loads == ["a", "a"]
    cache.get_or_load("b", lambda: load("b"))
    cache.get_or_load("a", lambda: load("a"))  # a is now the most recently used
    cache.get_or_load("c", lambda: load("c"))  # evicts b
    assert len(cache) == 2
    cache.get_or_load("a", lambda: load("a"))
    cache.get_or_load("b", lambda: load("b"))
    assert loads == ["a", "a", "b", "c", "b"]


def test_cache_never_and_forever() -> None:
    clock = Clock()
    never, forever = ReadCache(0, clock=clock), ReadCache(-1, clock=clock)
    counts = {"never": 0, "forever": 0}

    def count(name: str) -> int:
        counts[name] += 1
        return counts[name]

    for _ in range(3):
        never.get_or_load("k", lambda: count("never"))
        forever.get_or_load("k", lambda: count("forever"))
        clock.now += 10**9
    assert counts == {"never": 3, "forever": 1}
    assert len(never) == 0


def test_a_failing_load_caches_nothing() -> None:
    cache = ReadCache(-1)

    def boom() -> int:
        raise OSError("disk gone")

    with pytest.raises(OSError):
        cache.get_or_load("k", boom)
    assert len(cache) == 0
    assert cache.get_or_load("k", lambda: 5) == 5


def test_concurrent_misses_load_once() -> None:
    cache = ReadCache(-1)
    calls = 0
    lock = threading.Lock()

    def slow() -> str:
        nonlocal calls
        with lock:
            calls += 1
        time.sleep(0.05)
        return "v"

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: cache.get_or_load("k", slow), range(16)))
    assert results == ["v"] * 16
    assert calls == 1


def test_cache_keys_ignore_param_order_and_take_unhashable_values() -> None:
    assert cache_key("get", {"a": 1, "b": [1, 2]}) == cache_key("get", {"b": [1, 2], "a": 1})
    assert cache_key("get", {"a": 1}) != cache_key("get", {"a": 2})
    assert cache_key("get_raw", None) != cache_key("get_dataframe", None)
    hash(cache_key("get", {"d": {"x": [1]}}))


# --- dtypes -------------------------------------------------------------------------------


def test_dtypes_round_trip_euro_style(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "price": [1.25, np.nan],
            "when": pd.to_datetime(["2026-03-29 01:30", "2026-10-25 03:30"]).tz_localize(
                "Europe/Berlin"
            ),
            "took": pd.to_timedelta(["1 days 02:00:00", "00:00:05"]),
            "size": pd.Categorical([3, None], categories=[1, 3, 5]),
            "ok": pd.array([True, None], dtype="boolean"),
            "ratio": pd.array([0.5, None], dtype="Float64"),
        }
    )
    write_dtypes(frame, str(tmp_path / "sub" / "d.json"))
    spec = read_dtypes(str(tmp_path / "sub" / "d.json"))
    frame.to_csv(tmp_path / "d.csv", index=False, sep=";", decimal=",")
    back = pd.read_csv(tmp_path / "d.csv", sep=";", decimal=",", **read_csv_kwargs(spec))
    assert_frame_equal(enforce_dtypes(back, spec, "data source 'd'"), frame)


def test_dtypes_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"dtypes file .*none\.json not found"):
        read_dtypes(str(tmp_path / "none.json"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        read_dtypes(str(tmp_path / "bad.json"))
    (tmp_path / "other.json").write_text(json.dumps({"columns": 3}))
    with pytest.raises(ConfigError, match="is not a keel dtypes file"):
        read_dtypes(str(tmp_path / "other.json"))
    spec = {
        "format": "keel.dtypes/1",
        "columns": [{"name": "n", "dtype": "int64"}, {"name": "gone", "dtype": "str"}],
    }
    with pytest.raises(
        InvalidInput,
        match=r"data source 'x': column\(s\) gone of the dtypes file are not in the data",
    ):
        enforce_dtypes(pd.DataFrame({"n": ["1"]}), spec, "data source 'x'")
    spec["columns"].pop()
    with pytest.raises(InvalidInput, match=r"data source 'x': column 'n' cannot be read as int64"):
        enforce_dtypes(pd.DataFrame({"n": ["one"]}), spec, "data source 'x'")
    cats = {
        "format": "keel.dtypes/1",
        "columns": [
            {
                "name": "c",
                "dtype": "category",
                "categories": ["a"],
                "categories_dtype": "str",
                "ordered": False,
            }
        ],
    }
    with pytest.raises(InvalidInput, match="1 value\\(s\\) are not among its categories"):
        enforce_dtypes(pd.DataFrame({"c": ["a", "b"]}), cats, "data source 'x'")


# --- helpers ------------------------------------------------------------------------------


def test_order_columns() -> None:
    frame = pd.DataFrame({"b": [1], "a": [2], "C": [3]})
    assert list(order_columns(frame).columns) == ["C", "a", "b"]
    assert list(order_columns({"z": 1, "a": 2})) == ["a", "z"]
    arr = np.array([(1, 2.0)], dtype=[("y", "i4"), ("x", "f8")])
    assert order_columns(arr).dtype.names == ("x", "y")
    with pytest.raises(
        InvalidInput,
        match="order_columns takes a pandas DataFrame, a dict or a numpy structured array, got list",
    ):
        order_columns([1, 2])


def test_to_plain_python_makes_json() -> None:
    value = {
        "i": np.int64(3),
        "f": np.float32(0.5),
        "nan": np.nan,
        "na": pd.NA,
        "nat": pd.NaT,
        "b": np.bool_(True),
        "arr": np.array([[1, 2], [3, 4]]),
        "dates": np.array(["2026-01-01"], dtype="datetime64[ns]"),
        "ts": pd.Timestamp("2026-11-23 10:00", tz="UTC"),
        "td": pd.Timedelta(seconds=90),
        "series": pd.Series([1.0, None]),
        "frame": pd.DataFrame({"a": [1], "b": ["x"]}),
        "date": dt.date(2026, 1, 2),
        "dec": decimal.Decimal("1.5"),
        "set": {3, 1},
        "tuple": (1, "a"),
        "inf": float("inf"),
    }
    plain = to_plain_python(value)
    json.dumps({k: v for k, v in plain.items() if k != "inf"}, allow_nan=False)
    assert plain == {
        "i": 3,
        "f": 0.5,
        "nan": None,
        "na": None,
        "nat": None,
        "b": True,
        "arr": [[1, 2], [3, 4]],
        "dates": ["2026-01-01T00:00:00"],
        "ts": "2026-11-23T10:00:00+00:00",
        "td": 90.0,
        "series": [1.0, None],
        "frame": [{"a": 1, "b": "x"}],
        "date": "2026-01-02",
        "dec": 1.5,
        "set": [1, 3],
        "tuple": [1, "a"],
        "inf": float("inf"),
    }
    with pytest.raises(InvalidInput, match="cannot turn a object into plain JSON-able Python"):
        to_plain_python(object())
