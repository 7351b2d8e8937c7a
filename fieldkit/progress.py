"""Progress for long runs (imports, exports, the demo), shown on a terminal only.

When standard error is not a terminal (a pipe, a log, a test) nothing is drawn
and rich is never imported, so scripted output stays clean and quick.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator, TextIO

Update = Callable[[int, int], None]


@contextmanager
def progress(label: str, stream: TextIO | None = None) -> Iterator[Update | None]:
    """A callback ``update(done, total)`` drawing a bar on the terminal, or None when not on one."""
    stream = stream or sys.stderr
    if not stream.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(file=stream), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update

