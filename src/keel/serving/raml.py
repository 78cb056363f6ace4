"""RAML API definitions (ML Launchpad's ``api: {raml: my_api.raml}``): read and written.

This module owns the mapping between a RAML 0.8 or 1.0 file and keel's resources
(:class:`~keel.serving.spec.ResourceSpec`), both ways:

- :func:`read_raml` turns a file into resources with the same checks ML Launchpad made:
  ``/name`` with ``get``/``post`` and ``queryParameters`` is a query resource;
  ``/name/{param}`` (nested under ``/name`` or written in one key) is an id resource whose
  URI parameter reaches the model among the inputs (``args_dict[param]``), with its own
  query parameters; a ``post`` whose ``body`` is ``multipart/form-data`` with a parameter of
  ``type: file`` is a file resource. Parameters keep ``type`` (number, integer, string,
  boolean, ``number[]`` or ``repeat: true`` for several values), ``required``, ``enum``,
  ``default``, ``example``, ``minimum``/``maximum``, ``minLength``/``maxLength`` and
  ``description``. Documentation keys (``title``, ``baseUri``, ``documentation``,
  ``securitySchemes``, ``responses``, ``schema`` …) are read and ignored, as ML Launchpad did.
  A construct keel cannot serve (``put``, ``traits``, ``!include``, a ``date`` parameter …) is
  one :class:`~keel.errors.ConfigError` naming the file, line and construct.
- :func:`to_raml` writes RAML 0.8 for resources (``keel api schema --raml``), and
  :func:`raml_from_frame` for a data source's columns (ML Launchpad's ``generate-raml``).

RAML's ``version`` (``v0``) is the API's major version: it must agree with the config's
(``api.version`` or the model label's major), as ML Launchpad required.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.config.yamlfile import shown
from keel.errors import ConfigError
from keel.serving.spec import SCALARS, ResourceSpec

if TYPE_CHECKING:
    import pandas as pd

RAML_HEADER = re.compile(r"^#%RAML (0\.8|1\.0)\b")
MAX_VALUES = 100_000
MAX_DEPTH = 64

# Keys read for documentation only (ML Launchpad ignored them too).
_ROOT_IGNORED = {
    "title",
    "baseUri",
    "baseUriParameters",
    "version",
    "documentation",
    "securitySchemes",
    "securedBy",
    "schemas",
    "types",
    "mediaType",
    "protocols",
    "description",
    "displayName",
    "annotationTypes",
}
_RESOURCE_IGNORED = {"description", "displayName", "securedBy", "uriParameters"}
_METHOD_IGNORED = {
    "description",
    "displayName",
    "responses",
    "headers",
    "securedBy",
    "protocols",
    "baseUriParameters",
}
_PARAM_KEYS = {
    "displayName",
    "type",
    "description",
    "example",
    "examples",
    "required",
    "enum",
    "default",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "repeat",
    "pattern",
    "items",
    "fileTypes",
}
_METHODS_SERVED = ("get", "post")
_METHODS_OTHER = ("put", "delete", "patch", "head", "options", "trace", "connect")
_REUSE = {
    "traits": "traits",
    "resourceTypes": "resource types",
    "uses": "libraries",
    "is": "traits",
    "type": "resource types",
}
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
_URI_PARAM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")

Loc = tuple[str, ...]


@dataclass
class RamlApi:
    """What a RAML file declares that keel serves."""

    path: Path
    raml_version: str  # "0.8" or "1.0"
    resources: list[ResourceSpec]
    version: str | None = None  # the API's major version as written ("v0"), if any
    title: str | None = None
    lines: dict[Loc, int] = field(default_factory=dict, repr=False)

    def where(self, loc: Loc = ()) -> str:
        """``tree.raml line 12`` for a key path (or its nearest written parent)."""
        for end in range(len(loc), 0, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return f"{shown(self.path)} line {line}"
        return shown(self.path)


def read_raml(path: str | Path) -> RamlApi:
    """Read the RAML file at ``path`` (errors name it and the line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"RAML file {shown(path)} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"RAML file {shown(path)} cannot be read: {exc}") from None
    return parse_raml(text, path)


def parse_raml(text: str, path: str | Path = "<raml>") -> RamlApi:
    """Parse RAML ``text``; ``path`` names it in messages."""
    path = Path(path)
    first = text.lstrip("\ufeff").split("\n", 1)[0].strip()
    header = RAML_HEADER.match(first)
    if header is None:
        raise ConfigError(
            f"{shown(path)} line 1: not a RAML file: the first line must be "
            "#%RAML 0.8 or #%RAML 1.0"
        )
    reader = _Reader(path, header.group(1))
    root = reader.load(text)
    return reader.api(root)


class _Reader:
    def __init__(self, path: Path, raml_version: str) -> None:
        self.path = path
        self.raml_version = raml_version
        self.lines: dict[Loc, int] = {}
        self.values = 0

    # --- YAML with line numbers -----------------------------------------------------------

    def fail(self, loc: Loc, message: str) -> ConfigError:
        where = RamlApi(self.path, self.raml_version, [], lines=self.lines).where(loc)
        what = _dotted(loc)
        return ConfigError(f"{where}: {what + ': ' if what else ''}{message}")

    def load(self, text: str) -> Any:
        import yaml

        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = f" line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(
                f"{shown(self.path)}{line}: malformed YAML: {exc.problem or exc.context}"
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{shown(self.path)}: malformed YAML: {exc}") from None
        if node is None:
            return {}
        self.constructor = yaml.SafeLoader("")
        return self.plain(node, (), 0)

    def plain(self, node: Any, loc: Loc, depth: int) -> Any:
        import yaml

        self.values += 1
        if self.values > MAX_VALUES or depth > MAX_DEPTH:
            raise ConfigError(f"{shown(self.path)}: too large or too deeply nested for an API")
        self.lines.setdefault(loc, node.start_mark.line + 1)
        tag = node.tag or ""
        if tag.startswith("!") and not tag.startswith("!!"):
            self.lines[loc] = node.start_mark.line + 1
            construct = "!include" if tag == "!include" else f"the tag {tag}"
            raise self.fail(
                loc, f"{construct} is not supported by keel: write the definition out in this file"
            )
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self.fail(loc, "a key must be plain text")
                key = str(key_node.value)
                self.lines[(*loc, key)] = key_node.start_mark.line + 1
                out[key] = self.plain(value_node, (*loc, key), depth + 1)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.plain(v, (*loc, str(i)), depth + 1) for i, v in enumerate(node.value)]
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise self.fail(
                loc, f"cannot read this value ({getattr(exc, 'problem', exc)})"
            ) from None

    # --- RAML → resources ----------------------------------------------------------------

    def api(self, root: Any) -> RamlApi:
        if not isinstance(root, dict):
            raise self.fail((), "expected a mapping of RAML keys (title, version, /resources)")
        found: list[tuple[ResourceSpec, Loc]] = []
        for key, value in root.items():
            loc = (key,)
            if key.startswith("/"):
                self.resource(value, [], key, loc, found)
            elif key in _REUSE:
                raise self.fail(loc, self.reuse(key))
            elif key in _ROOT_IGNORED or _is_annotation(key):
                continue
            else:
                raise self.fail(loc, f"unknown RAML key {shown(key)}")
        if not found:
            raise self.fail((), "no resource with a get or post method: keel has nothing to serve")
        seen: dict[tuple[str, bool], Loc] = {}
        for spec, loc in found:
            if spec.route_key in seen:
                raise self.fail(loc, f"the resource {spec.name!r} is declared twice")
            seen[spec.route_key] = loc
        version = root.get("version")
        title = root.get("title")
        return RamlApi(
            self.path,
            self.raml_version,
            [spec for spec, _ in found],
            None if version is None else str(version),
            None if title is None else str(title),
            self.lines,
        )

    def reuse(self, key: str) -> str:
        return (
            f"{_REUSE[key]} ({key}:) are not supported by keel: write the parameters out "
            "in each method"
        )

    def resource(
        self,
        node: Any,
        parents: list[str],
        key: str,
        loc: Loc,
        found: list[tuple[ResourceSpec, Loc]],
    ) -> None:
        segments = [*parents, *[s for s in key.split("/") if s]]
        if not key.strip("/"):
            raise self.fail(loc, "a resource needs a name (/name): keel serves /<api>/v<N>/name")
        node = {} if node is None else node
        if not isinstance(node, dict):
            raise self.fail(loc, "expected a mapping (get:, post:, nested /resources)")
        methods: dict[str, Any] = {}
        children: list[tuple[str, Any]] = []
        for sub, value in node.items():
            sub_loc = (*loc, sub)
            if sub.startswith("/"):
                children.append((sub, value))
            elif sub in _METHODS_SERVED:
                methods[sub] = {} if value is None else value
            elif sub in _METHODS_OTHER:
                raise self.fail(
                    sub_loc, f"the method {sub} is not served (keel serves get and post)"
                )
            elif sub in _REUSE:
                raise self.fail(sub_loc, self.reuse(sub))
            elif sub in _RESOURCE_IGNORED or _is_annotation(sub):
                continue
            else:
                raise self.fail(sub_loc, f"unknown RAML key {shown(sub)} in a resource")
        if methods:
            shape = self.shape(segments, loc)
            for method, value in methods.items():
                if not isinstance(value, dict):
                    raise self.fail(
                        (*loc, method), "expected a mapping (queryParameters:, body: …)"
                    )
            if len(shape) == 1:
                found.append((self.plain_resource(shape[0], methods, loc), loc))
            else:
                found.append((self.id_resource(shape[0], shape[1], methods, node, loc), loc))
        for sub, value in children:
            self.resource(value, segments, sub, (*loc, sub), found)

    def shape(self, segments: list[str], loc: Loc) -> list[str]:
        """``[name]`` or ``[name, param]``: the two paths keel serves."""
        path = "/" + "/".join(segments)
        ok = (
            len(segments) in (1, 2)
            and _SEGMENT.match(segments[0]) is not None
            and (len(segments) == 1 or _URI_PARAM.match(segments[1]) is not None)
        )
        if not ok:
            raise self.fail(
                loc,
                f"the path {path} is not served: keel serves /name and /name/{{param}} "
                "(name of letters, digits, '_' or '-')",
            )
        if len(segments) == 1:
            return segments
        match = _URI_PARAM.match(segments[1])
        assert match is not None
        return [segments[0], match.group(1)]

    def method_inputs(self, method: dict[str, Any], loc: Loc) -> tuple[dict[str, Any], str | None]:
        """A method's inputs (query and form parameters) and its file field, if any."""
        inputs: dict[str, Any] = {}
        file_field = None
        for key, value in method.items():
            key_loc = (*loc, key)
            if key == "queryParameters":
                inputs.update(self.parameters(value, key_loc))
            elif key == "body":
                body_inputs, file_field = self.body(value, key_loc)
                for name in body_inputs:
                    if name in inputs:
                        raise self.fail(key_loc, f"the parameter {name!r} is declared twice")
                inputs.update(body_inputs)
            elif key in _REUSE:
                raise self.fail(key_loc, self.reuse(key))
            elif key == "queryString":
                raise self.fail(key_loc, "queryString is not supported: use queryParameters")
            elif key in _METHOD_IGNORED or _is_annotation(key):
                continue
            else:
                raise self.fail(key_loc, f"unknown RAML key {shown(key)} in a method")
        return inputs, file_field

    def body(self, node: Any, loc: Loc) -> tuple[dict[str, Any], str | None]:
        if not isinstance(node, dict):
            raise self.fail(loc, "expected media types (multipart/form-data:, application/json:)")
        inputs: dict[str, Any] = {}
        file_field = None
        for media, value in node.items():
            media_loc = (*loc, media)
            if media == "application/json":
                continue  # schema and example: documentation (the inputs are checked anyway)
            if media != "multipart/form-data":
                raise self.fail(
                    media_loc,
                    f"a {media} body is not served: keel takes application/json or "
                    "multipart/form-data (a file upload)",
                )
            value = value or {}
            if not isinstance(value, dict):
                raise self.fail(media_loc, "expected formParameters: or properties:")
            for key, params in value.items():
                key_loc = (*media_loc, key)
                if key not in ("formParameters", "properties"):
                    if key in ("description", "example", "schema") or _is_annotation(key):
                        continue
                    raise self.fail(key_loc, f"unknown RAML key {shown(key)} in a body")
                if not isinstance(params, dict):
                    raise self.fail(key_loc, "expected a mapping of parameters")
                for name, param in params.items():
                    if isinstance(param, dict) and param.get("type") == "file":
                        if file_field is not None:
                            raise self.fail(
                                (*key_loc, name), "keel takes one file per upload resource"
                            )
                        self.check_keys(param, (*key_loc, name))
                        file_field = name
                    else:
                        inputs.update(self.parameters({name: param}, key_loc))
        return inputs, file_field

    def parameters(self, node: Any, loc: Loc) -> dict[str, Any]:
        if node is None:
            return {}
        if not isinstance(node, dict):
            raise self.fail(loc, "expected a mapping of parameters")
        return {name: self.parameter(spec, (*loc, name)) for name, spec in node.items()}

    def check_keys(self, spec: dict[str, Any], loc: Loc) -> None:
        for key in spec:
            if key not in _PARAM_KEYS and not _is_annotation(key):
                raise self.fail((*loc, key), f"unknown RAML key {shown(key)} in a parameter")

    def parameter(self, spec: Any, loc: Loc) -> dict[str, Any]:
        if spec is None:
            spec = {}
        if isinstance(spec, str):  # RAML 1.0: "name: number"
            spec = {"type": spec}
        if not isinstance(spec, dict):
            raise self.fail(loc, "expected a mapping (type:, required:, …)")
        self.check_keys(spec, loc)
        kind = str(spec.get("type", "string"))
        scalar = kind[:-2] if kind.endswith("[]") else kind
        if kind == "array":
            scalar = str(spec.get("items", "string"))
        if scalar not in SCALARS:
            where = (*loc, "type") if "type" in spec else loc
            if scalar == "file":
                raise self.fail(where, "a file parameter belongs in a multipart/form-data body")
            raise self.fail(
                where,
                f"the type {shown(kind)} is not served: keel checks number, integer, string, "
                "boolean and arrays of them (number[] or repeat: true)",
            )
        is_array = kind.endswith("[]") or kind == "array" or spec.get("repeat") is True
        out: dict[str, Any] = {"type": f"{scalar}[]" if is_array else scalar}
        # RAML 0.8 parameters are optional unless they say otherwise; 1.0's are required.
        out["required"] = bool(spec.get("required", self.raml_version == "1.0"))
        if "default" in spec:
            out["default"] = spec["default"]
        for raml_key, keel_key in (
            ("enum", "enum"),
            ("example", "example"),
            ("description", "description"),
        ):
            if spec.get(raml_key) is not None:
                out[keel_key] = spec[raml_key]
        numeric = scalar in ("number", "integer")
        bounds = ("minimum", "maximum") if numeric else ("minLength", "maxLength")
        for raml_key, keel_key in zip(bounds, ("min", "max"), strict=True):
            if spec.get(raml_key) is not None:
                out[keel_key] = spec[raml_key]
        for raml_key in ("minimum", "maximum", "minLength", "maxLength"):
            if raml_key in spec and raml_key not in bounds:
                raise self.fail(
                    (*loc, raml_key), f"{raml_key} does not apply to a {scalar} parameter"
                )
        return out

    def plain_resource(self, name: str, methods: dict[str, Any], loc: Loc) -> ResourceSpec:
        per_method = {
            method: self.method_inputs(value, (*loc, method)) for method, value in methods.items()
        }
        files = {m: f for m, (_, f) in per_method.items() if f is not None}
        if files:
            if "get" in per_method:
                raise self.fail(
                    (*loc, "get"),
                    "a file upload and a get on the same resource are not served: "
                    "give the upload its own resource",
                )
            inputs, file_field = per_method["post"]
            return self.build(
                {"name": name, "kind": "file", "file": file_field, "inputs": inputs}, loc
            )
        inputs = self.same_inputs(per_method, loc)
        description = next(
            (str(m["description"]) for m in methods.values() if m.get("description")), ""
        )
        return self.build(
            {"name": name, "kind": "query", "inputs": inputs, "description": description}, loc
        )

    def id_resource(
        self, name: str, param: str, methods: dict[str, Any], node: dict[str, Any], loc: Loc
    ) -> ResourceSpec:
        per_method = {
            method: self.method_inputs(value, (*loc, method)) for method, value in methods.items()
        }
        for method, (_, file_field) in per_method.items():
            if file_field is not None:
                raise self.fail(
                    (*loc, method, "body"), "a file upload on a /name/{param} path is not served"
                )
        inputs = self.same_inputs(per_method, loc)
        if param in inputs:
            raise self.fail(
                loc, f"the URI parameter {param!r} must not have the name of a query parameter"
            )
        id_type = "string"
        uri = (node.get("uriParameters") or {}).get(param)
        if isinstance(uri, dict) and uri.get("type") is not None:
            id_type = str(uri["type"])
            if id_type not in ("string", "integer"):
                raise self.fail(
                    (*loc, "uriParameters", param, "type"),
                    f"a URI parameter of type {shown(id_type)} is not served: "
                    "use string or integer",
                )
        description = next(
            (str(m["description"]) for m in methods.values() if m.get("description")), ""
        )
        return self.build(
            {
                "name": name,
                "kind": "id",
                "id": {"name": param, "type": id_type},
                "inputs": inputs,
                "description": description,
            },
            loc,
        )

    def same_inputs(
        self, per_method: dict[str, tuple[dict[str, Any], str | None]], loc: Loc
    ) -> Any:
        declared = [inputs for inputs, _ in per_method.values()]
        if len(declared) == 2 and declared[0] and declared[1] and declared[0] != declared[1]:
            raise self.fail(
                (*loc, "post"),
                "get and post declare different parameters: keel serves one set of "
                "parameters per resource (by get and post alike)",
            )
        return next((d for d in declared if d), {})

    def build(self, data: dict[str, Any], loc: Loc) -> ResourceSpec:
        from pydantic import ValidationError

        try:
            return ResourceSpec.model_validate(data)
        except ValidationError as exc:
            error = exc.errors(include_input=False, include_url=False)[0]
            message = str(error["msg"]).removeprefix("Value error, ")
            where = ".".join(str(p) for p in error["loc"] if not str(p)[:1].isupper())
            raise self.fail(loc, f"{where + ': ' if where else ''}{message}") from None


