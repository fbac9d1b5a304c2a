"""Imported only by the local pool's forkserver (``executor.PRELOAD``), never elsewhere:
the forkserver's one hook is the modules it preloads, and this one makes it die with the
command that started it (``die_with_parent``), so a ``kill -9`` of the command does not
leave it forking workers. Its workers set the same for themselves in ``_init_worker``.
"""

from metamix.base.runlock import die_with_parent

die_with_parent()
