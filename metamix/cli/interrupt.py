"""Ctrl-C in the command: one message and exit 130, whatever the interrupt breaks first.

A terminal's Ctrl-C sends SIGINT to the whole process group, so the command's worker
processes exit at that moment too (``runlock.exit_on_interrupt``). What reaches ``main``
is then not always a ``KeyboardInterrupt``:

* DuckDB turns the interrupt of a running query into ``RuntimeError: Query interrupted``;
* the pool's manager thread can see the workers gone and fail the pending tasks with
  ``BrokenProcessPool`` before this process's main thread has run its SIGINT handler (the
  signal is still pending in the kernel, or was taken by another thread);
* and the ``KeyboardInterrupt`` itself can then arrive while that other error is being
  reported, escaping the handler (exit -2, two tracebacks).

So the command records that SIGINT came (``handled``), asks whether an error comes from it
(``caused_by_interrupt``: recorded, or pending in the kernel), and ignores SIGINT while it
reports (``quiet``). A genuine error with no Ctrl-C keeps its own report. A second Ctrl-C
while the first unwinds (a worker pool shutting down) leaves at once.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

MESSAGE = "interrupted; rerun the same command to resume"
_received = False


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    global _received
    if _received:   # a second Ctrl-C while the first one unwinds: leave now (the kernel
        os.write(2, f"{MESSAGE}\n".encode())   # drops the run lock; a rerun removes temps)
        os._exit(130)
    _received = True
    raise KeyboardInterrupt


@contextmanager
def handled() -> Iterator[None]:
    """For the block (the command, in its main thread): SIGINT raises ``KeyboardInterrupt``
    once, as Python's default handler does, and is remembered. The previous handler comes
    back afterwards (``main`` also runs inside tests)."""
    global _received
    if threading.current_thread() is not threading.main_thread():
        yield   # only the main thread may set handlers; it gets the signals' exceptions
        return
    _received = False
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _received = False


def caused_by_interrupt(exc: BaseException) -> bool:
    """True for ``KeyboardInterrupt`` and for any error raised after SIGINT came, or while
    one is pending for this process (its handler not run yet)."""
    return isinstance(exc, KeyboardInterrupt) or _received or \
        signal.SIGINT in signal.sigpending()


def quiet() -> None:
    """Ignore SIGINT from now on (a pending one is discarded): the command is reporting and
    leaving, and a late ``KeyboardInterrupt`` would only add a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
