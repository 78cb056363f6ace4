"""Sinks take a stream of DataFrame chunks: whole data set written, or nothing changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from keel.config import parse_config
from keel.data import DataCatalog


def chunks(n: int = 3) -> list[pd.DataFrame]:
    return [pd.DataFrame({"a": [i, i + 1], "b": [0.5 * i, 1.5]}) for i in range(n)]


def catalog(tmp_path: Path, type_: str, path: str) -> DataCatalog:
    entry = f"{{type: {type_}, path: {path}}}"
    body = f"datasources:\n  d: {entry}\ndatasinks:\n  d: {entry}\n"
    return DataCatalog(parse_config(body, env={}, base_dir=tmp_path))


@pytest.mark.parametrize(
    ("type_", "name"),
    [
        ("csv", "d.csv"),
        ("euro_csv", "d.csv"),
        ("jsonl", "d.jsonl"),
        ("parquet", "d.parquet"),
        ("json", "d.json"),
    ],
)
def test_chunks_make_one_data_set(tmp_path: Path, type_: str, name: str) -> None:
    data = catalog(tmp_path, type_, name)
    assert data.sink("d").put_chunks(iter(chunks())) == 6
    expected = pd.concat(chunks(), ignore_index=True)
    assert_frame_equal(data.source("d").get_dataframe(), expected)


def test_a_failing_stream_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    data = catalog(tmp_path, "csv", "d.csv")
    data.sink("d").put_dataframe(pd.DataFrame({"a": [42]}))

    def broken() -> Iterator[pd.DataFrame]:
        yield chunks()[0]
        raise RuntimeError("model failed on chunk 2")

    with pytest.raises(RuntimeError, match="chunk 2"):
        data.sink("d").put_chunks(broken())
    assert (tmp_path / "d.csv").read_text() == "a\n42\n"
    assert [p.name for p in tmp_path.iterdir()] == ["d.csv"]  # no temp file left


def test_sql_chunks_in_one_transaction(tmp_path: Path) -> None:
    body = (
        f"dbms:\n  db: {{connection_string: 'sqlite:///{tmp_path}/t.db'}}\n"
        "datasinks:\n  t: {type: dbms.db, table: scores, if_exists: replace}\n"
        "datasources:\n  t: {type: dbms.db, table: scores}\n"
    )
    data = DataCatalog(parse_config(body, env={}, base_dir=tmp_path))
    assert data.sink("t").put_chunks(iter(chunks())) == 6
    assert len(data.source("t").get_dataframe()) == 6

    def broken() -> Iterator[pd.DataFrame]:
        yield chunks()[0]
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        data.sink("t").put_chunks(broken())
    assert len(data.source("t").get_dataframe()) == 6  # the replace was rolled back
