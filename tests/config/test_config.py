"""keel.yml: finding it, includes, environment substitution, secrets and located errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from keel.config import load_config, parse_config
from keel.config.models import KeelConfig
from keel.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- finding the file -------------------------------------------------------------------


def test_no_file_gives_defaults_and_says_so(tmp_path: Path) -> None:
    config = load_config(env={})
    assert config.path is None
    assert config.settings == KeelConfig()
    assert "no config file" in config.describe()


def test_explicit_path_wins_over_env_and_working_folder(tmp_path: Path) -> None:
    write(tmp_path / "keel.yml", "project: local\n")
    write(tmp_path / "env.yml", "project: from-env\n")
    write(tmp_path / "given.yml", "project: given\n")
    env = {"KEEL_CONFIG": str(tmp_path / "env.yml")}
    given = load_config(tmp_path / "given.yml", env=env)
    assert (given.project, given.origin) == ("given", "-c")
    assert "given with -c" in given.describe()
    from_env = load_config(env=env)
    assert (from_env.project, from_env.origin) == ("from-env", "KEEL_CONFIG")
    assert "from KEEL_CONFIG" in from_env.describe()
    local = load_config(env={})
    assert (local.project, local.origin) == ("local", "./keel.yml")
    assert "working folder" in local.describe()


@pytest.mark.parametrize(
    ("path", "env", "says"),
    [
        ("missing.yml", {}, "config file missing.yml (given with -c) not found"),
        (None, {"KEEL_CONFIG": "gone.yml"}, "config file gone.yml (from KEEL_CONFIG) not found"),
    ],
)
def test_a_named_file_that_is_missing_is_an_error(
    path: str | None, env: dict[str, str], says: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(says)):
        load_config(path, env=env)


# --- !include, ${ENV}, *_var ------------------------------------------------------------


def test_include_is_relative_to_the_including_file(tmp_path: Path) -> None:
    write(tmp_path / "conf" / "keel.yml", "project: p\ndatasources: !include parts/sources.yml\n")
    write(
        tmp_path / "conf" / "parts" / "sources.yml",
        "train: {type: csv, path: t.csv}\ndb: !include db.yml\n",
    )
    write(tmp_path / "conf" / "parts" / "db.yml", "type: dbms.x\nquery: select 1\n")
    config = load_config(tmp_path / "conf" / "keel.yml", env={})
    assert config.settings.datasources == {
        "train": {"type": "csv", "path": "t.csv"},
        "db": {"type": "dbms.x", "query": "select 1"},
    }
    # Errors inside an included file name that file and line.
    assert (
        config.where(("datasources", "db", "query")) == f"{tmp_path / 'conf/parts/db.yml'} line 2"
    )


def test_include_cycle_and_missing_include_are_named(tmp_path: Path) -> None:
    write(tmp_path / "a.yml", "datasources: !include b.yml\n")
    write(tmp_path / "b.yml", "x: !include a.yml\n")
    with pytest.raises(ConfigError, match=r"!include cycle: a\.yml -> b\.yml -> a\.yml"):
        load_config(tmp_path / "a.yml", env={})
    write(tmp_path / "c.yml", "datasources: !include nowhere.yml\n")
    with pytest.raises(
        ConfigError, match=r"c\.yml line 1: datasources: config file .*nowhere\.yml not found"
    ):
        load_config(tmp_path / "c.yml", env={})


def test_env_substitution_with_defaults_and_escapes(tmp_path: Path) -> None:
    write(
        tmp_path / "keel.yml",
        "project: ${PROJ}\n"
        "store: ${STORE_DIR:-./.keel}/meta\n"
        "model:\n  name: m\n  note: 'costs ${AMOUNT} EUR, literally $${CURRENCY}'\n",
    )
    config = load_config(env={"PROJ": "iris", "AMOUNT": "5"})
    assert config.project == "iris"
    assert config.store.url == "./.keel/meta"
    assert config.settings.model is not None
    assert config.settings.model.model_extra == {"note": "costs 5 EUR, literally ${CURRENCY}"}
    # The snapshot keeps what was written, not what the environment said.
    assert config.snapshot()["project"] == "${PROJ}"


def test_a_missing_env_variable_names_it_and_where_it_is_used(tmp_path: Path) -> None:
    write(
        tmp_path / "keel.yml",
        "project: p\ndatasources:\n  t:\n    type: csv\n    path: ${DATA_DIR}/t.csv\n",
    )
    with pytest.raises(ConfigError) as err:
        load_config(env={})
    assert str(err.value) == (
        f"{tmp_path / 'keel.yml'} line 5: datasources.t.path: environment variable DATA_DIR "
        "is not set (used as ${DATA_DIR}; set it or write ${DATA_DIR:-default})"
    )


def test_var_keys_read_secrets_that_never_reach_the_snapshot(tmp_path: Path) -> None:
    write(
        tmp_path / "keel.yml",
        "dbms:\n  wh:\n    connection_string: postgresql://u@h/db\n    password_var: WH_PW\n"
        "    options:\n      sslkey_var: WH_KEY\n",
    )
    config = load_config(env={"WH_PW": "hunter2-secret", "WH_KEY": "key-secret"})
    section = config.settings.dbms["wh"]
    assert section.password == "hunter2-secret"
    assert section.options == {"sslkey": "key-secret"}
    snapshot = config.snapshot()
    assert snapshot["dbms"]["wh"]["password_var"] == "WH_PW"
    text = repr(snapshot) + repr(config.settings) + config.describe()
    assert "hunter2-secret" not in text and "key-secret" not in text
    assert config.scrub("login failed for hunter2-secret") == "login failed for ***"


def test_a_missing_secret_variable_is_an_error_naming_it(tmp_path: Path) -> None:
    write(
        tmp_path / "keel.yml",
        "dbms:\n  wh:\n    connection_string: sqlite://\n    password_var: NOPE\n",
    )
    with pytest.raises(
        ConfigError, match=r"line 4: dbms\.wh\.password_var: environment variable NOPE is not set"
    ):
        load_config(env={})


def test_a_key_given_both_plainly_and_as_var_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "keel.yml", "dbms:\n  wh:\n    password: a\n    password_var: B\n")
    with pytest.raises(ConfigError, match=r"line 4: dbms\.wh\.password_var: key given twice"):
        load_config(env={"B": "b"})


def test_secrets_in_invalid_values_are_not_echoed(tmp_path: Path) -> None:
    # port read from the environment but not a number: the error must not show the value.
    write(
        tmp_path / "keel.yml",
        "dbms:\n  o:\n    type: oracle\n    host: h\n    service_name: s\n    port_var: P\n",
    )
    with pytest.raises(ConfigError) as err:
        load_config(env={"P": "s3cr3t-port"})
    assert "dbms.o.port" in str(err.value) and "integer" in str(err.value)
    assert "s3cr3t-port" not in str(err.value)


# --- validation -------------------------------------------------------------------------


def test_unknown_keys_are_reported_with_file_line_path_and_a_suggestion(tmp_path: Path) -> None:
    write(tmp_path / "keel.yml", "project: p\nstore:\n  url: x\n  artefacts: y\n")
    with pytest.raises(ConfigError) as err:
        load_config(env={})
    assert str(err.value) == (
        f"{tmp_path / 'keel.yml'} line 4: store.artefacts: unknown key artefacts "
        "(did you mean artifacts? known keys: artifacts, storage_options, url)"
    )


def test_unknown_sections_are_reported(tmp_path: Path) -> None:
    write(tmp_path / "keel.yml", "project: p\ndatasource: {}\n")
    with pytest.raises(
        ConfigError,
        match=r"line 2: datasource: unknown key datasource \(did you mean datasources\?",
    ):
        load_config(env={})


def test_wrong_types_say_what_was_expected(tmp_path: Path) -> None:
    write(tmp_path / "keel.yml", "project: p\nplugins: mymodule\n")
    with pytest.raises(ConfigError, match=r"line 2: plugins: expected a valid list"):
        load_config(env={})
    write(tmp_path / "keel.yml", "project: [a]\n")
    with pytest.raises(ConfigError, match=r"line 1: project: expected a valid string"):
        load_config(env={})


def test_several_problems_are_counted(tmp_path: Path) -> None:
    write(tmp_path / "keel.yml", "a: 1\nb: 2\nc: 3\nd: 4\nproject: p\n")
    with pytest.raises(
        ConfigError,
        match=r"unknown key a .*; .*unknown key b.*; .*unknown key c .*\(and 1 more problem\)",
    ):
        load_config(env={})


def test_yaml_syntax_errors_give_the_line(tmp_path: Path) -> None:
    write(tmp_path / "keel.yml", "project: p\nstore: [unclosed\n")
    with pytest.raises(ConfigError, match=r"keel\.yml line \d+: not valid YAML"):
        load_config(env={})


def test_duplicate_keys_are_errors_not_silently_overridden(tmp_path: Path) -> None:
    write(tmp_path / "keel.yml", "project: a\nproject: b\n")
    with pytest.raises(ConfigError, match=r"line 2: project: key given twice"):
        load_config(env={})


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    write(tmp_path / "keel.yml", "- a\n- b\n")
    with pytest.raises(ConfigError, match=r"expected a mapping of sections"):
        load_config(env={})


def test_unknown_tags_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "keel.yml", "project: !secret p\n")
    with pytest.raises(ConfigError, match=r"line 1: project: unknown tag !secret"):
        load_config(env={})


def test_empty_file_and_empty_sections_are_fine(tmp_path: Path) -> None:
    write(tmp_path / "keel.yml", "")
    assert load_config(env={}).settings == KeelConfig()
    write(tmp_path / "keel.yml", "datasources:\ndatasinks:\nplugins:\n")
    assert load_config(env={}).settings == KeelConfig()


def test_sections_have_their_place(tmp_path: Path) -> None:
    config = parse_config(
        "project: p\nstore: ./meta\nplugins: [my_types]\n"
        "dbms:\n  wh: {connection_string: 'sqlite://', echo: true, pool_recycle: 60}\n"
        "model:\n  name: iris\n  version: 1.2.0\n  module: iris_model\n  params: {depth: 3}\n  threshold: 0.5\n"
        "api:\n  name: iris\njobs:\n  executor: local\n",
        env={},
        base_dir=tmp_path,
    )
    settings = config.settings
    assert settings.store.url == "./meta"
    assert settings.plugins == ["my_types"]
    assert settings.dbms["wh"].engine_kwargs == {"echo": True, "pool_recycle": 60}
    assert settings.model is not None and settings.model.params == {"depth": 3}
    assert settings.model.version == "1.2.0"
    assert settings.model.model_extra == {"threshold": 0.5}
    assert settings.api is not None and settings.api.name == "iris"
    assert settings.jobs is not None and settings.jobs.executor == "local"


def test_merge_keys_work(tmp_path: Path) -> None:
    config = parse_config(
        "datasources:\n"
        "  base: &csv {type: csv, path: a.csv, expires: 60}\n"
        "  other:\n    <<: *csv\n    path: b.csv\n",
        env={},
        base_dir=tmp_path,
    )
    assert config.settings.datasources["other"] == {"type": "csv", "path": "b.csv", "expires": 60}


def test_dbms_needs_somewhere_to_connect(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"dbms\.wh: connection_string is required"):
        parse_config("dbms:\n  wh: {echo: true}\n", env={}, base_dir=tmp_path)


def test_the_store_section_feeds_client_settings(tmp_path: Path) -> None:
    from keel.tracking.settings import resolve_settings

    write(tmp_path / "keel.yml", "project: iris\nstore:\n  url: ./meta\n  artifacts: ./blobs\n")
    settings = resolve_settings()
    assert settings.project == "iris"
    assert settings.store == "./meta"
    assert settings.artifacts == "./blobs"
