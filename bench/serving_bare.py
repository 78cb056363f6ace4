"""The bare baseline of the serving benchmark: the model behind one Starlette route.

Run by uvicorn (``python -m uvicorn bench.serving_bare:app --workers N``) with
``BENCH_MODEL_PATH`` naming a cloudpickle file of a fitted scikit-learn model. ``POST
/invocations`` takes one JSON row and answers ``{"predictions": [...]}``; nothing else (no
validation, no recording): the least a Python server can do per request.
"""

from __future__ import annotations

import os

import cloudpickle
import pandas as pd
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

with open(os.environ["BENCH_MODEL_PATH"], "rb") as handle:
    model = cloudpickle.load(handle)


async def invocations(request: Request) -> JSONResponse:
    body = await request.json()
    pred = model.predict(pd.DataFrame([body])[FEATURES])
    return JSONResponse({"predictions": pred.tolist()})


app = Starlette(routes=[Route("/invocations", invocations, methods=["POST"])])