def _is_annotation(key: str) -> bool:
    return key.startswith("(") and key.endswith(")")


def _dotted(loc: Loc) -> str:
    return ".".join(shown(part) for part in loc)


# --- writing ------------------------------------------------------------------------------


def to_raml(
    resources: Sequence[ResourceSpec],
    *,
    api_name: str,
    version: str = "v0",
    title: str | None = None,
    description: str = "",
) -> str:
    """RAML 0.8 text declaring ``resources`` (what :func:`read_raml` reads back as them).

    Query resources become ``/name: get: queryParameters``; id resources ``/name/{param}``
    (nested under ``/name``) with their query parameters; file resources ``/name: post:`` with a
    ``multipart/form-data`` body holding the file and the other form parameters. Array inputs
    are written ``repeat: true``; ``min``/``max`` become ``minimum``/``maximum`` (numbers) or
    ``minLength``/``maxLength`` (strings).

    Args:
        resources: the resources, e.g. ``api_spec(config).resources``.
        api_name: the API's name (the first part of the URL: ``/<api_name>/v0/…``).
        version: the API's major version as RAML writes it (``v0``; ``0`` is taken as ``v0``).
        title: the RAML title (default: ``<api_name> prediction API``).
        description: the text of the documentation section, if any.

    Returns:
        The RAML file's text, starting ``#%RAML 0.8``.
    """
    import yaml

    version = version if str(version).lower().startswith("v") else f"v{version}"
    doc: dict[str, Any] = {
        "title": title or f"{api_name} prediction API",
        "baseUri": f"https://{{host}}/{api_name}/{{version}}",
        "version": version,
    }
    if description:
        doc["documentation"] = [{"title": title or api_name, "content": description}]
    for resource in resources:
        node = doc.setdefault(f"/{resource.name}", {})
        params = {name: _raml_parameter(spec) for name, spec in (resource.inputs or {}).items()}
        method: dict[str, Any] = {}
        if resource.description:
            method["description"] = resource.description
        if resource.kind == "query":
            if params:
                method["queryParameters"] = params
            node["get"] = method
        elif resource.kind == "id":
            assert resource.id is not None
            if params:
                method["queryParameters"] = params
            sub = {"get": method}
            if resource.id.type != "string":
                sub["uriParameters"] = {resource.id.name: {"type": resource.id.type}}
            node[f"/{{{resource.id.name}}}"] = sub
        else:
            form = {**params, resource.file: {"type": "file", "required": True}}
            method["body"] = {"multipart/form-data": {"formParameters": form}}
            node["post"] = method
    # Methods before nested resources, as RAML is usually written.
    for key, node in doc.items():
        if key.startswith("/"):
            doc[key] = dict(sorted(node.items(), key=lambda kv: kv[0].startswith("/")))
    body = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
    return "#%RAML 0.8\n---\n" + body


