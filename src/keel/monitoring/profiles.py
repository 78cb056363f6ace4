"""Profiles: what a model's inputs and outputs looked like, kept as small mergeable sketches.

A :class:`Profile` holds one :class:`ColumnProfile` per input column and per output field.
Which sketch a column gets is keel's own choice, by the column's kind:

- **number**: count, missing, mean and M2 (Chan's parallel formulas, so the standard deviation
  merges exactly), a KLL quantile sketch (Apache DataSketches, rank error ~0.35% at k=1000)
  from which histograms and CDFs are read, the values themselves while there are at most
  :data:`EXACT_VALUES` of them (so a small reference is tested exactly, as Evidently does) and
  the value counts while there are at most :data:`FEW_VALUES` distinct values (a "number"
  that is really a flag or a rating is tested as a category);
- **category**: count, missing, a frequent-items sketch (exact counts while the distinct
  values fit in it, ``max_categories``) and a HyperLogLog distinct count.

Every part merges: the profile of a day is the merge of its hours' profiles, and the
profile of a replica set the merge of its replicas'. Profiles serialise to compressed
JSON (sketches base64-encoded); a profile of 100 columns is tens of kilobytes.
"""

from __future__ import annotations

import base64
import json
import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

NUMBER, CATEGORY = "number", "category"
#: values of a number column kept as they are (KS on a small reference is then exact)
EXACT_VALUES = 1_000
#: distinct values of a number column counted exactly (a flag or rating is then a category)
FEW_VALUES = 32
FORMAT = 1
DEFAULT_K = 1000
DEFAULT_MAX_CATEGORIES = 1024


def _lg_map(max_categories: int) -> int:
    # the frequent-items map holds 0.75 * 2**lg items before it starts to purge
    return max(3, math.ceil(math.log2(max_categories / 0.75)))


