"""Ctrl-C prints one message and exits 130 also when the interrupt surfaces as another error
first (DuckDB's "Query interrupted", a worker pool broken by its workers' exit); an error
with no Ctrl-C keeps its traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap

MESSAGE = "interrupted; rerun the same command to resume"


def _command(body: str) -> subprocess.CompletedProcess[str]:
    """``metamix scorers`` with its command replaced by ``body`` (run in a fresh process,
    which gets the signals)."""
    script = textwrap.dedent("""\
        import os, signal, sys, threading
        import metamix.cli as cli

        def command(args, console):
        {body}

        cli.COMMANDS["scorers"] = (command, "")
        sys.exit(cli.main(["scorers"]))
        """).format(body=textwrap.indent(textwrap.dedent(body), "    "))
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)


def test_a_duckdb_query_stopped_by_ctrl_c_is_the_interrupt() -> None:
    # DuckDB turns the KeyboardInterrupt of a running query into RuntimeError
    done = _command("""\
        import duckdb
        con = duckdb.connect()
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
        con.execute("select count(*) from range(3000000000) t(a) where a % 7 = 3")
        print("the query was not interrupted", file=sys.stderr)
        """)
    assert (done.returncode, done.stderr.strip()) == (130, MESSAGE)


def test_an_error_while_a_sigint_is_pending_is_the_interrupt() -> None:
    # the pool's manager thread can fail the tasks (the workers exited on the SIGINT) before
    # this process has run its own handler: the signal is still pending in the kernel
    done = _command("""\
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        os.kill(os.getpid(), signal.SIGINT)
        from concurrent.futures.process import BrokenProcessPool
        raise BrokenProcessPool("A process in the process pool was terminated abruptly")
        """)
    assert (done.returncode, done.stderr.strip()) == (130, MESSAGE)


def test_an_error_without_ctrl_c_keeps_its_traceback() -> None:
    done = _command("""\
        from concurrent.futures.process import BrokenProcessPool
        raise BrokenProcessPool("A process in the process pool was terminated abruptly")
        """)
    assert done.returncode == 1
    assert "Traceback" in done.stderr and done.stderr.strip().endswith(
        "BrokenProcessPool: A process in the process pool was terminated abruptly")
    assert MESSAGE not in done.stderr


def test_a_second_ctrl_c_while_the_first_unwinds_leaves_at_once() -> None:
    # e.g. a worker pool slow to shut down: the second Ctrl-C does not wait for it
    done = _command("""\
        import time
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        finally:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(30)
            print("the cleanup ran to its end", file=sys.stderr)
        """)
    assert (done.returncode, done.stderr.strip()) == (130, MESSAGE)
