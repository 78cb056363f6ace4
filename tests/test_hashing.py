"""Tests of keel.hashing: pinned vectors, determinism across processes, values, frames, files.

The vectors in ``tests/data/hash_vectors.json`` pin the value encoding: a change that alters
any of them changes every recorded hash and must not happen silently. To add vectors, append
entries without a ``"hash"`` and run ``python tests/test_hashing.py``; it fills in only the
missing hashes and never rewrites an existing one.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import math
import os
import struct
import subprocess
import sys
import uuid
from collections import OrderedDict, namedtuple
from enum import IntEnum
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.errors import InvalidInput, NotFound
from keel.hashing import hash_file, hash_folder, hash_frame, hash_path, hash_tree, hash_value

VECTORS_FILE = Path(__file__).parent / "data" / "hash_vectors.json"
DOMAIN = b"keel/value/v1\x00"


# ------------------------------------------------------------------------------ vectors


def build(desc: dict[str, Any]) -> Any:
    """Turn a JSON description from the vectors file into the Python object it describes."""
    kind = desc["type"]
    simple = {
        "none": lambda: None,
        "bool": lambda: bool(desc["value"]),
        "int": lambda: int(desc["value"]),
        "float": lambda: float(desc["repr"]),
        "complex": lambda: complex(float(desc["real"]), float(desc["imag"])),
        "str": lambda: str(desc["value"]),
        "bytes": lambda: bytes.fromhex(desc["hex"]),
        "bytearray": lambda: bytearray.fromhex(desc["hex"]),
        "memoryview": lambda: memoryview(bytes.fromhex(desc["hex"])),
        "datetime": lambda: dt.datetime.fromisoformat(desc["iso"]),
        "date": lambda: dt.date.fromisoformat(desc["iso"]),
        "time": lambda: dt.time.fromisoformat(desc["iso"]),
        "timedelta": lambda: dt.timedelta(**desc["args"]),
        "decimal": lambda: decimal.Decimal(desc["value"]),
        "uuid": lambda: uuid.UUID(desc["value"]),
        "path": lambda: PurePosixPath(desc["value"]),
        "timestamp": lambda: pd.Timestamp(desc["iso"]),
        "pd_timedelta": lambda: pd.Timedelta(int(desc["ns"]), unit="ns"),
        "nat": lambda: pd.NaT,
        "pd_na": lambda: pd.NA,
    }
    if kind in simple:
        return simple[kind]()
    if kind in ("list", "tuple", "set", "frozenset"):
        items = [build(item) for item in desc["items"]]
        return {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}[kind](items)
    if kind == "dict":
        return {build(key): build(value) for key, value in desc["items"]}
    if kind == "ndarray":
        if "items" in desc:
            flat = np.empty(len(desc["items"]), dtype=object)
            flat[:] = [build(item) for item in desc["items"]]
        else:
            flat = np.array(desc["data"], dtype=desc["dtype"])
        return flat.reshape(desc["shape"])
    if kind == "numpy_scalar":
        if desc["dtype"].startswith(("datetime64", "timedelta64")):
            return np.array(desc["value"], dtype=desc["dtype"])[()]
        return np.dtype(desc["dtype"]).type(desc["value"])
    if kind == "frame":
        frame = pd.DataFrame({_label(c["name"]): _column(c) for c in desc["columns"]})
        if "index" in desc:
            frame.index = _index(desc["index"])
        return frame
    if kind == "series":
        return pd.Series(_column(desc["column"]), name=_label(desc["name"]))
    if kind == "index":
        return _index(desc)
    raise AssertionError(f"unknown vector type {kind!r}")


def _label(label: Any) -> Any:
    return tuple(label) if isinstance(label, list) else label


def _column(desc: dict[str, Any]) -> Any:
    """A column with an explicit dtype, so the vector does not follow pandas' inference."""
    dtype = desc["dtype"]
    if dtype == "object":
        return pd.Series([build(item) for item in desc["items"]], dtype=object)
    if dtype == "category":
        categories = pd.Index(desc["categories"], dtype=desc.get("categories_dtype", object))
        return pd.Series(
            pd.Categorical(desc["values"], categories=categories, ordered=desc["ordered"])
        )
    if dtype.startswith("datetime64[ns, "):
        naive = pd.Series(np.array(desc["values"], dtype="datetime64[ns]"))
        return naive.dt.tz_localize("UTC").dt.tz_convert(dtype[len("datetime64[ns, ") : -1])
    if dtype.startswith(("datetime64", "timedelta64")):
        return pd.Series(np.array(desc["values"], dtype=dtype))
    return pd.Series(desc["values"], dtype=dtype)