@dataclass
class ColumnProfile:
    """The sketches of one column (see the module docstring for which kind gets which)."""

    kind: str
    count: int = 0  # values present
    missing: int = 0  # None / NaN / values that are not of the column's kind
    mean: float = 0.0
    m2: float = 0.0
    kll: Any = None
    exact: list[float] | None = field(default_factory=list)
    few: dict[str, int] | None = field(default_factory=dict)
    items: Any = None
    distinct: Any = None
    k: int = DEFAULT_K
    max_categories: int = DEFAULT_MAX_CATEGORIES

    def __post_init__(self) -> None:
        import datasketches as ds

        if self.kind == NUMBER:
            if self.kll is None:
                self.kll = ds.kll_doubles_sketch(self.k)
        elif self.kind == CATEGORY:
            if self.items is None:
                self.items = ds.frequent_strings_sketch(_lg_map(self.max_categories))
            if self.distinct is None:
                self.distinct = ds.hll_sketch(12, ds.tgt_hll_type.HLL_8)
            self.exact = None
            self.few = None
        else:
            raise ValueError(f"unknown column kind {self.kind!r}: {NUMBER!r} or {CATEGORY!r}")

    # --- reading ------------------------------------------------------------------------

    @property
    def total(self) -> int:
        return self.count + self.missing

    @property
    def missing_share(self) -> float:
        return self.missing / self.total if self.total else 0.0

    @property
    def std(self) -> float:
        """Population standard deviation (ddof=0, as numpy's and Evidently's)."""
        return math.sqrt(self.m2 / self.count) if self.count else 0.0

    def frequencies(self) -> dict[str, float] | None:
        """Counts per value (categories; numbers with few distinct values), else None."""
        if self.kind == NUMBER:
            return None if self.few is None else {k: float(v) for k, v in self.few.items()}
        import datasketches as ds

        rows = self.items.get_frequent_items(ds.frequent_items_error_type.NO_FALSE_NEGATIVES, 0)
        return {item: float(estimate) for item, estimate, _lb, _ub in rows}

    def n_distinct(self) -> int | None:
        """Distinct values: exact for few-valued numbers and small category sets, estimated
        (HyperLogLog) for other categories, None for numbers with many values."""
        if self.kind == NUMBER:
            return None if self.few is None else len(self.few)
        exactly = self.items.num_active_items
        if self.items.epsilon * self.items.total_weight < 1 or exactly < 0.75 * (
            1 << _lg_map(self.max_categories)
        ):
            return exactly
        return round(self.distinct.get_estimate())

    # --- writing ------------------------------------------------------------------------

    def update(self, values: Any) -> None:
        """Fold a sequence (list, numpy array or pandas Series) of this column's values in."""
        if isinstance(values, list):
            # the live path (a batch of records): plain lists, no pandas on the way in
            if self.kind == NUMBER:
                self._update_numbers(_float_array(values))
            else:
                self._update_category_list(values)
            return
        import numpy as np
        import pandas as pd

        series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
        if self.kind == NUMBER:
            if series.dtype == bool:
                series = series.astype(float)
            self._update_numbers(np.asarray(pd.to_numeric(series, errors="coerce"), dtype=float))
        else:
            self._update_categories(series)

    def _update_numbers(self, array: Any) -> None:
        import numpy as np
        import pandas as pd

        present = array[np.isfinite(array)]
        self.missing += len(array) - len(present)
        n = len(present)
        if not n:
            return
        mean = float(present.mean())
        m2 = float(((present - mean) ** 2).sum())
        total = self.count + n
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.count * n / total
        self.mean += delta * n / total
        self.count = total
        self.kll.update(present)
        if self.exact is not None:
            if len(self.exact) + n <= EXACT_VALUES:
                self.exact.extend(present.tolist())
            else:
                self.exact = None
        if self.few is not None:
            # a cheap look first: most number columns have many values, and counting them
            # all would sort every chunk
            if len(np.unique(present[:4096])) > FEW_VALUES:
                self.few = None
            else:
                counts = pd.Series(present).value_counts(sort=False)
                for value, c in counts.items():
                    key = _number_key(float(value))
                    self.few[key] = self.few.get(key, 0) + int(c)
                if len(self.few) > FEW_VALUES:
                    self.few = None

    def _update_category_list(self, values: list[Any]) -> None:
        from collections import Counter

        present = [v for v in values if v is not None and not (isinstance(v, float) and v != v)]
        self.missing += len(values) - len(present)
        if not present:
            return
        self.count += len(present)
        try:
            counts = Counter(present)
        except TypeError:  # unhashable values (dicts, lists): by their JSON text
            counts = Counter(_category_key(v) for v in present)
        merged: dict[str, int] = {}
        for value, c in counts.items():
            key = value if isinstance(value, str) else _category_key(value)
            merged[key] = merged.get(key, 0) + c
        for key, c in merged.items():
            self.items.update(key, c)
            self.distinct.update(key)

    def _update_categories(self, series: Any) -> None:
        present = series.dropna()
        self.missing += len(series) - len(present)
        if not len(present):
            return
        self.count += len(present)
        # count first, then name the distinct values: O(distinct) Python calls, not O(rows)
        try:
            counts = present.value_counts(sort=False)
        except TypeError:  # unhashable values (dicts, lists): by their JSON text
            counts = present.map(_category_key).value_counts(sort=False)
        merged: dict[str, int] = {}
        for value, c in counts.items():
            key = value if isinstance(value, str) else _category_key(value)
            merged[key] = merged.get(key, 0) + int(c)
        for key, c in merged.items():
            self.items.update(key, c)
            self.distinct.update(key)

    def merge(self, other: ColumnProfile) -> ColumnProfile:
        """A new profile of both columns' values (neither is changed)."""
        import datasketches as ds

        if other.kind != self.kind:
            raise ValueError(f"cannot merge a {other.kind} column into a {self.kind} column")
        out = ColumnProfile(self.kind, k=min(self.k, other.k), max_categories=self.max_categories)
        out.count = self.count + other.count
        out.missing = self.missing + other.missing
        if self.kind == NUMBER:
            if out.count:
                delta = other.mean - self.mean
                out.mean = self.mean + delta * other.count / out.count
                out.m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / out.count
            out.kll = ds.kll_doubles_sketch.deserialize(self.kll.serialize())
            out.kll.merge(other.kll)
            if self.exact is None or other.exact is None:
                out.exact = None
            else:
                joined = self.exact + other.exact
                out.exact = joined if len(joined) <= EXACT_VALUES else None
            if self.few is None or other.few is None:
                out.few = None
            else:
                few = dict(self.few)
                for key, c in other.few.items():
                    few[key] = few.get(key, 0) + c
                out.few = few if len(few) <= FEW_VALUES else None
        else:
            out.items = ds.frequent_strings_sketch.deserialize(self.items.serialize())
            out.items.merge(other.items)
            union = ds.hll_union(12)
            union.update(self.distinct)
            union.update(other.distinct)
            out.distinct = union.get_result(ds.tgt_hll_type.HLL_8)
        return out

    # --- (de)serialising ------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "count": self.count,
            "missing": self.missing,
        }
        if self.kind == NUMBER:
            data.update(
                mean=self.mean,
                m2=self.m2,
                k=self.k,
                kll=_b64(self.kll.serialize()),
                exact=self.exact,
                few=self.few,
            )
        else:
            data.update(
                max_categories=self.max_categories,
                items=_b64(self.items.serialize()),
                distinct=_b64(self.distinct.serialize_compact()),
            )
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnProfile:
        import datasketches as ds

        kind = data["kind"]
        if kind == NUMBER:
            return cls(
                NUMBER,
                count=int(data["count"]),
                missing=int(data["missing"]),
                mean=float(data["mean"]),
                m2=float(data["m2"]),
                k=int(data.get("k", DEFAULT_K)),
                kll=ds.kll_doubles_sketch.deserialize(_unb64(data["kll"])),
                exact=data.get("exact"),
                few=data.get("few"),
            )
        return cls(
            CATEGORY,
            count=int(data["count"]),
            missing=int(data["missing"]),
            max_categories=int(data.get("max_categories", DEFAULT_MAX_CATEGORIES)),
            items=ds.frequent_strings_sketch.deserialize(_unb64(data["items"])),
            distinct=ds.hll_sketch.deserialize(_unb64(data["distinct"])),
        )

    def summary(self, bins: int = 20, top: int = 20) -> dict[str, Any]:
        """What people read: counts, moments, quantiles and a histogram, or the top values."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "count": self.count,
            "missing": self.missing,
            "missing_share": round(self.missing_share, 6),
            "distinct": self.n_distinct(),
        }
        if self.kind == NUMBER:
            if self.count:
                lo, hi = self.kll.get_min_value(), self.kll.get_max_value()
                out.update(
                    mean=self.mean,
                    std=self.std,
                    min=lo,
                    max=hi,
                    quantiles=dict(
                        zip(
                            ("p05", "p25", "p50", "p75", "p95"),
                            self.kll.get_quantiles([0.05, 0.25, 0.5, 0.75, 0.95]),
                            strict=True,
                        )
                    ),
                    histogram=self.histogram(bins),
                )
            return out
        freq = self.frequencies() or {}
        ranked = sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))
        out["top"] = [[k, round(v)] for k, v in ranked[:top]]
        out["other"] = max(0, self.count - round(sum(v for _k, v in ranked[:top])))
        return out

    def histogram(
        self, bins: int = 20, lo: float | None = None, hi: float | None = None
    ) -> dict[str, list[float]]:
        """Counts over ``bins`` equal-width bins from ``lo`` to ``hi`` (default the min and
        max), read from the quantile sketch (exact values when they were kept)."""
        if self.kind != NUMBER or not self.count:
            return {"edges": [], "counts": []}
        lo = self.kll.get_min_value() if lo is None else lo
        hi = self.kll.get_max_value() if hi is None else hi
        if hi <= lo:
            return {"edges": [lo, lo], "counts": [float(self.count)]}
        width = (hi - lo) / bins
        edges = [lo + i * width for i in range(bins + 1)]
        shares = self.bin_shares(edges)
        return {"edges": edges, "counts": [s * self.count for s in shares]}

    def bin_shares(self, edges: Sequence[float]) -> list[float]:
        """The share of values in each of the ``len(edges) - 1`` bins ``[e_i, e_i+1)``
        (the last bin closed; values outside the edges are left out)."""
        import numpy as np

        if not self.count:
            return [0.0] * (len(edges) - 1)
        if self.exact is not None:
            counts, _ = np.histogram(np.asarray(self.exact), bins=np.asarray(edges, dtype=float))
            return (counts / self.count).tolist()
        cdf = self.cdf(edges)
        shares = [cdf[i + 1] - cdf[i] for i in range(len(edges) - 1)]
        # the last edge is inclusive: values equal to the maximum belong to the last bin
        shares[-1] += self.cdf_inclusive(edges[-1:])[0] - cdf[-1]
        return [max(0.0, s) for s in shares]

    def cdf(self, points: Sequence[float]) -> list[float]:
        """The share of values below each of ``points`` (strictly)."""
        import numpy as np

        if self.exact is not None:
            data = np.sort(np.asarray(self.exact))
            return (np.searchsorted(data, points, side="left") / max(len(data), 1)).tolist()
        return _sketch_cdf(self.kll, points, inclusive=False)

    def cdf_inclusive(self, points: Sequence[float]) -> list[float]:
        """The share of values at or below each of ``points``."""
        import numpy as np

        if self.exact is not None:
            data = np.sort(np.asarray(self.exact))
            return (np.searchsorted(data, points, side="right") / max(len(data), 1)).tolist()
        return _sketch_cdf(self.kll, points, inclusive=True)

    def quantiles(self, ranks: Sequence[float]) -> list[float]:
        import numpy as np

        if self.exact is not None:
            data = np.sort(np.asarray(self.exact))
            # the inverse ECDF (the lower value at a tie), as the Wasserstein integral needs
            index = np.clip(np.ceil(np.asarray(ranks) * len(data)) - 1, 0, len(data) - 1)
            return data[index.astype(int)].tolist()
        return list(self.kll.get_quantiles(list(ranks)))


def _sketch_cdf(kll: Any, points: Sequence[float], inclusive: bool) -> list[float]:
    # get_cdf wants strictly increasing split points and answers one more value than given
    unique = sorted(set(float(p) for p in points))
    if not unique:
        return []
    values = kll.get_cdf(unique, inclusive)
    at = dict(zip(unique, values[:-1], strict=True))
    return [at[float(p)] for p in points]


def _float_array(values: list[Any]) -> Any:
    """``values`` as floats, what is not a number as NaN (counted missing)."""
    import numpy as np

    try:
        return np.asarray(values, dtype=float)  # numbers, bools and None: the common case
    except (TypeError, ValueError):
        import pandas as pd

        series = pd.Series(values, dtype=object).map(
            lambda v: float(v) if isinstance(v, bool) else v
        )
        return np.asarray(pd.to_numeric(series, errors="coerce"), dtype=float)


def _number_key(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def _category_key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"))


@dataclass
class Profile:
    """The profiles of a model's input columns and output fields over some rows."""

    inputs: dict[str, ColumnProfile] = field(default_factory=dict)
    outputs: dict[str, ColumnProfile] = field(default_factory=dict)
    rows: int = 0
    # what the rows were: ``source``, ``window_start``/``window_s``, ``first_ts``/``last_ts``
    meta: dict[str, Any] = field(default_factory=dict)
    # live profiles only: the calls recorded, how many failed, and their latency (ms)
    records: int = 0
    errors: int = 0
    latency: ColumnProfile | None = None

    def columns(self, role: str) -> dict[str, ColumnProfile]:
        return self.inputs if role == "input" else self.outputs

    def kinds(self) -> dict[str, dict[str, str]]:
        return {
            "input": {n: c.kind for n, c in self.inputs.items()},
            "output": {n: c.kind for n, c in self.outputs.items()},
        }

    def merge(self, other: Profile) -> Profile:
        """The profile of both profiles' rows (neither is changed)."""
        out = Profile(
            rows=self.rows + other.rows,
            meta=_merge_meta(self.meta, other.meta),
            records=self.records + other.records,
            errors=self.errors + other.errors,
        )
        if self.latency is not None and other.latency is not None:
            out.latency = self.latency.merge(other.latency)
        elif self.latency is not None or other.latency is not None:
            out.latency = _copy(self.latency or other.latency)  # type: ignore[arg-type]
        for role in ("input", "output"):
            mine, theirs, target = self.columns(role), other.columns(role), out.columns(role)
            for name in mine.keys() | theirs.keys():
                a, b = mine.get(name), theirs.get(name)
                if a is None or b is None:
                    target[name] = _copy(a if b is None else b)
                elif a.kind != b.kind:
                    # inferred differently in two windows: keep the kind of most values
                    target[name] = _copy(a if a.count >= b.count else b)
                else:
                    target[name] = a.merge(b)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "rows": self.rows,
            "meta": self.meta,
            "inputs": {n: c.to_dict() for n, c in self.inputs.items()},
            "outputs": {n: c.to_dict() for n, c in self.outputs.items()},
            "records": self.records,
            "errors": self.errors,
            "latency": None if self.latency is None else self.latency.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Profile:
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown profile format {data.get('format')!r} (this keel reads 1)")
        return cls(
            inputs={n: ColumnProfile.from_dict(c) for n, c in data["inputs"].items()},
            outputs={n: ColumnProfile.from_dict(c) for n, c in data["outputs"].items()},
            rows=int(data["rows"]),
            meta=dict(data.get("meta") or {}),
            records=int(data.get("records", 0)),
            errors=int(data.get("errors", 0)),
            latency=None if not data.get("latency") else ColumnProfile.from_dict(data["latency"]),
        )

    def to_bytes(self) -> bytes:
        return zlib.compress(json.dumps(self.to_dict(), separators=(",", ":")).encode(), 6)

    @classmethod
    def from_bytes(cls, data: bytes) -> Profile:
        return cls.from_dict(json.loads(zlib.decompress(data)))

    def summary(self, bins: int = 20) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "meta": self.meta,
            "inputs": {n: c.summary(bins) for n, c in sorted(self.inputs.items())},
            "outputs": {n: c.summary(bins) for n, c in sorted(self.outputs.items())},
        }


