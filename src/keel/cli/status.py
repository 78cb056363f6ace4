"""What a slow command is doing, on stderr, while it works: ``⠋ training… 0:00:04``.

Only a person watching sees it: it is drawn when stderr is a terminal and erased when the
work ends, so piped output, ``--json`` and logs are exactly what they were. Commands that can
take over a second (train, retest, predict, batch-predict, generate-dataset, serve's start-up)
wrap their work in :func:`status`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: set (to anything) to never draw the status, e.g. in a terminal recording
NO_STATUS_ENV = "KEEL_NO_STATUS"


def shows_status() -> bool:
    """Whether :func:`status` draws anything here: stderr is a terminal and not turned off."""
    return sys.stderr.isatty() and not os.environ.get(NO_STATUS_ENV)


@contextmanager
def status(message: str) -> Iterator[Callable[[str], None]]:
    """Show a spinner with ``message`` and the time elapsed on stderr while the block runs;
    the block gets a function that replaces the message (a long step's stages).

    Example:
        >>> with status("training"):       # doctest: +SKIP
        ...     train_model(config)
    """
    if not shows_status():
        yield lambda _text: None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}…"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        # what the model prints goes above the spinner; stdout is left alone when it is a
        # file or a pipe (it must hold exactly what the command prints)
        redirect_stdout=sys.stdout.isatty(),
        redirect_stderr=True,
    ) as progress:
        task = progress.add_task(message, total=None)
        yield lambda text: progress.update(task, description=text)
