"""The OpenAPI document of a served model, and ``/docs`` served with no internet.

The request schemas are the JSON schemas of the same pydantic models that validate the
requests, so the document cannot drift from what the API accepts. ``/docs`` is Swagger UI 5
(which reads OpenAPI 3.1) from keel's own copy, served by the app itself
(:mod:`keel.serving.assets`).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI
    from pydantic import BaseModel

    from keel.serving.service import ModelService
    from keel.serving.spec import ResourceSpec

REF = "#/components/schemas/{model}"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["message"],
    "properties": {
        "message": {"type": "string", "description": "what went wrong, in one line"},
        "details": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "problem": {"type": "string"}},
            },
        },
        "request_id": {"type": "string"},
    },
}

ERRORS = {
    "400": "malformed body",
    "413": "body over api.max_body_mb",
    "415": "unsupported content type",
    "422": "invalid inputs (every bad field listed in details)",
    "500": "the model failed (the request id is in the body and in the log)",
    "503": "not ready, too many model calls hung past api.timeout_s, or recording backed up",
    "504": "the model did not answer within api.timeout_s (the request id is in the body)",
}


def _error_responses(*codes: str) -> dict[str, Any]:
    ref = {"$ref": "#/components/schemas/Error"}
    return {
        code: {"description": ERRORS[code], "content": {"application/json": {"schema": ref}}}
        for code in codes
    }


def _ok(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "200": {
            "description": description,
            "content": {"application/json": {"schema": schema or {}}},
        }
    }


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {"Error": ERROR_SCHEMA}

    def add(self, model: type[BaseModel]) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template=REF)
        for name, sub in schema.pop("$defs", {}).items():
            self.components[name] = sub
        self.components[model.__name__] = schema
        return {"$ref": REF.format(model=model.__name__)}


def _query_parameters(model: type[BaseModel] | None) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        param: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {k: v for k, v in prop.items() if k not in ("title", "description")},
        }
        if prop.get("type") == "array":
            param["style"], param["explode"] = "form", True
        if prop.get("description"):
            param["description"] = prop["description"]
        params.append(param)
    return params


def _resource_paths(
    resource: ResourceSpec, base: str, schemas: _Schemas
) -> dict[str, dict[str, Any]]:
    path = f"{base}/{resource.name}"
    model = resource.input_model
    body_schema = schemas.add(model) if model is not None else {"type": "object"}
    summary = resource.description or f"{resource.name} ({resource.kind} resource)"
    if resource.kind == "query":
        return {
            path: {
                "get": {
                    "summary": summary,
                    "operationId": f"get_{resource.name}",
                    "parameters": _query_parameters(model),
                    "responses": {
                        **_ok("the prediction"),
                        **_error_responses("422", "500", "503", "504"),
                    },
                },
                "post": {
                    "summary": summary,
                    "operationId": f"post_{resource.name}",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": body_schema}},
                    },
                    "responses": {
                        **_ok("the prediction"),
                        **_error_responses("400", "413", "415", "422", "500", "503", "504"),
                    },
                },
            }
        }
    if resource.kind == "id":
        assert resource.id is not None
        id_param = {
            "name": resource.id.name,
            "in": "path",
            "required": True,
            "schema": {"type": resource.id.type},
        }
        return {
            f"{path}/{{{resource.id.name}}}": {
                "get": {
                    "summary": summary,
                    "operationId": f"get_{resource.name}_by_id",
                    "parameters": [id_param, *_query_parameters(model)],
                    "responses": {
                        **_ok("the prediction"),
                        **_error_responses("422", "500", "503", "504"),
                    },
                },
                "post": {
                    "summary": summary,
                    "operationId": f"post_{resource.name}_by_id",
                    "parameters": [id_param],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": body_schema}},
                    },
                    "responses": {
                        **_ok("the prediction"),
                        **_error_responses("400", "413", "415", "422", "500", "503", "504"),
                    },
                },
            }
        }
    form: dict[str, Any] = {
        "type": "object",
        "required": [resource.file],
        "properties": {resource.file: {"type": "string", "format": "binary"}},
    }
    if model is not None:
        inline = copy.deepcopy(model.model_json_schema())
        form["properties"].update(inline.get("properties", {}))
        form["required"] += inline.get("required", [])
    return {
        path: {
            "post": {
                "summary": summary,
                "operationId": f"upload_{resource.name}",
                "requestBody": {
                    "required": True,
                    "content": {"multipart/form-data": {"schema": form}},
                },
                "responses": {
                    **_ok("the prediction"),
                    **_error_responses("400", "413", "415", "422", "500", "503", "504"),
                },
            }
        }
    }


def _invocations(service: ModelService, schemas: _Schemas) -> dict[str, Any]:
    resource = service.spec.invocations_resource
    model = resource.input_model if resource is not None else None
    row = schemas.add(model) if model is not None else {"type": "object"}
    rows = {"type": "array", "items": row}
    body = {
        "oneOf": [
            row,
            {"type": "object", "required": ["instances"], "properties": {"instances": rows}},
            {
                "type": "object",
                "required": ["dataframe_split"],
                "properties": {
                    "dataframe_split": {
                        "type": "object",
                        "properties": {
                            "columns": {"type": "array", "items": {"type": "string"}},
                            "data": {"type": "array", "items": {"type": "array"}},
                        },
                    }
                },
            },
            {
                "type": "object",
                "required": ["dataframe_records"],
                "properties": {"dataframe_records": rows},
            },
            {"type": "object", "required": ["inputs"], "properties": {"inputs": {}}},
        ]
    }
    answer = {
        "oneOf": [
            {
                "type": "object",
                "properties": {
                    "metadata": {
                        "type": "object",
                        "properties": {
                            "model_version": {},
                            "keel_version": {"type": "string"},
                            "timestamp": {"type": "number"},
                        },
                    },
                    "result": {},
                },
            },
            {"type": "object", "properties": {"predictions": {"type": "array"}}},
        ]
    }
    return {
        "post": {
            "summary": "Invoke the model (container contract; MLflow request forms too)",
            "description": (
                "One call: a JSON object of inputs, answered with {metadata, result}. A batch: "
                "{instances: [...]}, MLflow's dataframe_split / dataframe_records / inputs, a "
                "JSON array, or text/csv, answered with {predictions: [...]}."
            ),
            "operationId": "invocations",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": body}, "text/csv": {"schema": {}}},
            },
            "responses": {
                **_ok("the result, or the predictions of a batch", answer),
                **_error_responses("400", "413", "415", "422", "500", "503", "504"),
            },
        }
    }


def _simple(summary: str, operation: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "get": {"summary": summary, "operationId": operation, "responses": _ok(summary, schema)}
    }


def openapi_document(service: ModelService) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``service``'s API."""
    schemas = _Schemas()
    paths: dict[str, Any] = {}
    for resource in service.spec.resources:
        paths.update(_resource_paths(resource, service.base_path, schemas))
    paths["/invocations"] = _invocations(service, schemas)
    paths["/ping"] = _simple("200 when the model is ready to predict", "ping")
    paths["/execution-parameters"] = _simple("batch transform parameters", "execution_parameters")
    paths["/health"] = _simple("liveness: the process answers", "health")
    paths["/ready"] = _simple("readiness: the model is loaded and set up", "ready")
    paths["/metadata"] = _simple("the model version served", "metadata")
    paths["/metrics"] = {
        "get": {
            "summary": "Prometheus metrics",
            "operationId": "metrics",
            "responses": {"200": {"description": "exposition text", "content": {"text/plain": {}}}},
        }
    }
    description = service.spec.description or (
        f"Predictions of model {service.model} version {service.version}"
        + (f" (label {service.label})" if service.label else "")
        + ", served by keel."
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{service.api_name} prediction API",
            "version": service.label or str(service.version),
            "description": description,
        },
        "paths": paths,
        "components": {"schemas": schemas.components},
    }


def add_docs(app: FastAPI, document: dict[str, Any]) -> None:
    """``/openapi.json`` and ``/docs`` (Swagger UI 5 from keel's own files, compressed and
    cached: see :mod:`keel.serving.assets`)."""
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    from keel.serving.assets import swagger_files, swagger_page
    from keel.serving.http import dumps

    encoded = dumps(document)

    async def openapi_json(request: Any) -> Any:
        from starlette.responses import Response

        return Response(encoded, media_type="application/json")

    async def docs(request: Any) -> HTMLResponse:
        return swagger_page(document["info"]["title"])

    app.router.routes.extend(
        [
            Route("/openapi.json", openapi_json, methods=["GET"]),
            Route("/docs", docs, methods=["GET"]),
            swagger_files().route(),
        ]
    )
