"""Profiles: what they keep per column kind, that they merge like the data they sketch, and
that they survive serialisation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from keel.monitoring.profiles import (
    CATEGORY,
    EXACT_VALUES,
    NUMBER,
    ColumnProfile,
    Profile,
    ProfileSettings,
    infer_kind,
    profile_chunks,
    profile_frame,
)


def frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(10, 2, n),
            "count": rng.integers(0, 3, n),  # a number with few values
            "colour": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2]),
            "flag": rng.random(n) < 0.3,
            "maybe": np.where(rng.random(n) < 0.1, np.nan, rng.normal(0, 1, n)),
        }
    )


def test_kinds_are_inferred_from_the_data() -> None:
    df = frame(50)
    assert infer_kind(df["x"]) == NUMBER
    assert infer_kind(df["count"]) == NUMBER
    assert infer_kind(df["colour"]) == CATEGORY
    assert infer_kind(df["flag"]) == CATEGORY  # booleans are categories
    assert infer_kind(pd.Series(["1.5", "2", None], dtype=object)) == NUMBER
    assert infer_kind(pd.Series(["1.5", "a"], dtype=object)) == CATEGORY


def test_a_number_column_keeps_count_missing_moments_and_quantiles() -> None:
    df = frame(5000)
    profile = profile_frame(df)
    x = profile.inputs["x"]
    assert (x.count, x.missing) == (5000, 0)
    assert x.mean == pytest.approx(df["x"].mean(), rel=1e-12)
    assert x.std == pytest.approx(df["x"].std(ddof=0), rel=1e-9)
    assert x.exact is None  # more than EXACT_VALUES values: the sketch answers
    median = x.quantiles([0.5])[0]
    assert abs((df["x"] < median).mean() - 0.5) < 0.02  # KLL's rank error at k=200
    maybe = profile.inputs["maybe"]
    assert maybe.missing == int(df["maybe"].isna().sum())
    assert maybe.missing_share == pytest.approx(df["maybe"].isna().mean())


def test_small_columns_keep_their_values_and_few_valued_numbers_their_counts() -> None:
    df = frame(300)
    profile = profile_frame(df)
    assert sorted(profile.inputs["x"].exact or []) == sorted(df["x"].tolist())
    few = profile.inputs["count"].frequencies()
    assert few == {str(k): float(v) for k, v in df["count"].value_counts().items()}
    assert profile.inputs["x"].frequencies() is None  # many values: not a table


def test_a_category_column_counts_values_exactly_while_they_fit() -> None:
    df = frame(2000)
    colour = profile_frame(df).inputs["colour"]
    assert colour.frequencies() == {k: float(v) for k, v in df["colour"].value_counts().items()}
    assert colour.n_distinct() == 3
    flag = profile_frame(df).inputs["flag"]
    assert set(flag.frequencies() or {}) == {"true", "false"}


def test_merging_equals_profiling_all_rows() -> None:
    df = frame(6000, seed=3)
    whole = profile_frame(df)
    parts = [profile_frame(df.iloc[i : i + 1500]) for i in range(0, 6000, 1500)]
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    assert merged.rows == whole.rows == 6000
    for name in df.columns:
        a, b = merged.inputs[name], whole.inputs[name]
        assert (a.kind, a.count, a.missing) == (b.kind, b.count, b.missing)
        if a.kind == NUMBER:
            assert a.mean == pytest.approx(b.mean, rel=1e-12)
            assert a.std == pytest.approx(b.std, rel=1e-9)
            assert a.kll.n == b.kll.n
        assert a.frequencies() == b.frequencies()
    # and one pass over chunks is the same profile
    chunked = profile_chunks(df.iloc[i : i + 1000] for i in range(0, 6000, 1000))
    assert chunked.inputs["x"].mean == pytest.approx(whole.inputs["x"].mean, rel=1e-12)
    assert chunked.rows == 6000


def test_exact_values_are_dropped_once_a_merge_holds_too_many() -> None:
    small = profile_frame(pd.DataFrame({"x": np.arange(EXACT_VALUES // 2 + 1, dtype=float)}))
    assert small.inputs["x"].exact is not None
    merged = small.merge(small)
    assert merged.inputs["x"].exact is None
    assert merged.inputs["x"].count == 2 * (EXACT_VALUES // 2 + 1)


def test_a_profile_round_trips_through_bytes_and_stays_small() -> None:
    df = frame(20_000)
    profile = profile_frame(df, df[["colour"]].rename(columns={"colour": "label"}))
    data = profile.to_bytes()
    back = Profile.from_bytes(data)
    assert back.rows == profile.rows
    assert back.summary() == profile.summary()
    assert set(back.outputs) == {"label"}
    assert len(data) < 40_000  # five columns of 20,000 rows in a few kilobytes


def test_kinds_given_by_a_reference_win_over_inference() -> None:
    live = pd.DataFrame({"x": ["1", "2", "oops"]})
    profile = profile_frame(live, kinds={"input": {"x": NUMBER}})
    assert profile.inputs["x"].kind == NUMBER
    assert (profile.inputs["x"].count, profile.inputs["x"].missing) == (2, 1)


def test_a_histogram_counts_every_value() -> None:
    values = np.random.default_rng(0).normal(0, 1, 50_000)
    column = ColumnProfile(NUMBER)
    column.update(values)
    hist = column.histogram(10)
    assert len(hist["edges"]) == 11 and len(hist["counts"]) == 10
    assert sum(hist["counts"]) == pytest.approx(50_000, rel=1e-9)
    exact, _ = np.histogram(values, bins=np.asarray(hist["edges"]))
    assert max(abs(a - b) for a, b in zip(hist["counts"], exact, strict=True)) < 0.02 * 50_000


def test_settings_size_the_sketches() -> None:
    small = profile_frame(frame(10_000), settings=ProfileSettings(k=64))
    big = profile_frame(frame(10_000), settings=ProfileSettings(k=800))
    assert len(small.to_bytes()) < len(big.to_bytes())
    assert small.inputs["x"].k == 64


def test_a_column_absent_from_a_chunk_counts_its_rows_as_missing() -> None:
    profile = profile_chunks([pd.DataFrame({"a": [1.0, 2.0]}), pd.DataFrame({"b": ["x"]})])
    assert profile.inputs["a"].missing == 1
    assert profile.inputs["b"].count == 1
    assert not math.isnan(profile.inputs["a"].mean)


def test_a_version_registered_without_training_gets_a_reference_from_frames(tmp_path) -> None:
    import keel
    from keel.monitoring.reference import make_reference
    from keel.monitoring.storage import load_reference

    client = keel.Client(store=str(tmp_path / "store"), project="p")
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"w")
    with client.start_run("e") as run:
        client.log_model_version("m", run, weights)
    df = frame(500)
    made = make_reference(client, "m@1", df, df[["colour"]], source="train.parquet")
    stored = load_reference(client, "m@1")
    assert stored.summary() == made.summary()
    assert stored.meta["source"] == "train.parquet" and set(stored.outputs) == {"colour"}


def test_records_fold_into_the_same_profile_as_their_frame() -> None:
    """The live path (plain lists per column, no DataFrame per batch) and the frame path
    sketch the same values the same way, missing keys and odd values included."""
    from keel.entities import InvocationRecord
    from keel.monitoring.live import fold
    from monitoring.helpers import frames_of

    rng = np.random.default_rng(5)
    records = []
    for i in range(400):
        row: dict[str, object] = {"x": float(rng.normal()), "c": str(rng.choice(["a", "b"]))}
        if i % 7 == 0:
            del row["x"]  # a key a caller left out
        if i % 11 == 0:
            row["x"] = "n/a"  # not a number
        if i % 13 == 0:
            row["c"] = None
        records.append(
            InvocationRecord(
                f"r{i}", "m", 1, 1_000 + i, 1.0, "ok" if i % 17 else "error", "r", row,
                {"label": bool(i % 2), "score": {"p": float(i % 5)}},
            )
        )  # fmt: skip
    kinds = {"input": {"x": NUMBER, "c": CATEGORY}}
    live: dict[int, Profile] = {}
    fold(live, records, 3600, kinds, ProfileSettings(), "live")
    (window,) = live.values()
    inputs, outputs = frames_of(records)
    framed = profile_frame(inputs, outputs, kinds=kinds)
    assert window.rows == framed.rows == sum(1 for i in range(400) if i % 17)
    assert window.records == 400 and window.errors == sum(1 for i in range(400) if not i % 17)
    for role in ("input", "output"):
        a, b = window.columns(role), framed.columns(role)
        assert set(a) == set(b)
        for name in a:
            assert (a[name].kind, a[name].count, a[name].missing) == (
                b[name].kind, b[name].count, b[name].missing
            ), (role, name)  # fmt: skip
            assert a[name].frequencies() == b[name].frequencies()
            if a[name].kind == NUMBER:
                assert a[name].mean == pytest.approx(b[name].mean, rel=1e-12)
