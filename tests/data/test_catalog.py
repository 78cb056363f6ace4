"""The data catalog: types by registry string, plugins, entry points, phases, bad config."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.config import load_config, parse_config
from keel.data import DataCatalog
from keel.data import registry as data_registry
from keel.errors import ConfigError, NotFound


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def clean_registry() -> Iterator[None]:
    """Plugins register types globally: put the registry back as it was."""
    sources, sinks = dict(data_registry._sources), dict(data_registry._sinks)
    modules = set(sys.modules)
    path = list(sys.path)
    yield
    data_registry._sources.clear()
    data_registry._sources.update(sources)
    data_registry._sinks.clear()
    data_registry._sinks.update(sinks)
    data_registry.refresh_entry_points()
    for name in set(sys.modules) - modules:
        del sys.modules[name]
    sys.path[:] = path


def test_phases_get_their_tagged_entries_and_the_untagged_ones(tmp_path: Path) -> None:
    config = parse_config(
        """
        datasources:
          train_data: {type: csv, path: a.csv, tags: [train]}
          test_data: {type: csv, path: b.csv, tags: [test]}
          both: {type: csv, path: c.csv, tags: [train, test]}
          lookup: {type: csv, path: d.csv}
        datasinks:
          predictions: {type: csv, path: p.csv, tags: [predict]}
          log: {type: text_file, path: log.txt}
        """,
        env={},
        base_dir=tmp_path,
    )
    data = DataCatalog(config)
    assert sorted(data.sources_for("train")) == ["both", "lookup", "train_data"]
    assert sorted(data.sources_for("test")) == ["both", "lookup", "test_data"]
    assert sorted(data.sources_for("predict")) == ["lookup"]
    assert sorted(data.sinks_for("predict")) == ["log", "predictions"]
    assert sorted(data.sinks_for("train")) == ["log"]
    assert len(data.sources_for(None)) == 4


def test_an_unknown_type_lists_the_known_ones(tmp_path: Path) -> None:
    write(tmp_path / "keel.yml", "datasources:\n  t:\n    type: exel\n    path: a.xlsx\n")
    with pytest.raises(ConfigError) as err:
        DataCatalog(load_config())
    message = str(err.value)
    assert message.startswith(
        f"{tmp_path / 'keel.yml'} line 3: datasources.t.type: unknown data source type 'exel'"
    )
    for known in (
        "binary_file",
        "csv",
        "dbms.<connection>",
        "euro_csv",
        "json",
        "jsonl",
        "parquet",
        "text_file",
    ):
        assert known in message


def test_type_specific_keys_are_checked(tmp_path: Path) -> None:
    write(
        tmp_path / "keel.yml",
        "datasources:\n  t:\n    type: parquet\n    path: a.parquet\n    dtypes_path: a.json\n",
    )
    with pytest.raises(
        ConfigError, match=r"line 5: datasources\.t\.dtypes_path: unknown key dtypes_path"
    ):
        DataCatalog(load_config())
    write(tmp_path / "keel.yml", "datasinks:\n  t:\n    type: csv\n")
    with pytest.raises(ConfigError, match=r"datasinks\.t\.path: required, but missing"):
        DataCatalog(load_config())
    write(tmp_path / "keel.yml", "datasources:\n  t: {path: a.csv}\n")
    with pytest.raises(ConfigError, match=r"line 2: datasources\.t\.type: required, e\.g\. csv"):
        DataCatalog(load_config())
    write(tmp_path / "keel.yml", "datasources:\n  t: {type: csv, path: a.csv, expires: -5}\n")
    with pytest.raises(
        ConfigError, match=r"datasources\.t\.expires: .*greater than or equal to -1"
    ):
        DataCatalog(load_config())


def test_sql_entries_need_a_known_connection_and_one_of_query_or_table(tmp_path: Path) -> None:
    base = "dbms:\n  wh: {connection_string: 'sqlite://'}\n"
    with pytest.raises(
        ConfigError, match=r"datasources\.q: give either query .* or table, not both"
    ):
        DataCatalog(
            parse_config(
                base + "datasources:\n  q: {type: dbms.wh, query: 'select 1', table: t}\n", env={}
            )
        )
    data = DataCatalog(
        parse_config(base + "datasources:\n  q: {type: dbms.nope, table: t}\n", env={})
    )
    with pytest.raises(
        ConfigError, match=r"data source 'q': no connection 'nope' under dbms: \(known: wh\)"
    ):
        data.source("q").get_dataframe()
    with pytest.raises(ConfigError, match=r"name the connection: dbms\.<name>"):
        DataCatalog(parse_config(base + "datasources:\n  q: {type: dbms., table: t}\n", env={}))


def test_unknown_names_list_the_known_ones(tmp_path: Path) -> None:
    data = DataCatalog(parse_config("datasources:\n  a: {type: csv, path: a.csv}\n", env={}))
    with pytest.raises(NotFound, match=r"no data source named 'b' \(known: a\)"):
        data.source("b")
    with pytest.raises(
        NotFound,
        match=r"no data sink named 'a' \(known: none; add one under datasinks: in keel\.yml\)",
    ):
        data.sink("a")


PLUGIN = """
from keel.data import DataSource, SourceSettings, register_source