def _copy(column: ColumnProfile) -> ColumnProfile:
    return ColumnProfile.from_dict(column.to_dict())


def _merge_meta(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = {**b, **a}
    for key, pick in (("first_ts", min), ("last_ts", max), ("window_start", min)):
        if key in a and key in b:
            out[key] = pick(a[key], b[key])
    return out


# --- building profiles ----------------------------------------------------------------------


def infer_kind(series: Any) -> str:
    """``number`` for numeric data (and text that all parses as numbers), else ``category``.
    Booleans are categories."""
    import pandas as pd
    from pandas.api import types

    if types.is_bool_dtype(series.dtype):
        return CATEGORY
    if types.is_numeric_dtype(series.dtype):
        return NUMBER
    present = series.dropna()
    if not len(present):
        return NUMBER
    head = present.iloc[:256]
    if any(isinstance(v, (bool, str, dict, list)) for v in head):
        if all(isinstance(v, str) for v in head):
            # text that is all numbers: a sample decides before the whole column is parsed
            if pd.to_numeric(head, errors="coerce").isna().any():
                return CATEGORY
            parsed = pd.to_numeric(present, errors="coerce")
            return NUMBER if parsed.notna().all() else CATEGORY
        return CATEGORY
    return NUMBER


@dataclass
class ProfileSettings:
    """How columns are sketched (from keel.yml's ``monitoring:``)."""

    k: int = DEFAULT_K
    max_categories: int = DEFAULT_MAX_CATEGORIES

    def column(self, kind: str) -> ColumnProfile:
        return ColumnProfile(kind, k=self.k, max_categories=self.max_categories)


def update_columns(
    columns: dict[str, ColumnProfile],
    frame: Any,
    kinds: Mapping[str, str] | None = None,
    settings: ProfileSettings | None = None,
    rows: int | None = None,
) -> None:
    """Fold the columns of ``frame`` (a pandas DataFrame, or a mapping of column name to a
    list of ``rows`` values) into ``columns``, making a column's profile on first sight (of
    the kind ``kinds`` gives, else the inferred one). Columns of ``columns`` that ``frame``
    lacks count its rows as missing."""
    import pandas as pd

    settings = settings or ProfileSettings()
    if isinstance(frame, pd.DataFrame):
        items = [(str(name), frame[name]) for name in frame.columns]
        rows = len(frame)
    else:
        items = [(str(name), values) for name, values in frame.items()]
        rows = rows if rows is not None else max((len(v) for _n, v in items), default=0)
    for key, values in items:
        column = columns.get(key)
        if column is None:
            given = (kinds or {}).get(key)
            if given is None:
                series = (
                    values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
                )
                given = infer_kind(series)
            column = columns[key] = settings.column(given)
        column.update(values)
    present = {key for key, _values in items}
    for key, column in columns.items():
        if key not in present:
            column.missing += rows


def profile_frame(
    inputs: Any,
    outputs: Any = None,
    *,
    kinds: Mapping[str, Mapping[str, str]] | None = None,
    settings: ProfileSettings | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Profile:
    """The profile of a frame of inputs (and optionally a frame of the model's outputs for
    some of those rows)."""
    profile = Profile(meta=dict(meta or {}))
    update_columns(profile.inputs, inputs, (kinds or {}).get("input"), settings)
    if outputs is not None:
        update_columns(profile.outputs, outputs, (kinds or {}).get("output"), settings)
    profile.rows = len(inputs)
    return profile


def profile_chunks(
    chunks: Iterable[Any],
    *,
    kinds: Mapping[str, Mapping[str, str]] | None = None,
    settings: ProfileSettings | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Profile:
    """The profile of frames read one after another (one pass, constant memory)."""
    profile = Profile(meta=dict(meta or {}))
    for chunk in chunks:
        update_columns(profile.inputs, chunk, (kinds or {}).get("input"), settings)
        profile.rows += len(chunk)
    return profile
