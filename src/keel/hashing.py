"""Deterministic content hashing: how keel turns values, files and folders into sha256 hex.

This module owns every content hash keel records. A hash is a 64-character lowercase hex
sha256 digest and is identical across processes, machines, operating systems and values of
``PYTHONHASHSEED``; nothing here depends on Python's ``hash()``, on dict or set iteration
order, or on the machine's byte order. numpy and pandas are imported only when a value of
theirs is hashed, so ``import keel.hashing`` stays light.

Files and folders:

* :func:`hash_file` is the plain sha256 of a file's bytes, equal to ``sha256sum``. The
  artifact store records exactly this value per file.
* :func:`hash_tree` hashes a folder given ``{relative posix path: file sha256}``, so a
  folder's hash can be recomputed from recorded per-file hashes without reading any file.
* :func:`hash_folder` is :func:`hash_tree` of every file below a folder. It takes the same
  files the tracking client uploads (``Path.rglob("*")`` filtered by ``is_file()``): regular
  files at any depth, hidden ones included; symbolic links to files are followed (the
  target's bytes are hashed under the link's path, wherever the target lives); symbolic
  links to folders are not descended; broken links, sockets and FIFOs are skipped; empty
  folders contribute nothing.
* :func:`hash_path` picks :func:`hash_file` or :func:`hash_folder`.

Values (:func:`hash_value`) are hashed from a canonical, type-tagged byte encoding,
prefixed by the domain string ``keel/value/v1``; ``tests/data/hash_vectors.json`` pins it.
Any change to the encoding changes recorded hashes, so it needs a new domain version. The
choices it makes:

* ``bool`` is distinct from ``int`` (``True`` and ``1`` differ), ``int`` from ``float``
  (``1`` and ``1.0`` differ); ints have arbitrary size.
* Floats are encoded as IEEE-754 binary64 bits. All NaNs hash equal (any sign or payload);
  ``-0.0`` and ``0.0`` hash *differently* (bit-exact, as in numpy arrays, where the
  bytes are hashed). ``inf`` and ``-inf`` are ordinary values. Complex numbers are two
  floats under their own tag.
* ``list`` and ``tuple`` with the same items hash equal: both are "a sequence".
  ``set`` and ``frozenset`` hash equal: both are "a set", order independent. Dicts are
  order independent (entries sorted by the hashes of key and value).
* ``str`` is UTF-8 (lone surrogates allowed); ``bytes``, ``bytearray`` and ``memoryview``
  with the same bytes hash equal.
* ``datetime``, ``date`` and ``time`` hash as their ``isoformat()`` (an aware datetime
  carries its UTC offset, so the same instant in two offsets hashes differently);
  ``pandas.Timestamp`` uses the same encoding as ``datetime`` (equal when a datetime can
  represent it). ``timedelta`` and ``pandas.Timedelta`` hash as integer nanoseconds.
  ``Decimal`` hashes as ``str()`` (``Decimal("1.0")`` and ``Decimal("1.00")`` differ),
  ``UUID`` as its 16 bytes, a ``PurePath`` as its ``as_posix()`` string (the path, not the
  file; use :func:`hash_path` for content).
* Subclasses of the supported built-in types hash as their base type (an ``IntEnum`` as an
  int, a ``namedtuple`` as a sequence, an ``OrderedDict`` as a dict).
* numpy scalars of boolean, integer, float (up to 64 bits), complex (up to 128 bits),
  bytes and str kinds hash as the equivalent Python value (``np.int64(3)`` equals ``3``,
  ``np.float32(0.5)`` equals ``0.5``; ``np.float32(0.1)`` equals the Python float it
  widens to, not ``0.1``). Other numpy scalars (``datetime64``, ``timedelta64``, ``void``)
  hash as 0-d arrays.
* numpy arrays hash as dtype + shape + C-order element bytes in little-endian form, so
  byte order and memory layout do not matter but the dtype does (``int32`` and ``int64``
  arrays differ). NaNs in float and complex arrays are normalised. Object arrays are hashed
  element by element with :func:`hash_value`; structured arrays field by field. Masked
  arrays and ``longdouble`` arrays (whose layout and padding differ between platforms) are
  refused.
* pandas: a DataFrame hashes its shape and, column by column in order, the column label,
  dtype and values; the index is *not* included unless
  ``hash_frame(df, include_index=True)``. A Series hashes its name, dtype and values (no
  index); an Index its names and values. Numeric, boolean and datetime columns are hashed
  from their numpy bytes; categoricals as categories + codes (+ ordered); tz-aware
  datetimes as time zone + UTC values; nullable (masked) dtypes as dtype name + mask +
  values; string dtypes element-wise, ignoring the storage (python or pyarrow) but not the
  missing-value semantics (``"str"`` with NaN versus ``"string"`` with ``pd.NA``); object
  and other columns element-wise with :func:`hash_value`. Hashes follow dtypes, and pandas
  versions may infer different dtypes from the same constructor call (pandas 3 infers
  ``str`` and ``datetime64[us]`` where pandas 2 inferred ``object`` and
  ``datetime64[ns]``).

Anything else raises :class:`keel.errors.InvalidInput` naming the type.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import os
import re
import stat
import struct
import sys
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    import numpy
    import pandas

__all__ = [
    "CHUNK_SIZE",
    "hash_file",
    "hash_folder",
    "hash_frame",
    "hash_path",
    "hash_tree",
    "hash_value",
]

CHUNK_SIZE = 1 << 20
"""Bytes read at a time by :func:`hash_file` (1 MiB)."""

_VALUE_DOMAIN = b"keel/value/v1\x00"
_TREE_DOMAIN = b"keel/tree/v1\x00"
_FLUSH_AT = 1 << 16
_STRING_BLOCK = 1 << 16
_Q = struct.Struct(">Q")
_D = struct.Struct(">d")
_CANONICAL_NAN = bytes.fromhex("7ff8000000000000")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")

_Active = set[int]
_Writer = Callable[["_Sink", Any, _Active], None]


class _Sink:
    """A sha256 fed through a small buffer, so many tiny writes stay cheap."""

    __slots__ = ("_buf", "_hasher")

    def __init__(self, domain: bytes) -> None:
        self._hasher = hashlib.sha256(domain)
        self._buf = bytearray()

    def write(self, data: Any) -> None:
        """Append bytes (any 1-D byte buffer; ``len`` must be its size in bytes)."""
        if len(data) >= _FLUSH_AT:
            self._flush()
            self._hasher.update(data)
            return
        self._buf += data
        if len(self._buf) >= _FLUSH_AT:
            self._flush()

    def _flush(self) -> None:
        if self._buf:
            self._hasher.update(self._buf)
            self._buf.clear()

    def digest(self) -> bytes:
        """The sha256 digest of everything written."""
        self._flush()
        return self._hasher.digest()


# ---------------------------------------------------------------------------------------------
# values


def hash_value(obj: object) -> str:
    """Hash a value from its canonical, type-tagged encoding.

    See the module documentation for the supported types and how each is encoded.

    Args:
        obj: The value: None, bool, int, float, complex, str, bytes-like, list, tuple,
            dict, set, frozenset, datetime, date, time, timedelta, Decimal, UUID, PurePath,
            a numpy array or scalar, or a pandas DataFrame, Series, Index, extension array
            or scalar (Timestamp, Timedelta, Period, Interval, NaT, NA); containers nest.

    Returns:
        The 64-character lowercase hex sha256 digest.

    Raises:
        InvalidInput: The value (or something inside it) has an unsupported type, refers
            to itself, or is nested too deeply.
    """
    try:
        return _digest(obj, set()).hex()
    except RecursionError:
        raise InvalidInput("cannot hash the value: it is nested too deeply") from None


def hash_frame(df: pandas.DataFrame | pandas.Series, include_index: bool = False) -> str:
    """Hash a pandas DataFrame (or Series) from its values, column labels and dtypes.

    ``hash_frame(df)`` equals ``hash_value(df)``. Row order and column order matter.

    Args:
        df: The DataFrame or Series.
        include_index: Also hash the index (its names and values). Off by default, so a
            frame hashes the same whatever its index.

    Returns:
        The 64-character lowercase hex sha256 digest.

    Raises:
        InvalidInput: ``df`` is not a DataFrame or Series, or holds unsupported values.
    """
    import pandas as pd

    if isinstance(df, pd.DataFrame):
        write: _Writer = _frame_writer(include_index)
    elif isinstance(df, pd.Series):
        write = _series_writer(include_index)
    else:
        raise InvalidInput(f"hash_frame needs a pandas DataFrame or Series, not {_type_name(df)}")
    sink = _Sink(_VALUE_DOMAIN)
    try:
        write(sink, df, set())
    except RecursionError:
        raise InvalidInput("cannot hash the frame: a value in it is nested too deeply") from None
    return sink.digest().hex()


def _digest(obj: object, active: _Active) -> bytes:
    sink = _Sink(_VALUE_DOMAIN)
    _write(sink, obj, active)
    return sink.digest()


def _write(sink: _Sink, obj: object, active: _Active) -> None:
    writer = _EXACT_WRITERS.get(type(obj))
    if writer is None:
        writer = _find_writer(obj)
    writer(sink, obj, active)


def _type_name(obj: object) -> str:
    t = type(obj)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _unsupported(obj: object) -> InvalidInput:
    return InvalidInput(
        f"cannot hash a value of type {_type_name(obj)}: supported are None, bool, int, float, "
        "complex, str, bytes, list, tuple, dict, set, frozenset, datetime, date, time, "
        "timedelta, Decimal, UUID, PurePath, numpy arrays and scalars, pandas objects"
    )


def _find_writer(obj: object) -> _Writer:
    module = type(obj).__module__ or ""
    writer: _Writer | None = None
    if module == "numpy" or module.startswith("numpy."):
        writer = _numpy_writer(obj)
    elif module == "pandas" or module.startswith("pandas."):
        writer = _pandas_writer(obj)
    if writer is None:
        for base, base_writer in _SUBCLASS_WRITERS:
            if isinstance(obj, base):
                return base_writer
        # subclasses of numpy / pandas types defined elsewhere (only if already imported)
        if "numpy" in sys.modules:
            writer = _numpy_writer(obj)
        if writer is None and "pandas" in sys.modules:
            writer = _pandas_writer(obj)
    if writer is None:
        raise _unsupported(obj)
    return writer


# --- encodings of the built-in types


def _int_bytes(n: int) -> bytes:
    size = (n.bit_length() + 8) // 8
    return _Q.pack(size) + n.to_bytes(size, "big", signed=True)


def _float_bytes(x: float) -> bytes:
    return _CANONICAL_NAN if x != x else _D.pack(x)


def _text(tag: bytes, text: str) -> bytes:
    data = text.encode("utf-8", "surrogatepass")
    return tag + _Q.pack(len(data)) + data


def _write_none(sink: _Sink, obj: None, active: _Active) -> None:
    sink.write(b"n")


def _write_bool(sink: _Sink, obj: bool, active: _Active) -> None:
    sink.write(b"b\x01" if obj else b"b\x00")


def _write_int(sink: _Sink, obj: int, active: _Active) -> None:
    sink.write(b"i" + _int_bytes(int(obj)))


def _write_float(sink: _Sink, obj: float, active: _Active) -> None:
    sink.write(b"f" + _float_bytes(float(obj)))


def _write_complex(sink: _Sink, obj: complex, active: _Active) -> None:
    sink.write(b"c" + _float_bytes(obj.real) + _float_bytes(obj.imag))


def _write_str(sink: _Sink, obj: str, active: _Active) -> None:
    sink.write(_text(b"s", str(obj)))


def _write_bytes(sink: _Sink, obj: bytes | bytearray | memoryview, active: _Active) -> None:
    view = memoryview(obj)
    if not view.c_contiguous:
        view = memoryview(view.tobytes())
    flat = view.cast("B") if view.nbytes else b""
    sink.write(b"y" + _Q.pack(len(flat)))
    sink.write(flat)


def _write_sequence(sink: _Sink, obj: list[Any] | tuple[Any, ...], active: _Active) -> None:
    with _entered(obj, active):
        sink.write(b"l" + _Q.pack(len(obj)))
        for item in obj:
            _write(sink, item, active)


def _write_dict(sink: _Sink, obj: Mapping[Any, Any], active: _Active) -> None:
    with _entered(obj, active):
        entries = sorted((_digest(k, active), _digest(v, active)) for k, v in obj.items())
    sink.write(b"d" + _Q.pack(len(entries)))
    for key_digest, value_digest in entries:
        sink.write(key_digest + value_digest)


def _write_set(sink: _Sink, obj: set[Any] | frozenset[Any], active: _Active) -> None:
    digests = sorted(_digest(item, active) for item in obj)
    sink.write(b"e" + _Q.pack(len(digests)))
    for item_digest in digests:
        sink.write(item_digest)


def _write_datetime(sink: _Sink, obj: dt.datetime, active: _Active) -> None:
    sink.write(_text(b"t", obj.isoformat()))


def _write_date(sink: _Sink, obj: dt.date, active: _Active) -> None:
    sink.write(_text(b"D", obj.isoformat()))


def _write_time(sink: _Sink, obj: dt.time, active: _Active) -> None:
    sink.write(_text(b"h", obj.isoformat()))


def _write_timedelta(sink: _Sink, obj: dt.timedelta, active: _Active) -> None:
    micros = (obj.days * 86_400 + obj.seconds) * 1_000_000 + obj.microseconds
    sink.write(b"g" + _int_bytes(micros * 1000))


def _write_decimal(sink: _Sink, obj: decimal.Decimal, active: _Active) -> None:
    sink.write(_text(b"m", str(obj)))


def _write_uuid(sink: _Sink, obj: uuid.UUID, active: _Active) -> None:
    sink.write(b"u" + obj.bytes)


def _write_purepath(sink: _Sink, obj: PurePath, active: _Active) -> None:
    sink.write(_text(b"p", obj.as_posix()))


class _entered:
    """Marks a container as being hashed, so a container holding itself is refused."""

    __slots__ = ("_active", "_key")

    def __init__(self, obj: object, active: _Active) -> None:
        self._key = id(obj)
        self._active = active
        if self._key in active:
            raise InvalidInput(f"cannot hash a {_type_name(obj)} that contains itself")

    def __enter__(self) -> None:
        self._active.add(self._key)

    def __exit__(self, *exc: object) -> None:
        self._active.discard(self._key)


_EXACT_WRITERS: dict[type, _Writer] = {
    type(None): _write_none,
    bool: _write_bool,
    int: _write_int,
    float: _write_float,
    complex: _write_complex,
    str: _write_str,
    bytes: _write_bytes,
    bytearray: _write_bytes,
    memoryview: _write_bytes,
    list: _write_sequence,
    tuple: _write_sequence,
    dict: _write_dict,
    set: _write_set,
    frozenset: _write_set,
    dt.datetime: _write_datetime,
    dt.date: _write_date,
    dt.time: _write_time,
    dt.timedelta: _write_timedelta,
    decimal.Decimal: _write_decimal,
    uuid.UUID: _write_uuid,
}

# checked in order: datetime before date (a datetime is a date), int after bool is moot
# (bool cannot be subclassed)
_SUBCLASS_WRITERS: tuple[tuple[type | tuple[type, ...], _Writer], ...] = (
    (int, _write_int),
    (float, _write_float),
    (complex, _write_complex),
    (str, _write_str),
    ((bytes, bytearray, memoryview), _write_bytes),
    ((list, tuple), _write_sequence),
    (dict, _write_dict),
    ((set, frozenset), _write_set),
    (dt.datetime, _write_datetime),
    (dt.date, _write_date),
    (dt.time, _write_time),
    (dt.timedelta, _write_timedelta),
    (decimal.Decimal, _write_decimal),
    (uuid.UUID, _write_uuid),
    (PurePath, _write_purepath),
)


# --- numpy


def _numpy_writer(obj: object) -> _Writer | None:
    import numpy as np

    if isinstance(obj, np.ndarray):
        return _write_ndarray
    if isinstance(obj, np.generic):
        return _write_numpy_scalar
    return None


def _write_numpy_scalar(sink: _Sink, obj: numpy.generic, active: _Active) -> None:
    import numpy as np

    kind = obj.dtype.kind
    if kind in "biuSU" or (kind in "fc" and obj.dtype.itemsize <= (8 if kind == "f" else 16)):
        _write(sink, obj.item(), active)
    else:
        _write_ndarray(sink, np.asarray(obj), active)


def _write_ndarray(sink: _Sink, arr: numpy.ndarray, active: _Active) -> None:
    import numpy as np

    if isinstance(arr, np.ma.MaskedArray):
        raise InvalidInput(
            "cannot hash a masked numpy array: hash its filled data and its mask instead"
        )
    arr = np.asarray(arr)
    dtype = arr.dtype
    kind = dtype.kind
    sink.write(b"a")
    if dtype.names is not None:
        sink.write(_text(b"s", "struct") + _shape(arr.shape) + _Q.pack(len(dtype.names)))
        for name in dtype.names:
            sink.write(_text(b"s", name))
            _write_ndarray(sink, arr[name], active)
        return
    if kind == "O":
        sink.write(_text(b"s", "|O") + _shape(arr.shape))
        with _entered(arr, active):
            write = sink.write
            for item in arr.reshape(-1).tolist():  # the objects themselves, in C order
                if type(item) is str:  # the common case, inlined
                    write(_text(b"s", item))
                else:
                    _write(sink, item, active)
        return
    if kind == "T":  # numpy 2 variable-width StringDType
        sink.write(_text(b"s", "StringDType") + _shape(arr.shape))
        if hasattr(dtype, "na_object"):
            sink.write(b"\x01")
            _write(sink, dtype.na_object, active)
        else:
            sink.write(b"\x00")
        for item in arr.reshape(-1).tolist():
            _write(sink, item, active)
        return
    if kind in "fc" and dtype.itemsize > (8 if kind == "f" else 16):
        raise InvalidInput(
            f"cannot hash a numpy array of dtype {dtype}: its layout differs between "
            "platforms; convert it to float64 or complex128 first"
        )
    little = dtype.newbyteorder("<")
    if little != dtype:
        arr = arr.astype(little)
    sink.write(_text(b"s", little.str) + _shape(arr.shape))
    flat = np.ascontiguousarray(arr).reshape(-1)
    if kind in "fc":
        floats = flat.view(f"<f{dtype.itemsize // (2 if kind == 'c' else 1)}")
        nans = np.isnan(floats)
        if nans.any():
            floats = floats.copy()
            floats[nans] = np.nan
            flat = floats
    sink.write(memoryview(flat.view(np.uint8)))


def _shape(shape: tuple[int, ...]) -> bytes:
    return _Q.pack(len(shape)) + b"".join(_Q.pack(n) for n in shape)


# --- pandas


def _pandas_writer(obj: object) -> _Writer | None:
    import pandas as pd

    writer: _Writer | None = None
    if isinstance(obj, pd.DataFrame):
        writer = _frame_writer(include_index=False)
    elif isinstance(obj, pd.Series):
        writer = _series_writer(include_index=False)
    elif isinstance(obj, pd.Index):
        writer = _write_index
    elif isinstance(obj, pd.api.extensions.ExtensionArray):
        writer = _write_extension_array
    elif obj is pd.NaT:
        writer = _write_nat
    elif obj is pd.NA:
        writer = _write_na
    elif isinstance(obj, pd.Timestamp):
        writer = _write_datetime
    elif isinstance(obj, pd.Timedelta):
        writer = _write_pd_timedelta
    elif isinstance(obj, pd.Period):
        writer = _write_period
    elif isinstance(obj, pd.Interval):
        writer = _write_interval
    return writer


def _write_nat(sink: _Sink, obj: object, active: _Active) -> None:
    sink.write(b"T")


def _write_na(sink: _Sink, obj: object, active: _Active) -> None:
    sink.write(b"A")


def _write_pd_timedelta(sink: _Sink, obj: pandas.Timedelta, active: _Active) -> None:
    sink.write(b"g" + _int_bytes(int(obj.value)))


def _write_period(sink: _Sink, obj: pandas.Period, active: _Active) -> None:
    sink.write(_text(b"r", obj.freqstr) + _int_bytes(int(obj.ordinal)))


def _write_interval(sink: _Sink, obj: pandas.Interval, active: _Active) -> None:
    sink.write(_text(b"v", obj.closed))
    _write(sink, obj.left, active)
    _write(sink, obj.right, active)


def _frame_writer(include_index: bool) -> _Writer:
    def write(sink: _Sink, df: pandas.DataFrame, active: _Active) -> None:
        rows, columns = df.shape
        sink.write(b"F" + _Q.pack(rows) + _Q.pack(columns))
        for label, column in df.items():
            _write(sink, label, active)
            _write_column(sink, column, active)
        _write_optional_index(sink, df.index if include_index else None, active)

    return write


def _series_writer(include_index: bool) -> _Writer:
    def write(sink: _Sink, series: pandas.Series, active: _Active) -> None:
        sink.write(b"S")
        _write(sink, series.name, active)
        _write_column(sink, series, active)
        _write_optional_index(sink, series.index if include_index else None, active)

    return write


def _write_optional_index(sink: _Sink, index: pandas.Index | None, active: _Active) -> None:
    if index is None:
        sink.write(b"\x00")
    else:
        sink.write(b"\x01")
        _write_index(sink, index, active)


def _write_index(sink: _Sink, index: pandas.Index, active: _Active) -> None:
    levels = index.nlevels
    sink.write(b"I" + _Q.pack(levels))
    for level, name in enumerate(index.names):
        _write(sink, name, active)
        _write_column(sink, index.get_level_values(level) if levels > 1 else index, active)


def _write_extension_array(
    sink: _Sink, array: pandas.api.extensions.ExtensionArray, active: _Active
) -> None:
    import pandas as pd

    sink.write(b"E")
    _write_column(sink, pd.Series(array, copy=False), active)


def _write_column(sink: _Sink, values: pandas.Series | pandas.Index, active: _Active) -> None:
    """Write one column (a Series' or an Index's values) with its dtype."""
    import numpy as np
    import pandas as pd

    dtype = values.dtype
    if isinstance(dtype, np.dtype):
        sink.write(b"N")
        _write_ndarray(sink, values.to_numpy(), active)
        return
    array = values.array
    if isinstance(dtype, pd.CategoricalDtype):
        sink.write(b"K" + (b"\x01" if dtype.ordered else b"\x00"))
        _write_column(sink, array.categories, active)
        _write_ndarray(sink, np.asarray(array.codes, dtype=np.int64), active)
        return
    if isinstance(dtype, pd.DatetimeTZDtype):
        sink.write(b"Z" + _text(b"s", _tz_name(dtype.tz)))
        _write_ndarray(sink, array.tz_convert(None).to_numpy(), active)
        return
    if isinstance(dtype, pd.StringDtype):
        semantics = "NA" if dtype.na_value is pd.NA else "nan"
        sink.write(b"R" + _text(b"s", semantics))
        _write_strings(sink, array.to_numpy(dtype=object), np.asarray(array.isna(), dtype=bool))
        return
    numpy_dtype = getattr(dtype, "numpy_dtype", None)
    if isinstance(numpy_dtype, np.dtype) and numpy_dtype.kind in "biufc":
        # nullable (masked) and arrow-backed numbers: values under the mask are arbitrary
        sink.write(b"M" + _text(b"s", str(dtype)))
        _write_ndarray(sink, np.asarray(array.isna(), dtype=bool), active)
        data = array.to_numpy(dtype=numpy_dtype, na_value=numpy_dtype.type(0))
        _write_ndarray(sink, data, active)
        return
    sink.write(b"O" + _text(b"s", str(dtype)))
    _write_ndarray(sink, np.asarray(array.to_numpy(dtype=object), dtype=object), active)


def _write_strings(sink: _Sink, items: numpy.ndarray, missing: numpy.ndarray) -> None:
    """Write a column of strings, fast.

    The encoding is the count, then per block of up to 65,536 items their UTF-8 byte
    lengths (-1 when missing, little-endian int64) followed by their concatenated bytes.
    """
    import numpy as np

    values = items.tolist()
    count = len(values)
    sink.write(_Q.pack(count))
    if missing.any():
        values = [None if m else v for v, m in zip(values, missing.tolist(), strict=True)]
    for start in range(0, count, _STRING_BLOCK):
        block = [
            b"" if v is None else v.encode("utf-8", "surrogatepass")
            for v in values[start : start + _STRING_BLOCK]
        ]
        lengths = np.fromiter(map(len, block), dtype="<i8", count=len(block))
        block_missing = missing[start : start + _STRING_BLOCK]
        if block_missing.any():
            lengths[block_missing] = -1
        sink.write(memoryview(lengths.view(np.uint8)))
        sink.write(b"".join(block))


def _tz_name(tz: object) -> str:
    """A time zone's name that does not depend on the machine (zoneinfo, pytz, dateutil)."""
    for attribute in ("key", "zone"):
        name = getattr(tz, attribute, None)
        if isinstance(name, str):
            return name
    filename = getattr(tz, "_filename", None)  # dateutil.tz.tzfile: a name or a file path
    if isinstance(filename, str) and filename:
        return filename.rsplit("zoneinfo/", 1)[-1]
    return str(tz)


