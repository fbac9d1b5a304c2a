"""Ctrl-C in a command: one message and exit 130, whatever the interrupt breaks first.

A terminal's Ctrl-C sends SIGINT to the whole process group, so the command's worker
processes exit at that moment too (``runlock.exit_on_interrupt``). Python raises
``KeyboardInterrupt`` wherever the main thread happens to be, which goes wrong three ways:

* inside ``threading`` or ``concurrent.futures`` (waiting for a pool's results) it can
  land between a lock's acquire and the ``with`` block that would release it: the lock
  stays held, the pool's manager thread blocks on it for ever and the command hangs in
  the pool's shutdown. While the command waits on its pool (``deferred``) SIGINT is only
  recorded, and the wait loop raises at a safe point (``check``);
* what reaches ``main`` is not always a ``KeyboardInterrupt``: DuckDB turns the interrupt
  of a query into ``RuntimeError: Query interrupted``, and the pool's manager thread can
  fail the tasks with ``BrokenProcessPool`` (its workers exited) before this process has
  run its handler (the signal still pending in the kernel);
* the ``KeyboardInterrupt`` can then arrive while that other error is being reported.

So the command records that SIGINT came (``handled``), takes any error raised after it, or
with one pending, as the interrupt (``caused_by_interrupt``), and ignores SIGINT while it
reports and exits (``quiet``). A genuine error with no Ctrl-C keeps its own report. A
second Ctrl-C while the first unwinds leaves at once.
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
_deferred = 0


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    global _received
    if _received:   # a second Ctrl-C while the first one unwinds: leave now (the kernel
        os.write(2, f"{MESSAGE}\n".encode())   # drops the run lock; a rerun removes temps)
        os._exit(130)
    _received = True
    if not _deferred:
        raise KeyboardInterrupt


@contextmanager
def handled() -> Iterator[None]:
    """For the block (the command, in its main thread): SIGINT raises ``KeyboardInterrupt``
    once, as Python's default handler does, and is remembered. Unless SIGINT came, the
    previous handler comes back afterwards (``main`` also runs inside tests)."""
    global _received
    if threading.current_thread() is not threading.main_thread():
        yield   # only the main thread may set handlers; it gets the signals' exceptions
        return
    _received = False
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        # After an interrupt SIGINT stays ignored: the process is leaving, and Python
        # resets a handler it installed to the default as it exits, so a late SIGINT
        # would end it by that signal instead of with exit 130.
        if not _received and signal.getsignal(signal.SIGINT) is _on_sigint:
            signal.signal(signal.SIGINT, previous)
        _received = False


@contextmanager
def deferred() -> Iterator[None]:
    """For a block that waits on other threads' locks (a worker pool's results, its
    shutdown): SIGINT is recorded but raises only at ``check``. Without ``handled`` (a
    library caller) Python's own handler raises as usual."""
    global _deferred
    _deferred += 1
    try:
        yield
    finally:
        _deferred -= 1


def check() -> None:
    """Raise ``KeyboardInterrupt`` if SIGINT came (call it where no lock is held)."""
    if _received:
        raise KeyboardInterrupt


def caused_by_interrupt(exc: BaseException) -> bool:
    """True for ``KeyboardInterrupt`` and for any error raised after SIGINT came, or while
    one is pending for this process (its handler not run yet)."""
    return isinstance(exc, KeyboardInterrupt) or _received or \
        signal.SIGINT in signal.sigpending()


def quiet() -> None:
    """Ignore SIGINT from now on (a pending one is discarded): the command is reporting and
    leaving, and a late ``KeyboardInterrupt`` would only add a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