def _index(desc: dict[str, Any]) -> pd.Index:
    return pd.Index(_column(desc), name=desc.get("name"))


def compute(desc: dict[str, Any]) -> str:
    """The hash a vector pins: ``hash_frame`` when it asks for the index, else ``hash_value``."""
    value = build(desc)
    if desc.get("include_index"):
        return hash_frame(value, include_index=True)
    return hash_value(value)


def _load_vectors() -> list[dict[str, Any]]:
    return json.loads(VECTORS_FILE.read_text(encoding="utf-8"))


VECTORS = _load_vectors()


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_hash_never_changes(vector: dict[str, Any]) -> None:
    assert compute(vector["value"]) == vector.get("hash")


def test_vectors_are_well_formed_and_cover_every_supported_type() -> None:
    names = [v["name"] for v in VECTORS]
    assert len(names) == len(set(names))
    assert all(len(v["hash"]) == 64 and v["hash"] == v["hash"].lower() for v in VECTORS)
    kinds = {v["value"]["type"] for v in VECTORS}
    assert kinds >= {
        "none", "bool", "int", "float", "complex", "str", "bytes", "bytearray", "memoryview",
        "list", "tuple", "dict", "set", "frozenset", "datetime", "date", "time", "timedelta",
        "decimal", "uuid", "path", "ndarray", "numpy_scalar", "frame", "series", "index",
        "timestamp", "pd_timedelta", "nat", "pd_na",
    }  # fmt: skip
    floats = {v["value"]["repr"] for v in VECTORS if v["value"]["type"] == "float"}
    assert {"nan", "inf", "-inf", "0.0", "-0.0"} <= floats
    dtypes = {v["value"]["dtype"] for v in VECTORS if v["value"]["type"] == "ndarray"}
    assert len(dtypes) >= 8


def test_vectors_record_the_documented_equalities() -> None:
    by_name = {v["name"]: v["hash"] for v in VECTORS}
    assert by_name["list_mixed"] == by_name["tuple_mixed"]
    assert by_name["set_strings"] == by_name["frozenset_strings"]
    assert by_name["bytes"] == by_name["bytearray"] == by_name["memoryview"]
    assert by_name["numpy_int64_scalar"] == by_name["int_42"]
    assert by_name["bool_true"] != by_name["int_1"]
    assert by_name["float_0"] != by_name["float_neg_0"]
    assert by_name["frame_mixed"] != by_name["frame_mixed_with_index"]
    assert by_name["frame_mixed"] == by_name["frame_reindexed_without_index"]


def test_encoding_matches_its_specification() -> None:
    """A few encodings spelled out byte by byte, independently of the implementation."""

    def sha(data: bytes) -> str:
        return hashlib.sha256(DOMAIN + data).hexdigest()

    def q(n: int) -> bytes:
        return struct.pack(">Q", n)

    assert hash_value(None) == sha(b"n")
    assert hash_value(True) == sha(b"b\x01")
    assert hash_value(False) == sha(b"b\x00")
    assert hash_value(1) == sha(b"i" + q(1) + b"\x01")
    assert hash_value(-129) == sha(b"i" + q(2) + b"\xff\x7f")
    assert hash_value(2**64) == sha(b"i" + q(9) + b"\x01" + bytes(8))
    assert hash_value(1.5) == sha(b"f" + struct.pack(">d", 1.5))
    assert hash_value(math.nan) == sha(b"f" + bytes.fromhex("7ff8000000000000"))
    assert hash_value("é") == sha(b"s" + q(2) + "é".encode())
    assert hash_value(b"ab") == sha(b"y" + q(2) + b"ab")
    assert hash_value([None, "é"]) == sha(b"l" + q(2) + b"n" + b"s" + q(2) + "é".encode())
    key, value = hashlib.sha256(DOMAIN + b"n").digest(), hashlib.sha256(DOMAIN + b"b\x01").digest()
    assert hash_value({None: True}) == sha(b"d" + q(1) + key + value)
    assert hash_value({None}) == sha(b"e" + q(1) + key)
    digest = "ab" * 32
    tree = b"keel/tree/v1\x00" + q(1) + q(3) + b"a/b" + bytes.fromhex(digest)
    assert hash_tree({"a/b": digest}) == hashlib.sha256(tree).hexdigest()


