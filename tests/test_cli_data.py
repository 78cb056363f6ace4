"""``keel data list`` and ``keel data preview``: tables, JSON, params, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from test_cli import keel

CONFIG = """\
project: shop
dbms:
  shop: {connection_string: 'sqlite:///shop.db'}
datasources:
  orders: {type: dbms.shop, query: 'select * from orders where customer = :customer order by id', tags: [train]}
  items: {type: csv, path: items.csv, expires: 60, tags: [train, test]}
  notes: {type: text_file, path: notes.txt}
datasinks:
  scores: {type: parquet, path: out/scores.parquet, tags: [predict]}
"""


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    (tmp_path / "keel.yml").write_text(CONFIG)
    pd.DataFrame({"sku": ["a1", "b2", "c3"], "price": [1.5, 2.0, None]}).to_csv(
        tmp_path / "items.csv", index=False
    )
    pd.DataFrame({"id": [1, 2, 3], "customer": [387, 387, 5], "total": [10.0, None, 3.0]}).to_sql(
        "orders", f"sqlite:///{tmp_path / 'shop.db'}", index=False
    )
    (tmp_path / "notes.txt").write_text("".join(f"line {i}\n" for i in range(30)))
    return tmp_path


def test_list_shows_every_source_and_sink(shop: Path) -> None:
    out = keel("data", "list", cwd=shop)
    assert out.returncode == 0, out.stderr
    assert "config keel.yml (found in the working folder)" in out.stderr
    for word in ("orders", "dbms.shop", "items", "60s", "notes", "(all)", "scores", "predict"):
        assert word in out.stdout
    listed = json.loads(keel("data", "list", "--phase", "test", "--json", cwd=shop).stdout)
    assert [(e["name"], e["kind"]) for e in listed] == [("items", "source"), ("notes", "source")]


def test_preview_binds_params_and_limits_rows(shop: Path) -> None:
    out = keel(
        "data", "preview", "orders", "--params", "customer=387", "-n", "1", "--json", cwd=shop
    )
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert shown["columns"] == ["id (int64)", "customer (int64)", "total (float64)"]
    assert shown["rows"] == [[1, 387, 10.0]]
    table = keel("data", "pre", "items", cwd=shop)
    assert table.returncode == 0, table.stderr
    assert "price (float64)" in table.stdout and "c3" in table.stdout
    text = keel("data", "preview", "notes", "-n", "2", cwd=shop)
    assert text.stdout == "line 0\nline 1\n… (28 more lines)\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("data", "preview", "order"),
            "error: no data source named 'order' (known: items, notes, orders)",
        ),
        (
            ("data", "preview", "orders"),
            "error: data source 'orders': the query needs params customer;",
        ),
        (("data", "preview", "orders", "-p", "customer"), "expected KEY=VALUE, got 'customer'"),
    ],
)
def test_bad_input_is_one_line_and_a_non_zero_exit(
    shop: Path, args: tuple[str, ...], message: str
) -> None:
    out = keel(*args, cwd=shop)
    assert out.returncode != 0
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_a_broken_config_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "keel.yml").write_text("datasources:\n  a: {type: csv, pth: a.csv}\n")
    out = keel("data", "list", cwd=tmp_path)
    assert out.returncode == 1
    config_line, error_line = out.stderr.strip().splitlines()
    assert config_line == "config keel.yml (found in the working folder)"
    assert error_line == (
        f"error: {tmp_path / 'keel.yml'} line 2: datasources.a.pth: unknown key pth "
        "(did you mean path? known keys: cache_size, description, dtypes_path, expires, options, path, "
        f"storage_options, tags, type); {tmp_path / 'keel.yml'} line 2: datasources.a.path: required, but missing"
    )