# ---------------------------------------------------------------------------------------------
# files and folders


def hash_file(path: str | os.PathLike[str]) -> str:
    """The plain sha256 of a file's bytes, read in 1 MiB chunks; equal to ``sha256sum``.

    Args:
        path: The file. A symbolic link is followed.

    Returns:
        The 64-character lowercase hex sha256 digest.

    Raises:
        NotFound: Nothing exists at ``path`` (or it is a broken symbolic link).
        InvalidInput: ``path`` is a folder or not a regular file.
        OSError: The file exists but cannot be read.
    """
    name = os.fspath(path)
    try:
        mode = os.stat(name).st_mode
    except FileNotFoundError:
        raise NotFound(f"cannot hash {name}: no such file") from None
    if stat.S_ISDIR(mode):
        raise InvalidInput(f"cannot hash {name} as a file: it is a folder (use hash_path)")
    if not stat.S_ISREG(mode):
        raise InvalidInput(f"cannot hash {name}: it is not a regular file")
    hasher = hashlib.sha256()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    with open(name, "rb", buffering=0) as f:
        while size := f.readinto(buffer):
            hasher.update(view[:size])
    return hasher.hexdigest()


def hash_tree(entries: Mapping[str, str]) -> str:
    """Hash a folder from its files' relative paths and sha256s, in any order.

    The encoding is the domain string ``keel/tree/v1\\0``, the number of entries, then per
    entry sorted by the UTF-8 bytes of its path: the path's byte length, the path, and the
    32 digest bytes (all counts 8-byte big-endian). Every field is length-prefixed or fixed
    size, so no two different mappings share an encoding.

    Args:
        entries: ``{relative posix path: sha256 hex of the file}``; may be empty. Hex digits
            may be upper or lower case.

    Returns:
        The 64-character lowercase hex sha256 digest.

    Raises:
        InvalidInput: A path is not a non-empty str, or a hash is not 64 hex digits.
    """
    items: list[tuple[bytes, bytes]] = []
    for path, digest in entries.items():
        if not isinstance(path, str) or not path:
            raise InvalidInput(f"hash_tree: a path must be a non-empty str, not {path!r}")
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise InvalidInput(f"hash_tree: the hash of {path!r} is not sha256 hex: {digest!r}")
        items.append((path.encode("utf-8", "surrogatepass"), bytes.fromhex(digest)))
    items.sort()
    hasher = hashlib.sha256(_TREE_DOMAIN)
    hasher.update(_Q.pack(len(items)))
    for encoded_path, digest_bytes in items:
        hasher.update(_Q.pack(len(encoded_path)))
        hasher.update(encoded_path)
        hasher.update(digest_bytes)
    return hasher.hexdigest()


