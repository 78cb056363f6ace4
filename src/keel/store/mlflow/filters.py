"""keel's MongoDB-style run queries split into what an MLflow server can answer and the rest.

MLflow's ``search_runs`` takes a filter string: comparisons joined by ``AND`` (no ``OR``, no
``NOT``), on metrics (numbers), params and tags (strings: ``=``, ``!=``, ``LIKE``,
``ILIKE``, ``IS [NOT] NULL``) and a few attributes, plus a list of experiment ids. So a query
is taken as the AND of its conjuncts (``$and`` flattened, :func:`keel.store.matching.conjuncts`)
and each conjunct is

* **pushed exactly**: MLflow's answer is keel's answer, the conjunct is not checked again;
* **pushed as a superset**: MLflow narrows the search (a ``LIKE`` for a ``$regex`` prefix,
  ``= 'true'`` for a boolean), the conjunct stays in the remainder;
* **kept** for the remainder: ``$or``, ``$nor``, ``$not``, ``$ne``/``$in``/``$nin`` on params,
  numbers compared with params, ``$exists`` on metrics, …;
* or, for ``exp.*`` and ``experiment_id``, **evaluated on the experiments** first, which
  picks the experiment ids the search covers.

The remainder is evaluated in Python (:mod:`keel.store.matching`) on the runs MLflow returns.
Invariant (checked by hypothesis in the tests): ``pushed AND remainder`` ≡ the query.

A sort is pushed (``order_by``, with the run id as the last key, as keel orders) only when
nothing remains to filter client-side and every sort field has the same order in MLflow:
``created_at``, ``end_time``, ``name``, ``id`` and ``metrics.*``. MLflow sorts a NaN metric
before a missing one where keel mixes them (both are "no number", sorted last by id), so a
page of a pushed metric sort that reaches a run without a number is redone client-side.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from keel.entities import RUN_STATUSES
from keel.store.matching import conjuncts, sort_item
from keel.store.mlflow.codec import STATUS_TO_MLFLOW

_SAFE_KEY = re.compile(r"^[A-Za-z0-9_\-. /:]{1,250}$")
_RESERVED_TAGS = ("keel.", "mlflow.")
_OPS = {"$eq": "=", "$ne": "!=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_ORDER = ("$gt", "$gte", "$lt", "$lte")
_REGEX_META = set(".^$*+?{}[]\\|()")
_FLOAT_MAX = sys.float_info.max


@dataclass
class RunPushdown:
    """How a run query (and sort) is answered by MLflow and by keel.

    Attributes:
        clauses: MLflow filter clauses, ANDed.
        experiment_query: conjuncts about the run's experiment, as a query on experiments
            (None: every experiment of the project).
        remainder: conjuncts to check in Python on the fetched runs (None: nothing).
        order_by: MLflow's ``order_by`` when the sort is pushed (None: sort client-side).
        sort_metrics: metric keys of a pushed sort (see the module docstring).
    """

    clauses: list[str] = field(default_factory=list)
    experiment_query: dict[str, Any] | None = None
    remainder: dict[str, Any] | None = None
    order_by: list[str] | None = None
    sort_metrics: tuple[str, ...] = ()

    @property
    def filter(self) -> str:
        """The MLflow filter string ("" when nothing is pushed)."""
        return " AND ".join(self.clauses)

    @property
    def exact(self) -> bool:
        """Whether MLflow's answer needs no client-side filtering."""
        return self.remainder is None


def push_run_query(query: Mapping[str, Any] | None, sort: Sequence[Any] | None) -> RunPushdown:
    """Split a run query (already checked by :func:`keel.store.matching.compile_query`)."""
    push = RunPushdown()
    remainder: list[dict[str, Any]] = []
    experiment: list[dict[str, Any]] = []
    for conjunct in conjuncts(query):
        ((key, spec),) = conjunct.items()
        name = _strip_self(key)
        if key.startswith("$"):
            remainder.append(conjunct)
        elif name == "experiment_id":
            experiment.append({"id": spec})
        elif name.startswith("exp."):
            experiment.append({name[len("exp.") :]: spec})
        else:
            clauses, exact = push_condition(name, spec)
            push.clauses.extend(clauses)
            if not exact:
                remainder.append(conjunct)
    if experiment:
        push.experiment_query = experiment[0] if len(experiment) == 1 else {"$and": experiment}
    if remainder:
        push.remainder = remainder[0] if len(remainder) == 1 else {"$and": remainder}
    else:
        pushed_sort = push_run_sort(sort)
        if pushed_sort is not None:
            push.order_by, push.sort_metrics = pushed_sort
    return push


