"""The OpenAPI document: the job models' own pydantic schemas, with the vendors' examples."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.examples import JSON_EXAMPLES, NDJSON_EXAMPLES
from tasks.models import CallbackJob, CommentLead, PoolUpdateJob, PozvonimCallJob

REF = "#/components/schemas/{model}"
# What one line (one array item) of each kind's input is.
LINE_MODELS: dict[str, list[type[BaseModel]]] = {
    "callback": [CallbackJob, PozvonimCallJob],
    "comment": [CommentLead],
    "pool-update": [PoolUpdateJob],
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def line_schema(kind: str) -> dict[str, Any]:
    models = LINE_MODELS[kind]
    return _ref(models[0]) if len(models) == 1 else {"anyOf": [_ref(m) for m in models]}


def request_body(kind: str) -> dict[str, Any]:
    """One object, an array of them, or NDJSON: the lines ``ctq enqueue KIND`` takes."""
    line = line_schema(kind)
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"anyOf": [line, {"type": "array", "items": line, "minItems": 1}]},
                "examples": JSON_EXAMPLES[kind],
            },
            "application/x-ndjson": {
                "schema": {"type": "string", "description": f"one {kind} a line"},
                "example": NDJSON_EXAMPLES[kind],
            },
        },
    }


def model_schemas() -> dict[str, Any]:
    """The job models' schemas (and the models they use), by name."""
    models = {m for line in LINE_MODELS.values() for m in line}
    pairs = [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)]
    _, top = models_json_schema(pairs, ref_template=REF)  # type: ignore[arg-type]
    defs: dict[str, Any] = top.get("$defs", {})
    return defs


def install(app: FastAPI) -> None:
    """Build the document once, with the job models added to its components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            document.setdefault("components", {}).setdefault("schemas", {}).update(model_schemas())
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
