"""ML Launchpad's ``mllaunchpad.cli``: its command line is keel's.

``python -m keel.compat.launchpad -c my_cfg.yml train`` (ML Launchpad's
``python -m mllaunchpad -c my_cfg.yml train``) runs ``keel -c my_cfg.yml train``: the
verbs ``train``, ``retest``, ``predict``, ``api`` and ``generate-raml`` and their
abbreviations are keel's commands (see :mod:`keel.cli.launchpad`).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Run the ``keel`` command with ``argv`` (default: the process's arguments)."""
    from keel.cli import main as keel_main

    keel_main(argv)
