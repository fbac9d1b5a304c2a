"""A real Ray cluster on this machine for the tests: a head node and worker nodes joined on
127.0.0.1 with ``ray start``, each node one CPU, no dashboard, a small object store.

Each node is a ``ray start --block`` process in its own process group, so one node can be
killed (SIGKILL to its group: raylet, object store, workers) while the others go on, and
teardown ends exactly the processes the tests started. ``bench/ray_scaling.py`` uses it
too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OBJECT_STORE_BYTES = 100 * 2**20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray_bin() -> str:
    return str(Path(sys.executable).with_name("ray"))


class LocalRayCluster:
    """``start()`` the head, ``add_node()`` workers, ``kill_node(i)``, ``stop()``."""

    def __init__(self, cpus_per_node: int = 1) -> None:
        self.cpus = cpus_per_node
        # a short folder: Ray's socket paths must fit in 107 bytes
        self.temp_dir = tempfile.mkdtemp(prefix="mmray", dir="/tmp")
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: list[subprocess.Popen[bytes]] = []
        # no credentials on the nodes: tasks get the driver's (``ray.env_vars``)
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
                    "RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "0"}

    def _start(self, args: list[str]) -> None:
        log = open(Path(self.temp_dir) / f"node{len(self.nodes)}.log", "wb")  # noqa: SIM115
        cmd = [_ray_bin(), "start", "--block", "--node-ip-address=127.0.0.1",
               f"--num-cpus={self.cpus}", f"--object-store-memory={OBJECT_STORE_BYTES}",
               "--disable-usage-stats", *args]
        self.nodes.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                           env=self.env, start_new_session=True))

    def start(self, workers: int = 1, timeout: float = 120) -> LocalRayCluster:
        self._start(["--head", f"--port={self.port}", "--include-dashboard=false",
                     f"--ray-client-server-port={_free_port()}", f"--temp-dir={self.temp_dir}"])
        self.wait_for_nodes(1, timeout)
        for _ in range(workers):
            self.add_node(timeout)
        return self

    def add_node(self, timeout: float = 120) -> None:
        alive = len([p for p in self.nodes if p.poll() is None])
        self._start([f"--address={self.address}"])
        self.wait_for_nodes(alive + 1, timeout)

    def alive_nodes(self) -> int:
        """Nodes the cluster itself counts as alive (asked from a separate driver)."""
        code = (f"import ray; ray.init(address={self.address!r}, logging_level='ERROR', "
                "log_to_driver=False); print(sum(n['Alive'] for n in ray.nodes()))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=self.env, timeout=60)
        try:
            return int(out.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return 0

    def wait_for_nodes(self, n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.nodes[:1]):
                raise RuntimeError(f"ray head exited; see {self.temp_dir}/node0.log")
            if self._head_listening() and self.alive_nodes() >= n:
                return
            time.sleep(1)
        raise TimeoutError(f"{n} Ray nodes not up after {timeout}s ({self.temp_dir})")

    def _head_listening(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def kill_node(self, index: int) -> None:
        """SIGKILL a node's whole process group: a machine that dies mid-task."""
        proc = self.nodes[index]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        for i in reversed(range(len(self.nodes))):
            self.kill_node(i)
        subprocess.run(["rm", "-rf", self.temp_dir], check=False)
