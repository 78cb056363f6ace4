"""``python -m keel.compat.launchpad -c cfg.yml train``, as ``python -m mllaunchpad`` was."""

from keel.compat.launchpad.cli import main

main()
