"""Checking a prediction's inputs against the inputs keel.yml declares (``api.resources[].inputs``).

One check for every way in: the prediction API answers a violation 422 (:mod:`keel.serving.app`)
and ``keel predict`` prints the same message as one line, so a field the server refuses is
refused by the CLI in the same words. Only pydantic is imported here (no web framework), so
the CLI stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput

if TYPE_CHECKING:
    from pydantic import BaseModel

    from keel.config import Config


class InvalidInputs(InvalidInput):
    """Inputs that break the declared schema; ``problems`` lists each bad field.

    Attributes:
        problems: ``[{"field": "petal_width", "problem": "Field required"}, …]``.
    """

    def __init__(self, problems: list[dict[str, str]]) -> None:
        super().__init__(describe_problems(problems))
        self.problems = problems


def field_problems(errors: list[Any], prefix: str = "") -> list[dict[str, str]]:
    """pydantic errors as ``[{"field": "instances[2].x", "problem": "…"}]``."""
    problems = []
    for error in errors:
        field = prefix
        for part in error["loc"]:
            if isinstance(part, int):
                field += f"[{part}]"
            else:
                field += f".{part}" if field else str(part)
        problems.append({"field": field or "(body)", "problem": error["msg"]})
    return problems


def describe_problems(problems: list[dict[str, str]]) -> str:
    """One line: ``invalid input petal_width: Field required``; with several, the count and
    the first three (every one is in ``details`` of the API's answer)."""
    count = len(problems)
    if count == 1:
        only = problems[0]
        return f"invalid input {only['field']}: {only['problem']}"
    shown = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:3])
    return f"{count} invalid inputs: {shown}" + ("; …" if count > 3 else "")


def check_inputs(model: type[BaseModel] | None, raw: Any, prefix: str = "") -> Any:
    """``raw`` checked against ``model`` (None: anything goes), as the model receives it:
    declared defaults filled in and values converted (``"5.1"`` → 5.1).

    Raises:
        InvalidInputs: ``raw`` is not a JSON object, or a field is missing, unknown or wrong.
    """
    if model is None:
        return raw
    if not isinstance(raw, dict):
        raise InvalidInputs([{"field": prefix or "(body)", "problem": "expected a JSON object"}])
    from pydantic import ValidationError

    try:
        return model.model_validate(raw).model_dump()
    except ValidationError as exc:
        raise InvalidInputs(field_problems(exc.errors(include_url=False), prefix)) from None


def invocation_model(config: Config) -> type[BaseModel] | None:
    """The input model ``/invocations`` checks one input against (the first query resource
    of keel.yml's ``api:``); None when the config declares no inputs."""
    from keel.serving.service import api_spec

    resource = api_spec(config).invocations_resource
    return resource.input_model if resource is not None else None