# ------------------------------------------------------------------ cross-process determinism

_CHILD = """
import json
from keel.hashing import hash_value
strings = ["", "a", "keel", "héllo", "日本語", "🎉"]
value = {
    "strings": [hash_value(s) for s in strings],
    "dict": hash_value({s: i for i, s in enumerate(strings)}),
    "frozenset": hash_value(frozenset(strings)),
    "set": hash_value(set(strings[::-1])),
    "nested": hash_value({"k": [frozenset({"x", "y"}), {"z": (1, 2.5, None)}]}),
}
print(json.dumps(value))
"""


def _in_process_hashes() -> dict[str, Any]:
    strings = ["", "a", "keel", "héllo", "日本語", "🎉"]
    return {
        "strings": [hash_value(s) for s in strings],
        "dict": hash_value({s: i for i, s in enumerate(strings)}),
        "frozenset": hash_value(frozenset(strings)),
        "set": hash_value(set(strings[::-1])),
        "nested": hash_value({"k": [frozenset({"x", "y"}), {"z": (1, 2.5, None)}]}),
    }


@pytest.mark.parametrize("seed", ["0", "4242"])
def test_hashes_are_identical_across_processes_and_hash_seeds(seed: str) -> None:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == _in_process_hashes()


def test_importing_the_module_does_not_import_numpy_or_pandas() -> None:
    code = (
        "import sys, keel.hashing as h; h.hash_value({'a': [1, 2.0]}); "
        "print('numpy' in sys.modules, 'pandas' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


# ------------------------------------------------------------------------------ values


def test_bool_is_distinct_from_int_and_int_from_float() -> None:
    assert hash_value(True) != hash_value(1)
    assert hash_value(False) != hash_value(0)
    assert hash_value(1) != hash_value(1.0)
    assert hash_value([True]) != hash_value([1])
    assert hash_value({1: "a"}) != hash_value({True: "a"})


def test_all_nans_hash_equal_and_negative_zero_differs() -> None:
    payload_nan = struct.unpack(">d", bytes.fromhex("7ff8000000000123"))[0]
    negative_nan = struct.unpack(">d", bytes.fromhex("fff8000000000000"))[0]
    nans = [math.nan, float("nan"), -math.nan, payload_nan, negative_nan, float(np.nan)]
    assert len({hash_value(x) for x in nans}) == 1
    assert hash_value(complex(math.nan, 1)) == hash_value(complex(negative_nan, 1))
    assert hash_value(-0.0) != hash_value(0.0)
    assert len({hash_value(x) for x in (math.inf, -math.inf, math.nan, 0.0)}) == 4


def test_sequences_sets_and_bytes_hash_by_content_not_type() -> None:
    assert hash_value([1, "a", None]) == hash_value((1, "a", None))
    assert hash_value({1, 2}) == hash_value(frozenset({2, 1}))
    assert hash_value(b"xy") == hash_value(bytearray(b"xy")) == hash_value(memoryview(b"xy"))
    assert hash_value([]) != hash_value({}) != hash_value(set()) != hash_value(b"")
    assert hash_value([[1], 2]) != hash_value([1, [2]])
    assert hash_value(["ab", "c"]) != hash_value(["a", "bc"])


def test_subclasses_hash_as_their_base_type() -> None:
    class Colour(IntEnum):
        RED = 1

    Point = namedtuple("Point", "x y")
    assert hash_value(Colour.RED) == hash_value(1)
    assert hash_value(Point(1, 2)) == hash_value((1, 2))
    assert hash_value(OrderedDict([("a", 1), ("b", 2)])) == hash_value({"b": 2, "a": 1})


def test_dates_decimals_uuids_and_paths() -> None:
    moment = dt.datetime(2024, 5, 1, 12, 30, 15, 250)
    assert hash_value(moment) == hash_value(pd.Timestamp(moment))
    assert hash_value(moment) != hash_value(moment.date())
    aware = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
    assert hash_value(aware) != hash_value(aware.replace(tzinfo=None))
    assert hash_value(dt.timedelta(seconds=1)) == hash_value(pd.Timedelta(seconds=1))
    assert hash_value(pd.Timedelta(1, unit="ns")) != hash_value(dt.timedelta(0))
    assert hash_value(decimal.Decimal("1.0")) != hash_value(decimal.Decimal("1.00"))
    assert hash_value(decimal.Decimal("1.0")) != hash_value("1.0")
    value = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert hash_value(value) != hash_value(str(value))
    assert hash_value(PureWindowsPath("a\\b.txt")) == hash_value(PurePosixPath("a/b.txt"))
    assert hash_value(Path("a/b.txt")) != hash_value("a/b.txt")


def test_numpy_scalars_hash_as_python_values() -> None:
    assert hash_value(np.int64(3)) == hash_value(3) == hash_value(np.uint8(3))
    assert hash_value(np.float32(0.5)) == hash_value(0.5) == hash_value(np.float64(0.5))
    assert hash_value(np.float32(0.1)) == hash_value(float(np.float32(0.1))) != hash_value(0.1)
    assert hash_value(np.bool_(True)) == hash_value(True)
    assert hash_value(np.str_("é")) == hash_value("é")
    assert hash_value(np.float64(np.nan)) == hash_value(math.nan)
    moment = np.datetime64("2024-01-01", "ns")
    assert hash_value(moment) == hash_value(np.array(moment))
    assert hash_value(moment) != hash_value(np.datetime64("2024-01-01", "us"))


def test_numpy_arrays_hash_by_dtype_shape_and_values() -> None:
    values = np.arange(12, dtype=np.int64).reshape(3, 4)
    assert hash_value(values) == hash_value(values.copy())
    assert hash_value(values) == hash_value(values.astype(">i8"))  # byte order is irrelevant
    assert hash_value(values.T) == hash_value(np.ascontiguousarray(values.T))
    assert hash_value(values[:, ::2]) == hash_value(values[:, ::2].copy())
    assert hash_value(values) != hash_value(values.astype(np.int32))
    assert hash_value(values) != hash_value(values.reshape(4, 3))
    assert hash_value(values) != hash_value(values.tolist())
    assert hash_value(np.array(5)) != hash_value(np.array([5]))
    payload_nan = np.array([0x7FF8000000000123, -0x0008000000000000], dtype=np.int64)
    odd_nans = payload_nan.view(np.float64)
    assert np.isnan(odd_nans).all()
    assert hash_value(odd_nans) == hash_value(np.array([np.nan, np.nan]))
    assert hash_value(np.array([np.nan], dtype=np.float32)) != hash_value(np.array([np.nan]))
    assert hash_value(np.array([-0.0])) != hash_value(np.array([0.0]))
    objects = np.array(["a", 1, None], dtype=object)
    assert hash_value(objects) == hash_value(np.array(["a", 1, None], dtype=object))
    assert hash_value(objects) != hash_value(np.array(["a", 2, None], dtype=object))


def test_structured_and_string_dtype_arrays() -> None:
    records = np.array([(1, 2.5), (3, 4.5)], dtype=[("a", "<i4"), ("b", "<f8")])
    assert hash_value(records) == hash_value(records.astype([("a", ">i4"), ("b", ">f8")]))
    assert hash_value(records) != hash_value(records.astype([("c", "<i4"), ("b", "<f8")]))
    if hasattr(np.dtypes, "StringDType"):
        strings = np.array(["a", "bb"], dtype=np.dtypes.StringDType())
        assert hash_value(strings) == hash_value(strings.copy())
        assert hash_value(strings) != hash_value(np.array(["a", "bc"], dtype=strings.dtype))


def test_refused_arrays_raise_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="masked"):
        hash_value(np.ma.masked_array([1, 2], mask=[True, False]))
    if np.dtype(np.longdouble).itemsize > 8:
        with pytest.raises(InvalidInput, match="float64"):
            hash_value(np.zeros(2, dtype=np.longdouble))


