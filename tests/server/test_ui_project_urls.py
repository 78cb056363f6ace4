"""Every UI page names its project in its URL, so a link shows the same page to anyone who
may read it (issue 20, "Links carry their project"); old project-less URLs redirect; the
start page lands on a project that holds something.

The store is filled like ``make demo`` fills it: project ``demo`` (a grid search with
children, a dataset, model ``linear``), then project ``examples`` (model ``iris`` and its
training run), the server's own project ``default`` empty; and a project whose name holds
a ``/``. Pages are read through the real app with real sessions (TestClient).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from keel.server.app import create_app
from keel.server.settings import ServerSettings

PASSWORD = "correct-horse"
DEMO = "/projects/demo"
EXAMPLES = "/projects/examples"


@dataclass
class Store:
    app: FastAPI
    demo_exp: str
    grid: str  # the parent run of the grid search
    children: list[str]
    iris_run: str
    team_run: str


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    import keel

    root = tmp_path_factory.mktemp("project-urls")
    path = str(root / "store")
    data = root / "points.csv"
    data.write_text("x,y\n1,2\n3,4\n")

    with keel.Client(store=path, project="demo") as demo:
        with demo.start_run("linear-regression", name="grid-search", kind="train") as grid:
            dataset = grid.log_dataset("demo-data", data, description="noisy points")
            grid.use_dataset(dataset)
            children = []
            for lr in (0.001, 0.01):
                with grid.start_child(name=f"lr={lr}", kind="train") as run:
                    run.log_params({"lr": lr})
                    for step in range(3):
                        run.log_metrics({"loss": 1 / (1 + step * lr)}, step=step)
                    run.log_metrics({"test_mse": lr})
                    weights = root / f"weights-{lr}.json"
                    weights.write_text("[1, 2]")
                    run.log_artifact(weights, "model/weights.json")
                children.append(run.id)
        best = demo.get_run(children[0])
        version = demo.log_model_version("linear", best, demo.get_run_artifact(best, "model"))
        version.set_alias("production")
        demo_exp = grid.experiment_id

    with (
        keel.Client(store=path, project="team/vision") as team,
        team.start_run("detect", name="team-run") as team_run,
    ):
        team_run.log_metrics({"map": 0.5})

    model = root / "iris.txt"
    model.write_text("a model")
    with (
        keel.Client(store=path, project="examples") as examples,  # last, as make demo does
        examples.start_run("iris", name="iris-train", kind="train") as iris,
    ):
        iris.log_metrics({"accuracy": 0.97})
        iris.log_model_version("iris", model, path_in_run="model")

    app = create_app(ServerSettings(store=path))
    for name, role in (("ann", "viewer"), ("bob", "viewer"), ("eve", "editor")):
        app.state.accounts.add_user(name, PASSWORD, role)
    yield Store(app, demo_exp, grid.id, children, iris.id, team_run.id)
    app.state.client.close()


def log_in(tc: TestClient, name: str) -> str:
    """Log ``name`` in; the answer's redirect target."""
    token = _csrf(tc.get("/login").text)
    answer = tc.post(
        "/login",
        data={"name": name, "password": PASSWORD, "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


@pytest.fixture
def ann(store: Store) -> Iterator[TestClient]:
    with TestClient(store.app) as tc:
        log_in(tc, "ann")
        yield tc


@pytest.fixture
def bob(store: Store) -> Iterator[TestClient]:
    with TestClient(store.app) as tc:
        log_in(tc, "bob")
        yield tc


def main_of(html: str) -> str:
    """The page's content, without the top bar (who is logged in) and CSRF tokens."""
    found = re.search(r"<main>(.*)</main>", html, flags=re.S)
    assert found, html[:300]
    return re.sub(r'name="csrf_token" value="[^"]+"', "", found.group(1))


def pages(store: Store) -> dict[str, tuple[str, str]]:
    """(URL, a text the page must show) of one page of each kind."""
    a, b = store.children
    return {
        "project": (DEMO, "linear-regression"),
        "experiment": (f"{DEMO}/experiments/{store.demo_exp}", "lr=0.001"),
        "run": (f"{DEMO}/runs/{a}", "test_mse"),
        "chart": (f"{DEMO}/runs/{a}/chart?key=loss", "loss · 3 points"),
        "artifacts": (f"{DEMO}/runs/{a}/files?path=model", "weights.json"),
        "compare": (f"{DEMO}/compare?runs={a}&runs={b}", "Compare 2 runs"),
        "models": (f"{DEMO}/models", "linear"),
        "model": (f"{DEMO}/models/linear", "production"),
        "version": (f"{DEMO}/models/linear/v/1", "lr=0.001"),
        "datasets": (f"{DEMO}/datasets", "demo-data"),
        "dataset": (f"{DEMO}/datasets/demo-data", "v1"),
        "dataset version": (f"{DEMO}/datasets/demo-data/v/1", "points.csv"),
        "other project": (f"{EXAMPLES}/models/iris", "iris"),
        "project with a slash": ("/projects/team~vision", "team-run"),
    }


# --- landing ----------------------------------------------------------------------------


def test_a_fresh_user_lands_on_the_latest_project_with_runs_listed_with_counts(
    store: Store,
) -> None:
    with TestClient(store.app) as tc:
        assert log_in(tc, "ann") == "/"
        home = tc.get("/")
        assert home.status_code == 200
        # not the empty server project: the one make demo filled last, its runs listed
        assert "Project examples" in home.text
        assert f'<a href="{EXAMPLES}/runs/{store.iris_run}">iris-train</a>' in home.text
        rows = re.findall(
            r"<tr[^>]*>\s*<td>(.*?)</td>\s*"
            r'<td class="number">(\d+)</td>\s*<td class="number">(\d+)</td>\s*'
            r'<td class="number">(\d+)</td>\s*<td class="number">(\d+)</td>',
            home.text,
        )
        table = {re.sub(r"<[^>]+>|\s*\(below\)", "", name): counts for name, *counts in rows}
        # experiments, runs, models, datasets of every project, the empty default included
        assert table == {
            "default": ["0", "0", "0", "0"],
            "demo": ["1", "3", "1", "1"],
            "examples": ["1", "1", "1", "0"],
            "team/vision": ["1", "1", "0", "0"],
        }
        assert f'<a href="{DEMO}">demo</a>' in home.text
        assert '<a href="/projects/team~vision">team/vision</a>' in home.text


def test_the_start_page_returns_to_the_project_looked_at_last_even_after_a_new_login(
    store: Store,
) -> None:
    with TestClient(store.app) as tc:
        log_in(tc, "ann")
        assert tc.get(f"{DEMO}/models").status_code == 200
        assert "Project demo" in tc.get("/").text
        log_in(tc, "ann")  # logging in again (say, the session ended) keeps it
        assert "Project demo" in tc.get("/").text
        log_in(tc, "bob")  # another user on the same browser does not inherit it
        assert "Project examples" in tc.get("/").text


# --- pages under their project --------------------------------------------------------


def test_every_page_answers_under_its_project_url(ann: TestClient, store: Store) -> None:
    for kind, (url, shown) in pages(store).items():
        page = ann.get(url, follow_redirects=False)
        assert page.status_code == 200, (kind, url, page.text[:300])
        assert shown in page.text, (kind, url)


def test_a_link_shows_the_same_page_to_a_user_whose_last_project_is_another(
    ann: TestClient, bob: TestClient, store: Store
) -> None:
    ann.get(DEMO)
    bob.get(EXAMPLES)  # bob last looked at another project
    for kind, (url, _) in pages(store).items():
        if "/chart" in url or "/files" in url:
            continue  # fragments: the same, but not whole pages
        mine, theirs = ann.get(url), bob.get(url, follow_redirects=False)
        assert theirs.status_code == 200, (kind, url)
        assert main_of(theirs.text) == main_of(mine.text), (kind, url)


def test_an_experiment_link_from_another_project_shows_its_runs(
    bob: TestClient, store: Store
) -> None:
    bob.get(EXAMPLES)
    page = bob.get(f"{DEMO}/experiments/{store.demo_exp}")
    assert page.status_code == 200
    assert ">lr=0.01</a>" in page.text and ">grid-search</a>" in page.text
    assert "No runs." not in page.text
    # the old link, and the same id under the wrong project, land on the same page
    for url in (f"/experiments/{store.demo_exp}", f"{EXAMPLES}/experiments/{store.demo_exp}"):
        answer = bob.get(url, params={"q": "params.lr = 0.01"}, follow_redirects=False)
        assert answer.status_code == 307, url
        assert answer.headers["location"] == (
            f"{DEMO}/experiments/{store.demo_exp}?q=params.lr+%3D+0.01"
        )
        followed = bob.get(url, params={"q": "params.lr = 0.01"})
        assert ">lr=0.01</a>" in followed.text and ">lr=0.001</a>" not in followed.text


# --- old URLs ---------------------------------------------------------------------------


def test_old_urls_redirect_to_the_project_that_holds_the_record(
    ann: TestClient, store: Store
) -> None:
    a, b = store.children
    ann.get(EXAMPLES)  # the last project looked at: where names go
    moved = {
        f"/runs/{a}": f"{DEMO}/runs/{a}",
        f"/runs/{a}/chart?key=loss": f"{DEMO}/runs/{a}/chart?key=loss",
        f"/runs/{a}/artifacts/model/weights.json": f"{DEMO}/runs/{a}/artifacts/model/weights.json",
        f"/runs/{store.iris_run}": f"{EXAMPLES}/runs/{store.iris_run}",
        f"/compare?runs={a}&runs={b}": f"{DEMO}/compare?runs={a}&runs={b}",
        f"/compare/chart?key=loss&runs={a}": f"{DEMO}/compare/chart?key=loss&runs={a}",
        "/models": f"{EXAMPLES}/models",
        "/models/iris/v/1": f"{EXAMPLES}/models/iris/v/1",
        "/models/linear?project=demo": f"{DEMO}/models/linear",
        "/datasets/demo-data/v/1?project=demo": f"{DEMO}/datasets/demo-data/v/1",
        "/datasets": f"{EXAMPLES}/datasets",
        f"{EXAMPLES}/runs/{a}": f"{DEMO}/runs/{a}",  # a run under the wrong project
        "/projects/team/vision": "/projects/team~vision",  # the old link to a '/' project
    }
    for old, new in moved.items():
        answer = ann.get(old, follow_redirects=False)
        assert answer.status_code == 307, (old, answer.text[:300])
        assert answer.headers["location"] == new, old
        assert ann.get(old).status_code == 200, old
        ann.get(EXAMPLES)  # opening the page made its project the last one: back


def test_an_old_url_without_a_session_goes_to_the_login_page_then_to_its_page(
    store: Store,
) -> None:
    with TestClient(store.app) as tc:
        answer = tc.get("/models/linear?project=demo", follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/login?next=/models/linear")


# --- not found --------------------------------------------------------------------------


def test_a_name_not_in_the_project_is_a_404_that_links_the_project_holding_it(
    ann: TestClient,
) -> None:
    page = ann.get("/projects/default/models/linear")
    assert page.status_code == 404
    assert "no model named &#39;linear&#39; in project &#39;default&#39;" in page.text
    assert f'<a href="{DEMO}/models/linear">project demo</a>' in page.text
    version = ann.get(f"{EXAMPLES}/models/linear/v/1")
    assert version.status_code == 404
    assert f'<a href="{DEMO}/models/linear/v/1">project demo</a>' in version.text
    dataset = ann.get(f"{EXAMPLES}/datasets/demo-data")
    assert dataset.status_code == 404
    assert "in project &#39;examples&#39;" in dataset.text
    assert f'<a href="{DEMO}/datasets/demo-data">project demo</a>' in dataset.text
    nowhere = ann.get(f"{DEMO}/models/nope")
    assert nowhere.status_code == 404 and "project demo</a>" not in nowhere.text
    assert "in project &#39;demo&#39;" in nowhere.text


def test_a_project_the_store_does_not_hold_is_a_404_naming_those_it_holds(
    ann: TestClient,
) -> None:
    for url in ("/projects/nope", "/projects/nope/models/linear", "/projects/nope/datasets"):
        page = ann.get(url)
        assert page.status_code == 404, url
        assert "there is no project &#39;nope&#39; in this store" in page.text, url
        assert "demo, examples, team/vision" in page.text
    assert "Project default" in ann.get("/projects/default").text  # empty, but the server's


# --- every link ------------------------------------------------------------------------


class Links(HTMLParser):
    """The URLs a page links or posts to: (attribute, URL, whether it is followed by GET)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str, bool]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v for k, v in attrs if v is not None}
        for attribute in ("href", "hx-get", "action", "hx-post"):
            if attribute not in values:
                continue
            read = attribute in ("href", "hx-get") or (
                tag == "form" and values.get("method", "get").lower() == "get"
            )
            self.found.append((attribute, values[attribute], read))


#: pages of the whole server, not of a project (and the start page, the last project's)
SERVER_WIDE = ("/", "/pipelines", "/jobs", "/docs", "/login", "/logout", "/static/")


def test_every_link_of_every_page_names_its_project_and_answers(store: Store) -> None:
    with TestClient(store.app) as tc:
        log_in(tc, "eve")  # an editor: the alias forms are on the pages too
        todo = ["/", DEMO, EXAMPLES, "/projects/team~vision"]
        seen: set[str] = set(todo)
        checked = 0
        while todo:
            url = todo.pop()
            answer = tc.get(url, follow_redirects=False)
            assert answer.status_code not in (404, 500), (url, answer.text[:300])
            assert answer.status_code in (200, 307, 422), (url, answer.status_code)
            if answer.status_code == 307:  # the permanent link of a job's run, say
                target = answer.headers["location"]
                assert target.startswith("/projects/"), (url, target)
                continue
            if not answer.headers["content-type"].startswith("text/html"):
                continue
            parser = Links()
            parser.feed(answer.text)
            project_page = urlsplit(url).path.startswith("/projects/")
            for attribute, link, read in parser.found:
                target = urljoin(f"http://testserver{url}", link)
                parts = urlsplit(target)
                if parts.scheme not in ("http", "https") or parts.netloc != "testserver":
                    continue  # another site, or data: (the empty favicon)
                path = parts.path
                if project_page and path != "/" and not path.startswith(SERVER_WIDE[1:]):
                    assert path.startswith("/projects/"), (url, attribute, link)
                local = path + (f"?{parts.query}" if parts.query else "")
                if read and local not in seen and not path.startswith(("/static/", "/docs")):
                    seen.add(local)
                    todo.append(local)
            checked += 1
        assert checked > 30, f"only {checked} pages crawled: {sorted(seen)}"
        assert any("/artifacts/" in url for url in seen) and any("/chart" in url for url in seen)