def _strip_self(name: str) -> str:
    while name.startswith("run.") and len(name) > len("run."):
        name = name[len("run.") :]
    return name


# --- one field ----------------------------------------------------------------------------


def push_condition(name: str, spec: Any) -> tuple[list[str], bool]:
    """(MLflow clauses, exact?) for ``{name: spec}`` on a run."""
    operations = _operations(spec)
    if operations is None:
        return [], False
    target = _target(name)
    if target is None:
        return [], False
    clauses: list[str] = []
    exact = True
    for op, operand, flags in operations:
        clause, op_exact = target(op, operand, flags)
        if clause is not None:
            clauses.append(clause)
        exact = exact and op_exact and clause is not None
    return clauses, exact


def _operations(spec: Any) -> list[tuple[str, Any, str]] | None:
    """The (operator, operand, regex flags) of a condition (None: not understood here)."""
    if isinstance(spec, re.Pattern):
        return [("$regex", spec.pattern, "i" if spec.flags & re.IGNORECASE else "")]
    if isinstance(spec, Mapping) and spec and all(str(k).startswith("$") for k in spec):
        out = []
        for op, operand in spec.items():
            if op == "$options":
                continue
            if op == "$regex":
                pattern = operand.pattern if isinstance(operand, re.Pattern) else operand
                flags = str(spec.get("$options", ""))
                if isinstance(operand, re.Pattern) and operand.flags & re.IGNORECASE:
                    flags += "i"
                out.append(("$regex", pattern, flags))
            else:
                out.append((op, operand, ""))
        return out
    return [("$eq", spec, "")]


Target = Any  # Callable[[str, Any, str], tuple[str | None, bool]]


def _target(name: str) -> Target | None:
    head, _, key = name.partition(".")
    if head in ("params", "tags") and key:
        if not _SAFE_KEY.match(key) or (head == "tags" and key.startswith(_RESERVED_TAGS)):
            return None
        ident = f"{head}.`{key}`"
        return lambda op, v, flags: _key_value(ident, op, v, flags)
    if head == "metrics" and key:
        if not _SAFE_KEY.match(key):
            return None
        ident = f"metrics.`{key}`"
        return lambda op, v, flags: _metric(ident, op, v)
    return _ATTRIBUTES.get(name)


def _key_value(ident: str, op: str, value: Any, flags: str) -> tuple[str | None, bool]:
    # MongoDB's meaning (keel.store.documents): "a" also matches a list holding "a", null
    # also a list holding null, and params.a.b also reaches into a dict under key "a". An
    # MLflow filter (no OR, text only) cannot say that exactly: $exists of a plain key is
    # pushed as it is; a string, or a regex's literal part, narrows by LIKE '%text%' (the
    # stored text of a plain value or of a list or dict holding it contains it, as long as
    # JSON writes the text unescaped), and keel checks the runs MLflow returns.
    if "." in ident.partition(".")[2]:
        return None, False
    if op == "$exists":
        return (f"{ident} IS NOT NULL" if value else f"{ident} IS NULL"), True
    if op == "$eq" and isinstance(value, str) and value and _json_plain(value):
        literal = _string(f"%{value}%")
        return (None, False) if literal is None else (f"{ident} LIKE {literal}", False)
    if op == "$regex" and isinstance(value, str) and _json_plain(value):
        return _like(ident, value.removeprefix("^"), flags), False
    return None, False


def _json_plain(text: str) -> bool:
    """Whether JSON writes ``text`` as it is (printable ASCII, no quote or backslash)."""
    return all(" " <= ch <= "~" and ch not in '"\\' for ch in text)


def _metric(ident: str, op: str, value: Any) -> tuple[str | None, bool]:
    if op not in ("$eq", *_ORDER):
        return None, False
    number = _number(value)
    if number is None:
        return None, False
    return f"{ident} {_OPS[op]} {number}", True


def _string_attribute(column: str, *, values: Mapping[str, str] | None = None) -> Target:
    def push(op: str, value: Any, flags: str) -> tuple[str | None, bool]:
        if op == "$regex" and values is None:
            return _like(column, value, flags), False
        if op not in ("$eq", "$ne") or not isinstance(value, str):
            return None, False
        text = value
        if values is not None:
            if value not in values:
                return None, False
            text = values[value]
        literal = _string(text)
        return (None, False) if literal is None else (f"{column} {_OPS[op]} {literal}", True)

    return push


def _number_attribute(column: str) -> Target:
    def push(op: str, value: Any, flags: str) -> tuple[str | None, bool]:
        if op not in ("$eq", *_ORDER):
            return None, False
        number = _number(value)
        return (None, False) if number is None else (f"{column} {_OPS[op]} {number}", True)

    return push


