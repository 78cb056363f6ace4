"""The fuzz suites' one fixture-level concern: schemathesis' lazy schemas on this pytest."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _schemathesis_node_id(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32's ``from_fixture`` tests read and write ``node._nodeid``, which
    pytest 9.2 no longer has (its ``nodeid`` is a property over ``_id``). A plain attribute
    with the same value lets them run; the subtest of each operation still names it."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