class UpperSettings(SourceSettings):
    text: str


@register_source("upper")
class UpperSource(DataSource):
    settings_model = UpperSettings

    def read_raw(self, params):
        return self.settings.text.upper()
"""


@pytest.mark.usefixtures("clean_registry")
def test_plugins_register_types_before_they_are_resolved(tmp_path: Path) -> None:
    write(tmp_path / "my_types.py", PLUGIN)
    write(
        tmp_path / "keel.yml",
        "plugins: [my_types]\ndatasources:\n  shout: {type: upper, text: hi}\n",
    )
    data = DataCatalog(load_config())
    assert data.source("shout").get_raw() == "HI"
    write(
        tmp_path / "keel.yml",
        "plugins: [my_types]\ndatasources:\n  shout: {type: upper, txt: hi}\n",
    )
    with pytest.raises(
        ConfigError, match=r"datasources\.shout\.txt: unknown key txt \(did you mean text\?"
    ):
        DataCatalog(load_config())


@pytest.mark.usefixtures("clean_registry")
def test_a_plugin_that_cannot_be_imported_is_named(tmp_path: Path) -> None:
    write(tmp_path / "keel.yml", "plugins:\n  - not_there\n")
    with pytest.raises(
        ConfigError, match=r"line 2: plugins\[0\]: cannot import not_there: ModuleNotFoundError"
    ):
        DataCatalog(load_config())


@pytest.mark.usefixtures("clean_registry")
def test_entry_points_register_types(tmp_path: Path) -> None:
    # A real installed distribution: a .dist-info folder with entry_points.txt on sys.path.
    site = tmp_path / "site"
    write(site / "keel_upper.py", PLUGIN.replace('@register_source("upper")', ""))
    dist = site / "keel_upper-1.0.dist-info"
    write(dist / "METADATA", "Metadata-Version: 2.1\nName: keel-upper\nVersion: 1.0\n")
    write(dist / "entry_points.txt", "[keel.data_sources]\nshouty = keel_upper:UpperSource\n")
    sys.path.insert(0, str(site))
    data_registry.refresh_entry_points()
    data = DataCatalog(parse_config("datasources:\n  s: {type: shouty, text: ok}\n", env={}))
    assert data.source("s").get_raw() == "OK"
    assert "shouty" in data_registry.known_source_types()


def test_entries_describe_the_catalog(tmp_path: Path) -> None:
    data = DataCatalog(
        parse_config(
            "dbms:\n  wh: {connection_string: 'sqlite://'}\n"
            "datasources:\n  q: {type: dbms.wh, query: 'select  *\n    from t', expires: 30, tags: [train]}\n"
            "datasinks:\n  out: {type: parquet, path: o.parquet}\n",
            env={},
        )
    )
    assert [json.loads(json.dumps(e.as_dict())) for e in data.entries()] == [
        {
            "name": "q",
            "kind": "source",
            "type": "dbms.wh",
            "tags": ["train"],
            "target": "select * from t",
            "expires": 30,
        },
        {
            "name": "out",
            "kind": "sink",
            "type": "parquet",
            "tags": [],
            "target": "o.parquet",
            "expires": None,
        },
    ]