def _run_id(op: str, value: Any, flags: str) -> tuple[str | None, bool]:
    if op == "$eq" and isinstance(value, str):
        literal = _string(value)
        return (None, False) if literal is None else (f"attributes.run_id = {literal}", True)
    if op == "$in" and isinstance(value, list | tuple | set | frozenset) and value:
        literals = [_string(v) if isinstance(v, str) else None for v in value]
        if all(lit is not None for lit in literals):
            return f"attributes.run_id IN ({', '.join(sorted(set(literals)))})", True  # type: ignore[arg-type]
    return None, False


def _kind(op: str, value: Any, flags: str) -> tuple[str | None, bool]:
    # runs made outside keel have no keel.kind tag and are "tracking" runs
    if op == "$eq" and isinstance(value, str) and value != "tracking":
        literal = _string(value)
        if literal is not None:
            return f"tags.`keel.kind` = {literal}", True
    return None, False


def _parent(op: str, value: Any, flags: str) -> tuple[str | None, bool]:
    ident = "tags.`mlflow.parentRunId`"
    if op == "$exists" or (op == "$eq" and value is None):
        present = bool(value) if op == "$exists" else False
        return (f"{ident} IS NOT NULL" if present else f"{ident} IS NULL"), True
    if op == "$eq" and isinstance(value, str):
        literal = _string(value)
        if literal is not None:
            return f"{ident} = {literal}", True
    return None, False


_ATTRIBUTES: dict[str, Target] = {
    "id": _run_id,
    "name": _string_attribute("attributes.run_name"),
    "status": _string_attribute(
        "attributes.status", values={s: STATUS_TO_MLFLOW[s] for s in RUN_STATUSES}
    ),
    "created_at": _number_attribute("attributes.start_time"),
    "end_time": _number_attribute("attributes.end_time"),
    "kind": _kind,
    "parent_id": _parent,
}


# --- literals -----------------------------------------------------------------------------


def _string(text: str) -> str | None:
    """A quoted MLflow string literal (None when MLflow's parser cannot take it)."""
    if "\\" in text or "\n" in text or "\r" in text:
        return None
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    return None


def _number(value: Any) -> str | None:
    """An MLflow number literal (None for bools, NaN, ±inf and MLflow's stand-in for inf)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int):
        if abs(value) >= 2**53:
            return None
        return str(value)
    if not math.isfinite(value) or abs(value) >= _FLOAT_MAX:
        return None
    return repr(value).replace("e+", "E").replace("e-", "E-")


def _like(column: str, pattern: Any, flags: str) -> str | None:
    """A LIKE (or ILIKE) narrowing a ``$regex`` to the strings holding its literal part."""
    if not isinstance(pattern, str) or set(flags) - {"i"} or "|" in pattern:
        return None
    anchored = pattern.startswith("^")
    body = pattern[1:] if anchored else pattern
    literal = ""
    for ch in body:
        if ch in _REGEX_META:
            break
        literal += ch
    if body[len(literal) : len(literal) + 1] in ("?", "*", "{"):
        literal = literal[:-1]  # the last character is optional
    if not literal or "%" in literal or "_" in literal:
        return None
    if "i" in flags and not literal.isascii():
        return None  # SQL's ILIKE folds ASCII only: it would miss what re.I matches
    text = _string(f"{literal}%" if anchored else f"%{literal}%")
    if text is None:
        return None
    return f"{column} {'ILIKE' if 'i' in flags else 'LIKE'} {text}"


# --- sorting ------------------------------------------------------------------------------

_SORT_COLUMNS = {
    "created_at": "attributes.start_time",
    "end_time": "attributes.end_time",
    "name": "attributes.run_name",
    "id": "attributes.run_id",
}


def push_run_sort(sort: Sequence[Any] | None) -> tuple[list[str], tuple[str, ...]] | None:
    """(MLflow ``order_by``, metric keys) for a run sort, or None when MLflow orders it
    differently from keel."""
    order: list[str] = []
    metrics: list[str] = []
    seen: set[str] = set()
    for item in sort or [("created_at", -1)]:
        name, direction = sort_item(item)
        name = _strip_self(name)
        column = _SORT_COLUMNS.get(name)
        if column is None and name.startswith("metrics.") and _SAFE_KEY.match(name[8:]):
            column = f"metrics.`{name[8:]}`"
            metrics.append(name[8:])
        if column is None or column in seen:
            return None
        seen.add(column)
        order.append(f"{column} {'DESC' if direction < 0 else 'ASC'}")
    if "attributes.run_id" not in seen:
        order.append("attributes.run_id ASC")
    return order, tuple(metrics)