def test_unsupported_types_raise_invalid_input_naming_the_type() -> None:
    class Widget:
        pass

    with pytest.raises(InvalidInput, match="Widget"):
        hash_value(Widget())
    with pytest.raises(InvalidInput, match="Widget"):
        hash_value({"nested": [1, Widget()]})
    with pytest.raises(InvalidInput, match="function"):
        hash_value(len)
    with pytest.raises(InvalidInput, match="numpy"):
        hash_value(np.dtype("int64"))


def test_values_that_contain_themselves_are_refused() -> None:
    looped: list[Any] = [1]
    looped.append(looped)
    with pytest.raises(InvalidInput, match="contains itself"):
        hash_value(looped)
    mapping: dict[str, Any] = {}
    mapping["self"] = [mapping]
    with pytest.raises(InvalidInput, match="contains itself"):
        hash_value(mapping)
    shared = [1, 2]
    assert hash_value([shared, shared]) == hash_value([[1, 2], [1, 2]])


def test_deep_nesting_is_refused_cleanly() -> None:
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(InvalidInput, match="nested too deeply"):
        hash_value(deep)


# -------------------------------------------------------------------------- properties

_KEYS = st.one_of(st.text(max_size=8), st.integers(), st.binary(max_size=8), st.none())
_LEAVES = st.one_of(
    st.none(), st.integers(), st.text(max_size=10), st.binary(max_size=10), st.booleans()
)


