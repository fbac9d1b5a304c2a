"""Imported only by the local pool's forkserver (``executor.PRELOAD``, first), never
elsewhere: the forkserver's one hook is the modules it preloads. It makes the forkserver

* die with the command that started it (``die_with_parent``), so a ``kill -9`` of the
  command does not leave it forking workers;
* ignore Ctrl-C while it preloads the rest (numba kernels: seconds), which would otherwise
  print a traceback; it ignores SIGINT itself afterwards, and its workers take over this
  setting until ``_init_worker`` gives them ``exit_on_interrupt``.
"""

import signal

from metamix.base.runlock import die_with_parent

die_with_parent()
signal.signal(signal.SIGINT, signal.SIG_IGN)
