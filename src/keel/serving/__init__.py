"""The prediction API: one registered model version served over HTTP.

- :mod:`keel.serving.spec`: the ``api:`` section (resources, inputs, batching, recording).
- :mod:`keel.serving.service`: :class:`ModelService`, the loaded model behind the API.
- :mod:`keel.serving.app`: the ASGI app (FastAPI) and the uvicorn worker factory.
- :mod:`keel.serving.batching`: adaptive micro-batching.
- :mod:`keel.serving.recorder`: invocation records written off the request path.
- :mod:`keel.serving.openapi`, :mod:`keel.serving.metrics`, :mod:`keel.serving.http`: the
  OpenAPI document, Prometheus metrics, and bodies/limits/error shapes.
- :mod:`keel.serving.server`: running it under uvicorn (``keel serve``).
- :mod:`keel.serving.schema`: an ``api:`` inputs block from a data source's columns.
"""