@given(st.dictionaries(_KEYS, _LEAVES, max_size=20), st.randoms(use_true_random=False))
def test_dict_hash_is_independent_of_insertion_order(mapping: dict[Any, Any], rng: Any) -> None:
    items = list(mapping.items())
    rng.shuffle(items)
    assert hash_value(dict(items)) == hash_value(mapping)
    assert hash_value(dict(reversed(items))) == hash_value(mapping)


@given(st.lists(_KEYS, max_size=30), st.randoms(use_true_random=False))
def test_set_hash_is_independent_of_insertion_order(items: list[Any], rng: Any) -> None:
    shuffled = list(items)
    rng.shuffle(shuffled)
    grown: set[Any] = set()
    for item in reversed(items):
        grown.add(item)
    assert hash_value(set(items)) == hash_value(frozenset(shuffled)) == hash_value(grown)


@given(st.lists(_LEAVES, min_size=2, max_size=10, unique_by=hash_value))
def test_list_hash_depends_on_order(items: list[Any]) -> None:
    assert hash_value(items) != hash_value(items[::-1])
    assert hash_value(items) != hash_value(items[1:] + items[:1])


_NESTED = st.recursive(
    st.one_of(st.none(), st.integers(), st.text(max_size=6), st.binary(max_size=6)),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=12,
)


@given(_NESTED, _NESTED)
def test_hashes_are_equal_exactly_when_values_are_equal(left: Any, right: Any) -> None:
    assert (hash_value(left) == hash_value(right)) == (left == right)
    if _json_safe(left):
        assert hash_value(json.loads(json.dumps(left))) == hash_value(left)


def _json_safe(value: Any) -> bool:
    if isinstance(value, bytes):
        return False
    if isinstance(value, list):
        return all(map(_json_safe, value))
    if isinstance(value, dict):
        return all(map(_json_safe, value.values()))
    return True


