"""A Ray cluster on this machine, started the way a lab's head PC starts one (`ray start --head`), for tests and benchmarks.

Token authentication is on: the cluster and every client share a random token (in the
environment, RAY_AUTH_MODE=token and RAY_AUTH_TOKEN), as the README tells a lab to do.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from benchmarks.browsers import free_port


def ray_installed() -> bool:
    return shutil.which("ray") is not None


class LocalRayCluster:
    """`ray start --head` with `cpus` CPUs on a free port; `environment` is what a client needs to join it."""

    def __init__(self, cpus: int = 2):
        self.cpus = cpus
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        # Ray's sockets live under its temp folder, whose path must stay short.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
        self.environment = {
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(32),
            "RAY_USAGE_STATS_ENABLED": "0",
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }

    def start(self) -> LocalRayCluster:
        command = [
            "ray",
            "start",
            "--head",
            f"--port={self.port}",
            "--node-ip-address=127.0.0.1",
            f"--num-cpus={self.cpus}",
            f"--ray-client-server-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={self.temp_dir}",
        ]
        completed = subprocess.run(command, env=dict(os.environ, **self.environment), capture_output=True, text=True, timeout=180)
        if completed.returncode != 0:
            raise RuntimeError(f"ray start failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
        return self

    def stop(self) -> None:
        """Kill this cluster's processes only (`ray stop` would stop every Ray cluster on the machine)."""
        for pid in self._processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def _processes(self) -> list[int]:
        """The processes started with this cluster's temp folder in their arguments, and all their descendants."""
        parents: dict[int, int] = {}
        ours: set[int] = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                arguments = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if str(self.temp_dir) in arguments:
                ours.add(int(entry.name))
        grew = True
        while grew:
            children = {pid for pid, parent in parents.items() if parent in ours} - ours
            grew = bool(children)
            ours |= children
        ours.discard(os.getpid())
        return sorted(ours)
