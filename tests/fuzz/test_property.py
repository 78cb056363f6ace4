"""The fuzz property itself: :func:`fuzz.fuzzing.call_and_check` passes a good answer and
fails each kind of bad one (a 5xx, a refusal that is not JSON or has no message, a call that
hangs on the event loop or in a worker thread), so a green fuzz run means what it says."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

from fuzz.fuzzing import Tally, call_and_check, schemathesis_config

HANG_S = 1.0


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/ok")
    async def ok() -> JSONResponse:
        return JSONResponse({"fine": True})

    @app.get("/refused")
    async def refused() -> JSONResponse:
        return JSONResponse({"message": "no such thing"}, 404)

    @app.get("/server-error")
    async def server_error() -> JSONResponse:
        return JSONResponse({"message": "oops"}, 500)

    @app.get("/text-refusal")
    async def text_refusal() -> PlainTextResponse:
        return PlainTextResponse("Not Found", 404)

    @app.get("/no-message")
    async def no_message() -> JSONResponse:
        return JSONResponse({"detail": "FastAPI's own shape"}, 422)

    @app.get("/hangs-on-the-loop")
    async def hangs_on_the_loop() -> JSONResponse:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    @app.get("/hangs-in-a-thread")
    def hangs_in_a_thread() -> JSONResponse:
        time.sleep(HANG_S * 4)  # Starlette waits for a sync endpoint; cancelling cannot stop it
        return JSONResponse({"late": True})

    return app


@pytest.fixture(scope="module")
def schema() -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", _app(), config=schemathesis_config())


def _check(schema: schemathesis.BaseSchema, path: str, **kwargs: Any) -> Any:
    return call_and_check(schema[path]["GET"].Case(), **kwargs)


def test_a_success_and_a_json_refusal_with_a_message_pass(schema: schemathesis.BaseSchema) -> None:
    tally = Tally()
    assert _check(schema, "/ok", tally=tally).status_code == 200
    assert _check(schema, "/refused", tally=tally).status_code == 404
    assert tally.answered(404) == {"GET /refused"} and "GET /ok: 200×1" in tally.summary()


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/server-error", "answered 500"),
        ("/text-refusal", "not JSON"),
        ("/no-message", "without a message"),
    ],
)
def test_a_bad_answer_fails(schema: schemathesis.BaseSchema, path: str, words: str) -> None:
    with pytest.raises(AssertionError, match=words):
        _check(schema, path)


@pytest.mark.parametrize("path", ["/hangs-on-the-loop", "/hangs-in-a-thread"])
def test_a_hang_fails_within_its_bound(schema: schemathesis.BaseSchema, path: str) -> None:
    started = time.monotonic()
    with pytest.raises(AssertionError, match="hung: no answer within"):
        _check(schema, path, timeout_s=HANG_S)
    assert time.monotonic() - started < HANG_S * 3
