"""A plugin serving one kind of database (``serves = ["dbms.impala"]``) handles every data
source on a ``dbms`` connection of that ``type``, as ML Launchpad's impala example does; a
connection of a type nobody serves loads, and fails only where a source uses it."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.config import load_config
from keel.data import DataCatalog
from keel.errors import ConfigError

PLUGIN = """
import pandas as pd
from keel.compat.launchpad.resource import DataSource


class ImpalaDataSource(DataSource):
    serves = ["dbms.impala"]

    def __init__(self, identifier, datasource_config, dbms_config):
        super().__init__(identifier, datasource_config)
        self.dbms_config = dbms_config

    def get_dataframe(self, params=None, chunksize=None):
        return pd.DataFrame({"host": [self.dbms_config["host"]], "query": [self.config["query"]],
                             "limit": [(params or {}).get("limit")]})

    def get_raw(self, params=None, chunksize=None):
        raise NotImplementedError("no raw impala")
"""

CONFIG = """
plugins: [impala_plugin]
dbms:
  bda: {type: impala, host: bda.example.com, port: 21050, auth_mechanism: PLAIN}
  lake: {type: hive, host: lake.example.com, port: 9083}
datasources:
  panel: {type: dbms.bda, query: SELECT * FROM t LIMIT :limit, expires: 0, options: {}, tags: train}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "impala_plugin.py").write_text(PLUGIN)
    (tmp_path / "keel.yml").write_text(CONFIG)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_a_plugin_serves_the_connections_of_its_dbms_type(project: Path) -> None:
    frame = (
        DataCatalog(load_config(project / "keel.yml")).source("panel").get_dataframe({"limit": 3})
    )
    assert frame.to_dict("records") == [
        {"host": "bda.example.com", "query": "SELECT * FROM t LIMIT :limit", "limit": 3}
    ]


def test_a_connection_type_no_plugin_serves_is_refused_where_used(project: Path) -> None:
    config = project / "keel.yml"
    config.write_text(CONFIG + "  tweets: {type: dbms.lake, query: SELECT 1}\n")
    with pytest.raises(ConfigError) as caught:
        DataCatalog(load_config(config))
    message = str(caught.value)
    assert "keel.yml line 8: datasources.tweets.type" in message
    assert "hive connection" in message and "dbms.hive" in message and "plugins:" in message


BOGUS = """
import pandas as pd
from keel.compat.launchpad.resource import DataSource


class BogusDataSource(DataSource):
    serves = ["bogus"]

    def get_dataframe(self, params=None, chunksize=None):
        if chunksize:
            raise NotImplementedError("Buffered reading not supported yet")
        return pd.DataFrame({"a": [3, 4, 5], "b": [6, 7, 8]})
"""


def test_a_plugin_is_found_from_the_working_folder_as_launchpad_did(tmp_path: Path) -> None:
    """``plugins: [examples.bogusdatasource]`` with ``-c examples/tree_cfg.yml`` run from the
    project's root, through the installed ``keel`` script (whose sys.path lacks the
    working folder)."""
    import json
    import os
    import subprocess
    import sys

    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "bogusdatasource.py").write_text(BOGUS)
    (tmp_path / "examples" / "tree_cfg.yml").write_text(
        "plugins:\n  - examples.bogusdatasource\ndatasources:\n  blabla:\n    type: bogus\n"
    )
    script = Path(sys.executable).parent / "keel"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    shown = subprocess.run(
        [str(script), "-c", "examples/tree_cfg.yml", "data", "preview", "blabla", "--json"],
        cwd=tmp_path, capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    # keel asks a plugin for chunks only when it says chunked = True (upstream's refuse them)
    assert json.loads(shown.stdout)["rows"] == [[3, 6], [4, 7], [5, 8]]


def test_an_exception_in_plugin_code_is_one_line_naming_its_file(tmp_path: Path) -> None:
    from test_cli import keel

    (tmp_path / "broken_plugin.py").write_text(
        BOGUS.replace('serves = ["bogus"]', 'serves = ["broken"]').replace(
            "        if chunksize:",
            '        raise ValueError("the\\nwarehouse is closed")\n        if chunksize:',
        )
    )
    (tmp_path / "keel.yml").write_text(
        "plugins: [broken_plugin]\ndatasources:\n  b: {type: broken}\n"
    )
    shown = keel("data", "preview", "b", cwd=tmp_path)
    assert shown.returncode == 1 and "Traceback" not in shown.stderr
    [line] = [x for x in shown.stderr.splitlines() if x.startswith("error:")]
    assert line.startswith("error: ValueError: the warehouse is closed (at ")
    assert f"{tmp_path / 'broken_plugin.py'} line " in line and "rerun with -v" in line
    verbose = keel("-v", "data", "preview", "b", cwd=tmp_path)
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr
