"""ML Launchpad projects served by keel unchanged: its config file and names (``LAUNCHPAD_CFG``,
``./LAUNCHPAD_CFG.yml``, ``model_store``, ``tags: train``, ``api: {raml, root_path, …}``), its
RAML API files (read with ML Launchpad's checks, written by ``keel api schema --raml``) and the
``static/`` folder of ``api.root_path``.

The projects under ``projects/`` are keel's own, in ML Launchpad's shapes: a tree model with a
RAML file holding a nested id route, a ``serves`` data source plugin and a demo page; and the
addition example. They are trained and served through the ``keel`` command and called over
HTTP on loopback.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx2
import pytest
from tests.test_cli import keel
from tests.test_path_traversal import HOSTILE

from keel.config import load_config, parse_config
from keel.errors import ConfigError
from keel.serving.raml import parse_raml, raml_from_frame, read_raml, to_raml
from keel.serving.service import api_spec
from keel.serving.spec import ApiSpec

PROJECTS = Path(__file__).parent / "projects"
TREE_QUERY = "sepal.length=4.9&sepal.width=2.4&petal.length=3.3&petal.width=1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _copy(name: str, target: Path) -> Path:
    shutil.copytree(PROJECTS / name, target)
    return target


class Served:
    """A ``keel serve`` process on loopback and a client for it."""

    def __init__(self, root: Path, env: dict[str, str], *args: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "keel.cli", *args, "serve", "--port", str(self.port)],
            cwd=root,
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.client = httpx2.Client(base_url=self.url, timeout=30)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"keel serve exited early:\n{self.proc.stdout.read()}")
            try:
                if self.client.get("/ready").status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError("keel serve did not become ready")

    def stop(self) -> str:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out


def _env(root: Path, **extra: str) -> dict[str, str]:
    # Subprocesses of module-scoped fixtures: their own cache, no KEEL_*/LAUNCHPAD_CFG leaking in.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEEL_", "LAUNCHPAD_"))}
    return {**env, "KEEL_CACHE_DIR": str(root / "cache"), **extra}


def _keel(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keel.cli", *args],
        cwd=root,
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        check=False,
    )


# --------------------------------------------------------------------------- the tree project


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Served]]:
    """The tree project found through env LAUNCHPAD_CFG, trained, then served."""
    root = _copy("launchpad_tree", tmp_path_factory.mktemp("lp") / "tree")
    # From another folder: the config is found by LAUNCHPAD_CFG alone, and every path in it
    # (model_store, data, raml, root_path, the model and plugin modules) is its folder's.
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    env = _env(root, LAUNCHPAD_CFG=str(root / "tree_cfg.yml"))
    trained = _keel(elsewhere, env, "train")
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert (root / "model_store" / "keel.db").is_file()
    served = Served(elsewhere, env)
    try:
        yield root, served
    finally:
        out = served.stop()
        assert served.proc.returncode in (0, -signal.SIGTERM), out


@pytest.mark.slow
def test_a_query_resource_from_raml_predicts(tree: tuple[Path, Served]) -> None:
    _, served = tree
    answer = served.client.get(f"/iris/v0/varieties?{TREE_QUERY}")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"iris_variety": "Versicolor"}
    # RAML's minimum: 0 is checked, as ML Launchpad did
    negative = served.client.get("/iris/v0/varieties?sepal.length=-1")
    assert negative.status_code == 422 and negative.json()["details"][0]["field"] == "sepal.length"
    wrong_type = served.client.get("/iris/v0/varieties?sepal.length=abc")
    assert wrong_type.status_code == 422


@pytest.mark.slow
def test_the_nested_id_route_passes_the_uri_parameter_and_checks_its_query(
    tree: tuple[Path, Served],
) -> None:
    _, served = tree
    answer = served.client.get("/iris/v0/varieties/12?hallo=metric")
    assert answer.status_code == 200, answer.text
    # myid 12 of iris_pred_input.csv is a versicolor/virginica border flower; the tree decides
    assert answer.json()["iris_variety"] in {"Versicolor", "Virginica"}
    assert answer.json()["unit"] == "metric"
    bad = served.client.get("/iris/v0/varieties/12?hallo=bad")
    assert bad.status_code == 422
    assert bad.json()["details"] == [
        {"field": "hallo", "problem": "Input should be 'metric' or 'imperial'"}
    ]
    missing = served.client.get("/iris/v0/varieties/12")
    assert missing.status_code == 422 and "hallo" in missing.json()["message"]
    unknown = served.client.get("/iris/v0/varieties/12?hallo=metric&colour=red")
    assert unknown.status_code == 422 and "colour" in unknown.json()["message"]


@pytest.mark.slow
def test_batch_branch_reads_the_plugin_source_and_writes_the_sink(
    tree: tuple[Path, Served],
) -> None:
    root, served = tree
    answer = served.client.get("/iris/v0/varieties")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "ok", "bogus_rows": 3}  # the `serves = ["bogus"]` plugin
    written = (root / "iris_pred_output.csv").read_text().splitlines()
    assert written[0].startswith("myid,") and written[0].endswith(",pred") and len(written) == 7


@pytest.mark.slow
def test_static_folder_of_root_path_is_served_and_stays_inside(
    tree: tuple[Path, Served],
) -> None:
    root, served = tree
    page = served.client.get("/static/tree.html")
    assert page.status_code == 200 and "Iris Tree Demo" in page.text
    assert page.headers["content-type"].startswith("text/html")
    (root / "secret.txt").write_text("not for the web")
    for _, hostile in HOSTILE:
        raw = f"{served.url}/static/{quote(hostile, safe='/')}"
        answer = httpx2.get(raw, timeout=10, follow_redirects=True)
        assert answer.status_code == 404, (hostile, answer.status_code)
    for sneaky in ("../secret.txt", "..%2Fsecret.txt", "%2e%2e/secret.txt", "/../tree_cfg.yml"):
        out = subprocess.run(
            ["curl", "-s", "--path-as-is", f"{served.url}/static/{sneaky}"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert "not for the web" not in out.stdout and "model_store" not in out.stdout
    assert served.client.get("/static/nothing.html").status_code == 404
    assert served.client.get("/static/").status_code == 404
    # the container contract and the API are not shadowed
    assert served.client.get("/ping").status_code == 200
    doc = served.client.get("/openapi.json").json()
    assert {"/iris/v0/varieties", "/iris/v0/varieties/{test_key}"} <= set(doc["paths"])


# --------------------------------------------------------------------------- the addition project


@pytest.mark.slow
def test_the_addition_example_through_launchpad_cfg_in_the_working_folder(
    tmp_path: Path,
) -> None:
    root = _copy("launchpad_addition", tmp_path / "addition")
    (root / "addition_cfg.yml").rename(root / "LAUNCHPAD_CFG.yml")
    env = _env(root)
    trained = _keel(root, env, "train")
    assert trained.returncode == 0, trained.stdout + trained.stderr
    served = Served(root, env)
    try:
        assert served.client.get("/add/v0/sum?x1=3&x2=2").json() == {"my_addition_result": 5.0}
        assert served.client.get("/add/v0/sum?x1=3").json() == {"my_addition_result": 3.0}
        assert served.client.get("/add/v0/sum").json() == {"my_addition_result": 0.0}
        assert served.client.post("/add/v0/sum", json={"x1": 1.5}).json() == {
            "my_addition_result": 1.5
        }
        assert served.client.get("/add/v0/sum?x1=three").status_code == 422
        assert served.client.get("/add/v1/sum?x1=3").status_code == 404
    finally:
        served.stop()


# --------------------------------------------------------------------------- the config file


def test_launchpad_cfg_is_found_after_keel_config_and_keel_yml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "elsewhere.yml").write_text("model_store: {location: ./ms}\n")
    found = load_config(env={"LAUNCHPAD_CFG": str(tmp_path / "elsewhere.yml")})
    assert found.origin == "LAUNCHPAD_CFG" and "from LAUNCHPAD_CFG" in found.describe()
    assert found.store.url == str(tmp_path / "ms")
    assert load_config(env={}).origin == "defaults"
    assert "LAUNCHPAD_CFG.yml" in load_config(env={}).describe()
    (tmp_path / "LAUNCHPAD_CFG.yml").write_text("model_store: {location: ./ms2}\n")
    local = load_config(env={})
    assert local.origin == "./LAUNCHPAD_CFG.yml" and local.store.url == str(tmp_path / "ms2")
    assert load_config(env={"LAUNCHPAD_CFG": "elsewhere.yml"}).origin == "LAUNCHPAD_CFG"
    (tmp_path / "keel.yml").write_text("project: mine\n")
    assert load_config(env={"LAUNCHPAD_CFG": "elsewhere.yml"}).origin == "./keel.yml"
    assert load_config(env={"KEEL_CONFIG": "elsewhere.yml"}).origin == "KEEL_CONFIG"
    with pytest.raises(ConfigError, match=r"nothere.yml \(from LAUNCHPAD_CFG\) not found"):
        (tmp_path / "keel.yml").unlink()
        load_config(env={"LAUNCHPAD_CFG": "nothere.yml"})


def test_every_key_of_the_projects_loads_and_model_options_reach_model_conf() -> None:
    from keel.data.catalog import DataCatalog
    from keel.lifecycle.project import Project

    for project, cfg in (
        ("launchpad_tree", "tree_cfg.yml"),
        ("launchpad_addition", "addition_cfg.yml"),
    ):
        config = load_config(PROJECTS / project / cfg)
        spec = api_spec(config)
        assert spec.raml and spec.root_path == str((PROJECTS / project).resolve())
        assert config.store.url == str((PROJECTS / project / "model_store").resolve())
        model_conf = Project(config, None).model_conf  # type: ignore[arg-type]
        assert model_conf["train_options"] == {} and model_conf["predict_options"] == {}
    tree = load_config(PROJECTS / "launchpad_tree" / "tree_cfg.yml")
    text = (PROJECTS / "launchpad_tree" / "tree_cfg.yml").read_text()
    # without the plugin, the other sources and sinks are checked by keel's own types
    plain = text.replace("  - bogusdatasource", "  []").replace("  blabla:\n    type: bogus\n", "")
    plain = plain.replace("plugins:\n  []", "plugins: []")
    catalog = DataCatalog(parse_config(plain, base_dir=PROJECTS / "launchpad_tree"))
    assert catalog.source("petals").tags == ["train"]
    assert catalog.sink("predictions").tags == ["predict"]
    assert catalog.source("petals_test").settings.expires == 3600
    assert tree.settings.model is not None and tree.settings.model.version == "0.0.2"


def test_unknown_keys_are_still_errors_naming_the_line(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"line 2: model_store.path: unknown key path \(known keys: location\)"
    ):
        parse_config("model_store:\n  path: ./x\n")
    with pytest.raises(ConfigError, match=r"line 3: api.colour: unknown key colour"):
        api_spec(parse_config("api:\n  name: x\n  colour: red\n"))
    with pytest.raises(ConfigError, match=r"api\.raml or api\.resources, not both"):
        api_spec(parse_config("api:\n  raml: x.raml\n  resources: [{name: a}]\n"))
    with pytest.raises(ConfigError, match=r"line 3: api.version: v1 differs .*\(v0\)"):
        api_spec(parse_config("model: {name: m, version: '0.1.0'}\napi:\n  version: v1\n"))
    with pytest.raises(ConfigError, match=r"datasources.a.tagz: unknown key"):
        from keel.data.catalog import DataCatalog

        DataCatalog(parse_config("datasources:\n  a: {type: csv, path: a.csv, tagz: train}\n"))


def test_store_and_model_store_together_are_refused_on_the_model_store_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("store: .keel\n\nmodel_store:\n  location: ./ms\n")
    message = str(caught.value)
    assert "line 3" in message and "keep one" in message and "\n" not in message


# --------------------------------------------------------------------------- RAML


def _write(tmp_path: Path, raml: str, model_version: str = "0.0.1") -> Path:
    (tmp_path / "my_api.raml").write_text(raml)
    (tmp_path / "cfg.yml").write_text(
        f"model: {{name: m, version: '{model_version}', module: m}}\n"
        "api:\n  name: things\n  raml: my_api.raml\n"
    )
    return tmp_path / "cfg.yml"


HEAD = "#%RAML 0.8\n---\ntitle: T\nversion: v0\n"

BAD_RAML = {
    "put": (
        HEAD + "/things:\n  get:\n  put:\n",
        7,
        "/things.put: the method put is not served (keel serves get and post)",
    ),
    "traits": (
        HEAD + "traits:\n  - paged: {}\n/things:\n  get:\n",
        5,
        "traits: traits (traits:) are not supported",
    ),
    "is": (
        HEAD + "/things:\n  is: [paged]\n  get:\n",
        6,
        "/things.is: traits (is:) are not supported",
    ),
    "include": (
        HEAD + "/things:\n  get:\n    queryParameters: !include params.raml\n",
        7,
        "!include is not supported",
    ),
    "date": (
        HEAD + "/things:\n  get:\n    queryParameters:\n      when:\n        type: date\n",
        9,
        "/things.get.queryParameters.when.type: the type date is not served",
    ),
    "deep": (
        HEAD + "/things:\n  /{id}:\n    /owner:\n      get:\n",
        7,
        "the path /things/{id}/owner is not served",
    ),
    "bare-id": (HEAD + "/{id}:\n  get:\n", 5, "the path /{id} is not served"),
    "form": (
        HEAD + "/things:\n  post:\n    body:\n      application/x-www-form-urlencoded:\n",
        8,
        "a application/x-www-form-urlencoded body is not served",
    ),
    "unknown-key": (
        HEAD + "/things:\n  get:\n    queryParameters:\n      x: {type: number, minimun: 0}\n",
        8,
        "unknown RAML key minimun in a parameter",
    ),
    "no-header": ("title: T\n/things:\n  get:\n", 1, "not a RAML file"),
    "nothing": (
        HEAD + "/things:\n  description: nothing served\n",
        None,
        "no resource with a get or post method",
    ),
    "version": (
        "#%RAML 0.8\n---\ntitle: T\nversion: v1\n/things:\n  get:\n",
        4,
        "version: v1 differs from the config's API version v0",
    ),
    "malformed": (HEAD + "/things:\n  get:\n   - [\n", None, "malformed YAML"),
}


@pytest.mark.parametrize("case", sorted(BAD_RAML))
def test_a_raml_construct_keel_cannot_serve_is_one_line_naming_file_line_and_construct(
    tmp_path: Path, case: str
) -> None:
    raml, line, expected = BAD_RAML[case]
    cfg = _write(tmp_path, raml)
    with pytest.raises(ConfigError) as caught:
        api_spec(load_config(cfg))
    message = str(caught.value)
    assert "\n" not in message and "my_api.raml" in message, message
    if line is not None:
        assert f"my_api.raml line {line}: " in message, message
    assert expected in message, message


def test_keel_serve_with_bad_raml_exits_with_that_line(tmp_path: Path) -> None:
    cfg = _write(tmp_path, HEAD + "/things:\n  delete:\n")
    out = keel("-c", str(cfg), "serve", "--port", str(_free_port()), cwd=tmp_path)
    assert out.returncode != 0
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert "my_api.raml line 6: /things.delete: the method delete is not served" in lines[0]


def test_raml_parameters_map_to_checked_inputs(tmp_path: Path) -> None:
    raml = read_raml(PROJECTS / "launchpad_tree" / "tree.raml")
    assert raml.version == "v0" and raml.raml_version == "0.8"
    query, by_id = raml.resources
    assert (query.name, query.kind, by_id.name, by_id.kind) == (
        "varieties",
        "query",
        "varieties",
        "id",
    )
    assert by_id.id is not None and by_id.id.name == "test_key" and by_id.id.type == "string"
    sepal = (query.inputs or {})["sepal.length"]
    assert (sepal.type, sepal.is_required, sepal.min, sepal.example) == ("number", False, 0, 3.14)
    hallo = (by_id.inputs or {})["hallo"]
    assert hallo.is_required and hallo.enum == ["metric", "imperial"]
    v10 = parse_raml(
        "#%RAML 1.0\ntitle: T\n/docs:\n  post:\n    queryParameters:\n"
        "      tags: string[]\n      n: {type: integer, minimum: 1, maximum: 9, default: 3}\n"
        "      word: {type: string, minLength: 2, maxLength: 5, required: false}\n"
        "      many: {type: number, repeat: true, required: false}\n"
        "/uploads:\n  post:\n    body:\n      multipart/form-data:\n        properties:\n"
        "          file: {type: file, fileTypes: ['application/pdf']}\n"
        "          text: {type: string, required: false}\n"
        "/items/{item_id}:\n  uriParameters:\n    item_id: {type: integer}\n  get:\n",
        "v10.raml",
    )
    docs, uploads, items = v10.resources
    inputs = docs.inputs or {}
    assert inputs["tags"].is_array and inputs["tags"].is_required  # RAML 1.0: required by default
    assert (inputs["n"].min, inputs["n"].max, inputs["n"].default) == (1, 9, 3)
    assert (inputs["word"].min, inputs["word"].max) == (2, 5) and inputs["many"].is_array
    assert (uploads.kind, uploads.file, list(uploads.inputs or {})) == ("file", "file", ["text"])
    assert items.kind == "id" and items.id is not None and items.id.type == "integer"
    assert items.inputs == {}  # no query parameters: any given is refused


def _same(a: list, b: list) -> None:
    assert [(r.name, r.kind, r.id, r.file, r.description) for r in a] == [
        (r.name, r.kind, r.id, r.file, r.description) for r in b
    ]
    for x, y in zip(a, b, strict=True):
        schema_x = x.input_model.model_json_schema() if x.input_model else None
        schema_y = y.input_model.model_json_schema() if y.input_model else None
        assert schema_x == schema_y, x.name


def test_raml_written_reads_back_as_the_same_resources() -> None:
    tree = read_raml(PROJECTS / "launchpad_tree" / "tree.raml")
    again = parse_raml(to_raml(tree.resources, api_name="iris", version="v0"), "again.raml")
    assert again.version == "v0"
    _same(tree.resources, again.resources)
    spec = ApiSpec.model_validate(
        {
            "resources": [
                {
                    "name": "species",
                    "description": "a prediction",
                    "inputs": {
                        "x": {"type": "number", "min": 0, "max": 20, "description": "length"},
                        "word": {"type": "string", "min": 1, "max": 8, "enum": ["a", "bb"]},
                        "tags": {"type": "string[]", "default": []},
                        "n": {"type": "integer", "required": False, "example": 4},
                        "flag": {"type": "boolean", "default": True},
                    },
                },
                {
                    "name": "species",
                    "kind": "id",
                    "id": {"name": "key", "type": "integer"},
                    "inputs": {},
                },
                {"name": "upload", "kind": "file", "file": "data", "inputs": {"label": "string"}},
            ]
        }
    )
    text = to_raml(spec.resources, api_name="iris", version="1")
    assert text.startswith("#%RAML 0.8\n") and "version: v1" in text
    _same(spec.resources, parse_raml(text, "round.raml").resources)


def test_raml_from_a_frame_is_ml_launchpads_generate_raml() -> None:
    import pandas as pd

    frame = pd.read_csv(PROJECTS / "launchpad_tree" / "iris_train.csv")
    text = raml_from_frame(frame, api_name="iris", resource="varieties", exclude=["variety"])
    (resource,) = parse_raml(text, "gen.raml").resources
    assert resource.name == "varieties" and resource.kind == "query"
    assert set(resource.inputs or {}) == {
        "sepal.length",
        "sepal.width",
        "petal.length",
        "petal.width",
    }
    assert all(i.type == "number" and i.is_required for i in (resource.inputs or {}).values())


def test_keel_api_schema_raml_writes_the_configs_resources_and_a_sources_columns(
    tmp_path: Path,
) -> None:
    root = _copy("launchpad_tree", tmp_path / "tree")
    cfg = str(root / "tree_cfg.yml")
    out = keel("-c", cfg, "api", "schema", "--raml", "-o", "again.raml", cwd=root)
    assert out.returncode == 0, out.stderr
    _same(read_raml(root / "tree.raml").resources, read_raml(root / "again.raml").resources)
    assert read_raml(root / "again.raml").version == "v0"
    out = keel(
        "-c", cfg, "api", "schema", "--raml", "--from-source", "petals",
        "--exclude", "variety", "--resource", "varieties", cwd=root,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("#%RAML 0.8") and "/iris/{version}" in out.stdout
    assert "sepal.length" in out.stdout and "variety:" not in out.stdout
    out = keel("-c", cfg, "api", "schema", cwd=root)
    assert out.returncode != 0 and "--from-source" in out.stderr