# ------------------------------------------------------------------------------ frames


def _frame(**overrides: Any) -> pd.DataFrame:
    columns: dict[str, Any] = {
        "i": pd.Series([1, 2, 3], dtype="int64"),
        "f": pd.Series([0.5, np.nan, 2.5], dtype="float64"),
        "s": pd.Series(["a", None, "c"], dtype=object),
        "d": pd.Series(np.array(["2024-01-01", "NaT", "2024-01-03"], dtype="datetime64[ns]")),
        "c": pd.Series(pd.Categorical(["x", "y", "x"], categories=["x", "y"])),
    }
    columns.update(overrides)
    return pd.DataFrame(columns)


def test_equal_frames_hash_equal() -> None:
    assert hash_value(_frame()) == hash_value(_frame())
    assert hash_frame(_frame()) == hash_value(_frame())
    assert hash_value(_frame()) == hash_value(_frame().copy(deep=True))


def test_frame_dtype_matters() -> None:
    as_float = pd.Series([1.0, 2.0, 3.0], dtype="float64")
    assert hash_value(_frame(i=as_float)) != hash_value(_frame())
    assert hash_value(_frame(i=pd.Series([1, 2, 3], dtype="int32"))) != hash_value(_frame())
    assert hash_value(_frame(i=pd.Series([1, 2, 3], dtype="Int64"))) != hash_value(_frame())
    plain = pd.Series(["x", "y", "x"], dtype=object)
    assert hash_value(_frame(c=plain)) != hash_value(_frame())


def test_frame_column_names_and_order_matter() -> None:
    assert hash_value(_frame().rename(columns={"i": "j"})) != hash_value(_frame())
    assert hash_value(_frame()[["f", "i", "s", "d", "c"]]) != hash_value(_frame())


def test_frame_row_order_matters_and_index_is_ignored_by_default() -> None:
    frame = _frame()
    reversed_rows = frame.iloc[::-1].reset_index(drop=True)
    assert hash_value(reversed_rows) != hash_value(frame)
    reindexed = frame.set_axis(["a", "b", "c"], axis=0)
    assert hash_value(reindexed) == hash_value(frame)
    assert hash_frame(reindexed, include_index=True) != hash_frame(frame, include_index=True)
    assert hash_frame(frame, include_index=True) != hash_frame(frame)
    assert hash_frame(frame, include_index=True) == hash_frame(frame.copy(), include_index=True)


def test_frame_values_matter() -> None:
    changed = _frame()
    changed.loc[1, "f"] = 1.5
    assert hash_value(changed) != hash_value(_frame())
    categories = pd.Series(pd.Categorical(["x", "y", "x"], categories=["y", "x"]))
    assert hash_value(_frame(c=categories)) != hash_value(_frame())


def test_series_and_index() -> None:
    series = pd.Series([1.5, 2.5], name="a")
    assert hash_value(series) == hash_value(series.set_axis(["p", "q"]))
    assert hash_frame(series, include_index=True) != hash_frame(series.set_axis(["p", "q"]), True)
    assert hash_value(series) != hash_value(series.rename("b"))
    assert hash_value(series) != hash_value(series.to_frame())
    assert hash_value(pd.RangeIndex(3)) == hash_value(pd.Index([0, 1, 2], dtype="int64"))
    assert hash_value(pd.Index([1, 2], name="x")) != hash_value(pd.Index([1, 2], name="y"))
    multi = pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["k", "n"])
    assert hash_value(multi) == hash_value(multi.copy())
    assert hash_value(multi) != hash_value(multi.set_names(["k", "m"]))


def test_nullable_string_and_tz_columns() -> None:
    nullable = pd.array([1, None, 3], dtype="Int64")
    assert hash_value(pd.Series(nullable)) == hash_value(pd.Series([1, None, 3], dtype="Int64"))
    assert hash_value(pd.Series(nullable)) != hash_value(pd.Series([1, 0, 3], dtype="Int64"))
    utc = pd.Series(pd.to_datetime(["2024-01-01 12:00"]).tz_localize("UTC"))
    paris = utc.dt.tz_convert("Europe/Paris")
    assert hash_value(utc) != hash_value(paris)
    assert hash_value(paris) == hash_value(paris.copy())
    with_na = pd.Series(["a", None], dtype="string")
    assert hash_value(with_na) != hash_value(pd.Series(["a", ""], dtype="string"))


