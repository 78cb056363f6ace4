"""The REST API under ``/api/v1``: one router per kind of record, each a thin caller of
:class:`keel.Client`. Every route declares the role it needs (see :mod:`keel.server.deps`)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
