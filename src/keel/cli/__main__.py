"""``python -m keel.cli``: the keel command."""

from keel.cli import main

main()