def test_string_storage_does_not_change_the_hash() -> None:
    pytest.importorskip("pyarrow")
    python = pd.Series(["a", None, "é"], dtype=pd.StringDtype("python"))
    arrow = pd.Series(["a", None, "é"], dtype=pd.StringDtype("pyarrow"))
    assert hash_value(python) == hash_value(arrow)


def test_string_missing_value_semantics_change_the_hash() -> None:
    try:
        with_nan = pd.StringDtype("python", na_value=np.nan)
    except TypeError:
        pytest.skip("this pandas has no NaN-semantics string dtype")
    values = ["a", None, "b"]
    assert hash_value(pd.Series(values, dtype=with_nan)) != hash_value(
        pd.Series(values, dtype=pd.StringDtype("python"))
    )
    assert hash_value(pd.Series(values, dtype=with_nan)) != hash_value(
        pd.Series(values, dtype=object)
    )


def test_frames_with_unusual_columns() -> None:
    frame = pd.DataFrame(
        {
            "period": pd.period_range("2024-01", periods=2, freq="M"),
            "interval": pd.interval_range(0, 2),
            "bools": pd.array([True, None], dtype="boolean"),
        }
    )
    assert hash_value(frame) == hash_value(frame.copy())
    duplicated = pd.DataFrame([[1, 2]], columns=["a", "a"])
    assert hash_value(duplicated) != hash_value(pd.DataFrame([[2, 1]], columns=["a", "a"]))


def test_hash_frame_refuses_other_types() -> None:
    with pytest.raises(InvalidInput, match="DataFrame"):
        hash_frame([1, 2])  # type: ignore[arg-type]


def test_large_numeric_frame_hashes_quickly() -> None:
    import time

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.standard_normal((1_000_000, 10)), columns=list("abcdefghij"))
    started = time.perf_counter()
    hash_value(frame)
    assert time.perf_counter() - started < 2.0


# ------------------------------------------------------------------------------ files


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("size", [0, 1, 1 << 20, (5 << 20) // 2 + 7])
def test_hash_file_is_plain_sha256(tmp_path: Path, size: int) -> None:
    data = np.random.default_rng(size).bytes(size)
    path = _write(tmp_path / "blob.bin", data)
    assert hash_file(path) == hashlib.sha256(data).hexdigest()
    assert hash_file(str(path)) == hash_file(path)


def test_hash_file_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"missing\.bin"):
        hash_file(tmp_path / "missing.bin")
    with pytest.raises(InvalidInput, match="folder"):
        hash_file(tmp_path)


def _sample_folder(root: Path) -> dict[str, bytes]:
    files = {
        "top.txt": b"top",
        ".hidden": b"hidden",
        "sub/a.csv": b"1,2\n",
        "sub/deeper/b.bin": bytes(range(256)),
        "other/empty.txt": b"",
        "ünïcode/名前.txt": "hé".encode(),
    }
    for relative, data in files.items():
        _write(root / relative, data)
    (root / "empty_folder").mkdir()
    return files


def test_hash_folder_equals_hash_tree_of_file_hashes(tmp_path: Path) -> None:
    root = tmp_path / "folder"
    files = _sample_folder(root)
    expected = hash_tree({rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()})
    assert hash_folder(root) == expected
    assert hash_path(root) == expected
    assert hash_folder(str(root)) == expected


def test_hash_folder_takes_the_files_the_client_uploads(tmp_path: Path) -> None:
    root = tmp_path / "folder"
    _sample_folder(root)
    outside = _write(tmp_path / "outside" / "target.txt", b"outside")
    try:
        os.symlink(outside, root / "linked.txt")
        os.symlink(outside.parent, root / "linked_folder", target_is_directory=True)
        os.symlink(tmp_path / "nowhere", root / "broken")
    except (OSError, NotImplementedError):
        pytest.skip("symbolic links are not available here")
    uploaded = {
        p.relative_to(root).as_posix(): hash_file(p) for p in root.rglob("*") if p.is_file()
    }
    assert "linked.txt" in uploaded
    assert not any(key.startswith(("linked_folder", "broken")) for key in uploaded)
    assert hash_folder(root) == hash_tree(uploaded)


def test_moving_or_renaming_a_file_changes_the_folder_hash(tmp_path: Path) -> None:
    root = tmp_path / "folder"
    _sample_folder(root)
    before = hash_folder(root)
    (root / "sub" / "a.csv").rename(root / "other" / "a.csv")
    moved = hash_folder(root)
    assert moved != before
    (root / "other" / "a.csv").rename(root / "other" / "b.csv")
    assert hash_folder(root) not in (before, moved)
    (root / "other" / "b.csv").rename(root / "sub" / "a.csv")
    assert hash_folder(root) == before


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty" / "nested").mkdir(parents=True)
    assert hash_folder(tmp_path / "empty") == hash_tree({})


def test_hash_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="gone"):
        hash_folder(tmp_path / "gone")
    file = _write(tmp_path / "file.txt", b"x")
    with pytest.raises(InvalidInput, match=r"file\.txt"):
        hash_folder(file)


