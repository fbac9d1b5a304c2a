"""Imported only by the local pool's forkserver (``executor.PRELOAD``, first), never
elsewhere: the forkserver's one hook is the modules it preloads. It makes the forkserver

* die with the command that started it (``die_with_parent``), so a ``kill -9`` of the
  command does not leave it forking workers;
* ignore Ctrl-C: the command starts it with SIGINT blocked (``executor._start_forkserver``),
  so none reaches its interpreter's start or these imports; here it ignores SIGINT and
  unblocks it (a pending one is dropped). The forkserver ignores SIGINT itself afterwards,
  and its workers take over this setting until ``_init_worker`` gives them
  ``exit_on_interrupt``;
* keep quiet about a worker that cannot start because the command has already let go of
  the pool (Ctrl-C while the pool was starting): its semaphores are gone, and the command
  prints the one message.
"""

import signal
import sys
from types import TracebackType

from metamix.base.runlock import die_with_parent

die_with_parent()
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

_default_excepthook = sys.excepthook


def _worker_start_hook(kind: type[BaseException], exc: BaseException,
                       tb: TracebackType | None) -> None:
    """The forkserver reports an error in a forked worker's start through this hook: a
    worker unpickling the pool's semaphores after the command removed them found the pool
    gone, not a bug."""
    frames, step = [], tb
    while step is not None:
        frames.append(step.tb_frame.f_code.co_name)
        step = step.tb_next
    if isinstance(exc, FileNotFoundError) and "__setstate__" in frames and \
            "_serve_one" in frames:
        return
    _default_excepthook(kind, exc, tb)


sys.excepthook = _worker_start_hook
