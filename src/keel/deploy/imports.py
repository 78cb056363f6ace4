"""Which libraries a model needs: the modules its pickles name, or its code imports.

A version records every library imported when it was saved, and a training process imports
far more than the model uses (test tools, Dask, the UI's), as does loading it (pandas pulls
in pyarrow when it is there, joblib psutil). An image needs the libraries the model itself
names, with their required dependencies (pip resolves those):

- a version: the modules its pickles reference while they load (classes, functions, and
  the modules cloudpickle re-imports for code pickled by value), found in a fresh
  interpreter (``python -m keel.deploy.imports VERSION_DIR``);
- a project: the top-level ``import`` statements of its Python files.
"""

from __future__ import annotations

import ast
import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

#: files holding pickles among a version's files (code and fitted model)
PICKLES = (".cloudpickle", ".pkl", ".pickle")


def _top(name: str) -> str | None:
    top = name.split(".")[0]
    if not top.isidentifier() or top.startswith("_") or top in sys.stdlib_module_names:
        return None
    return top


class _Recording(pickle.Unpickler):
    """Loads a pickle and notes every module it names."""

    def __init__(self, handle: Any, found: set[str]) -> None:
        super().__init__(handle)
        self.found = found

    def find_class(self, module: str, name: str) -> Any:
        top = _top(module)
        if top:
            self.found.add(top)
        target = super().find_class(module, name)
        if module.startswith("cloudpickle") and name in ("subimport", "dynamic_subimport"):
            found = self.found

            def noting(imported: str, *args: Any) -> Any:
                top = _top(imported)
                if top:
                    found.add(top)
                return target(imported, *args)

            return noting
        return target


def probe_version(folder: Path) -> list[str]:
    """The top-level modules the pickles in ``folder`` name as they load."""
    found: set[str] = set()
    for file in sorted(folder.rglob("*")):
        if file.suffix in PICKLES and file.is_file():
            with file.open("rb") as handle:
                _Recording(handle, found).load()
    return sorted(found)


def project_imports(project_dir: Path) -> list[str]:
    """The top-level modules the project's Python files import (not its own modules)."""
    own = {p.stem for p in project_dir.rglob("*.py")} | {
        p.name for p in project_dir.iterdir() if p.is_dir() and (p / "__init__.py").is_file()
    }
    found: set[str] = set()
    for file in sorted(project_dir.rglob("*.py")):
        if any(part.startswith(".") for part in file.relative_to(project_dir).parts):
            continue  # .venv and other hidden folders are not the project's code
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"), str(file))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = _top(name)
                if top and top not in own:
                    found.add(top)
    return sorted(found)


def modules_needed(folder: Path) -> list[str]:
    """:func:`probe_version` in a fresh interpreter (unpickling imports and runs code: not
    in this process, which has imported too much already to tell)."""
    done = subprocess.run(
        [sys.executable, "-m", "keel.deploy.imports", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        from keel.errors import ArtifactError

        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise ArtifactError(f"loading the model to find its libraries failed:\n{tail}")
    return list(json.loads(done.stdout))


if __name__ == "__main__":
    print(json.dumps(probe_version(Path(sys.argv[1]))))