def _raml_parameter(spec: Any) -> dict[str, Any]:
    scalar, is_array = spec.scalar_type
    out: dict[str, Any] = {"type": scalar, "required": spec.is_required}
    if is_array:
        out["repeat"] = True
    if "default" in spec.model_fields_set:
        out["default"] = spec.default
    if spec.enum is not None:
        out["enum"] = list(spec.enum)
    if spec.example is not None:
        out["example"] = spec.example
    if spec.description:
        out["description"] = spec.description
    numeric = scalar in ("number", "integer")
    if not is_array:  # RAML 0.8 has no bounds on how many values a repeat takes
        low, high = ("minimum", "maximum") if numeric else ("minLength", "maxLength")
        if spec.min is not None:
            out[low] = spec.min if numeric else int(spec.min)
        if spec.max is not None:
            out[high] = spec.max if numeric else int(spec.max)
    return out


def raml_from_frame(
    frame: pd.DataFrame,
    *,
    api_name: str,
    version: str = "v0",
    resource: str = "mythings",
    exclude: Sequence[str] = (),
) -> str:
    """RAML 0.8 for one query resource whose parameters are ``frame``'s columns.

    ML Launchpad's ``generate-raml DATASOURCE``: each column's dtype gives the parameter's
    type, its first value the example, a string column with few repeating values an enum
    (as ``keel api schema --from-source`` does). Leave the target column out with ``exclude``.
    """
    from keel.serving.schema import inputs_from_frame

    inputs = inputs_from_frame(frame, list(exclude))
    spec = ResourceSpec.model_validate({"name": resource, "kind": "query", "inputs": inputs})
    return to_raml([spec], api_name=api_name, version=version)