def test_hash_path(tmp_path: Path) -> None:
    file = _write(tmp_path / "file.txt", b"content")
    assert hash_path(file) == hashlib.sha256(b"content").hexdigest()
    folder = tmp_path / "folder"
    _sample_folder(folder)
    assert hash_path(folder) == hash_folder(folder)
    missing = tmp_path / "not-there"
    with pytest.raises(NotFound, match="not-there"):
        hash_path(missing)
    try:
        os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    except (OSError, NotImplementedError):
        return
    with pytest.raises(NotFound, match="dangling"):
        hash_path(tmp_path / "dangling")


# ------------------------------------------------------------------------------ trees

_DIGEST = st.binary(min_size=32, max_size=32).map(bytes.hex)
_PATHS = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=12)


@given(st.dictionaries(_PATHS, _DIGEST, max_size=12), st.randoms(use_true_random=False))
def test_hash_tree_is_independent_of_order(entries: dict[str, str], rng: Any) -> None:
    items = list(entries.items())
    rng.shuffle(items)
    assert hash_tree(dict(items)) == hash_tree(entries)


def test_hash_tree_distinguishes_structures() -> None:
    x, y = "11" * 32, "22" * 32
    assert hash_tree({"a/b": x}) != hash_tree({"a": x})
    assert hash_tree({"a/b": x}) != hash_tree({"a": x, "b": x})
    assert hash_tree({"ab": x, "c": y}) != hash_tree({"a": x, "bc": y})
    assert hash_tree({"a": x, "b": y}) != hash_tree({"a": y, "b": x})
    assert hash_tree({}) != hash_tree({"a": x})
    assert hash_tree({"a": x.upper()}) == hash_tree({"a": x})
    assert hash_tree({"f": x}) != x  # a folder of one file is not that file


@pytest.mark.parametrize(
    "entries",
    [{"": "11" * 32}, {"a": "11" * 31}, {"a": "zz" * 32}, {"a": " " + "1" * 63}, {1: "11" * 32}],
)
def test_hash_tree_refuses_malformed_entries(entries: dict[Any, Any]) -> None:
    with pytest.raises(InvalidInput):
        hash_tree(entries)


# ------------------------------------------------------------------------------ regenerate


def _fill_missing_hashes() -> None:
    """Compute the hash of every vector that has none yet; existing hashes are kept."""
    vectors = _load_vectors()
    for vector in vectors:
        vector.setdefault("hash", compute(vector["value"]))
    text = json.dumps(vectors, indent=1, ensure_ascii=False)
    VECTORS_FILE.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    _fill_missing_hashes()