def hash_folder(path: str | os.PathLike[str]) -> str:
    """Hash every file below a folder: :func:`hash_tree` of their paths and :func:`hash_file`.

    The files are those the tracking client uploads: regular files at any depth (hidden ones
    included), symbolic links to files followed (the target's bytes under the link's path),
    symbolic links to folders not descended, broken links, sockets and FIFOs skipped. Empty
    folders contribute nothing, so an empty folder hashes as ``hash_tree({})``.

    Args:
        path: The folder.

    Returns:
        The 64-character lowercase hex sha256 digest.

    Raises:
        NotFound: Nothing exists at ``path``.
        InvalidInput: ``path`` is not a folder.
        OSError: A folder or file below it cannot be read.
    """
    return hash_tree(_folder_files(path))


def _folder_files(path: str | os.PathLike[str]) -> dict[str, str]:
    name = os.fspath(path)
    if not os.path.isdir(name):
        if os.path.exists(name):
            raise InvalidInput(f"cannot hash {name} as a folder: it is not a folder")
        raise NotFound(f"cannot hash {name}: no such folder")
    root = Path(name)
    entries: dict[str, str] = {}

    def fail(error: OSError) -> None:
        raise error

    for folder, _subfolders, files in os.walk(name, onerror=fail):
        for file_name in files:
            full = os.path.join(folder, file_name)
            if os.path.isfile(full):
                entries[Path(full).relative_to(root).as_posix()] = hash_file(full)
    return entries


def hash_path(path: str | os.PathLike[str]) -> str:
    """Hash a file (:func:`hash_file`) or a folder (:func:`hash_folder`).

    Args:
        path: The file or folder. Symbolic links are followed.

    Returns:
        The 64-character lowercase hex sha256 digest.

    Raises:
        NotFound: Nothing exists at ``path`` (or it is a broken symbolic link).
        InvalidInput: ``path`` is neither a regular file nor a folder.
        OSError: Something below ``path`` cannot be read.
    """
    name = os.fspath(path)
    if os.path.isfile(name):
        return hash_file(name)
    if os.path.isdir(name):
        return hash_folder(name)
    if os.path.islink(name):
        raise NotFound(f"cannot hash {name}: it is a broken symbolic link")
    if os.path.lexists(name):
        raise InvalidInput(f"cannot hash {name}: it is neither a regular file nor a folder")
    raise NotFound(f"cannot hash {name}: no such file or folder")
