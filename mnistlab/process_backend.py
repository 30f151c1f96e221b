"""Trainings in worker processes on this machine, off the web server's process.

`ProcessBackend` keeps `workers` long-lived worker processes. Each is a fresh Python
interpreter (never a fork of the server: TensorFlow must not be forked), started the
way multiprocessing's "spawn" starts one, but with its own entry point: spawn would
re-import the server's main module in the child, and in Streamlit that is a page
script. Workers run at a lower CPU priority (`os.nice`) than the web server, so pages
stay quick while they train. Each imports TensorFlow once and keeps datasets loaded
between jobs.

The server and a worker talk through three pipes of pickled messages
(`multiprocessing.connection`): jobs go down one, events come back up another as
they happen, and controls (Stop, snapshot) go down the third, which a thread of the
worker reads while the training runs. When a worker dies (killed, out of memory, a
crash), its events pipe closes: the job it was running fails at once with a one-line
reason and a fresh worker takes its place.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from mnistlab.worker import TERMINAL_EVENTS, JobControls, JobEvent, JobFailed, JobSpec

Report = Callable[[JobEvent], None]
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def describe_exit(returncode: int | None) -> str:
    """Why a worker process ended, in one line a teacher can act on."""
    if returncode is not None and returncode < 0:
        number = -returncode
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        if number == signal.SIGKILL:
            return f"The training process was killed ({name}), often because the machine ran out of memory; the model of this run is lost."
        return f"The training process was stopped by {name}; the model of this run is lost."
    return f"The training process ended unexpectedly (exit code {returncode}); the model of this run is lost."


class _Worker:
    """One worker process, its three pipes, and the thread that reads its events."""

    def __init__(self, number: int, nice: int):
        self.number = number
        self.nice = nice
        self.lock = threading.Lock()
        self.current: tuple[int, Report] | None = None
        self.stopping = False
        self._spawn()
        self.thread = threading.Thread(target=self._watch, name=f"mnistlab-worker-{number}-events", daemon=True)
        self.thread.start()

    def _spawn(self) -> None:
        jobs_read, jobs_write = os.pipe()
        events_read, events_write = os.pipe()
        control_read, control_write = os.pipe()
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PACKAGE_ROOT), environment.get("PYTHONPATH")]))
        environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        command = [
            sys.executable,
            "-m",
            "mnistlab.process_backend",
            "--jobs",
            str(jobs_read),
            "--events",
            str(events_write),
            "--control",
            str(control_read),
            "--nice",
            str(self.nice),
        ]
        self.process = subprocess.Popen(
            command,
            pass_fds=(jobs_read, events_write, control_read),
            stdin=subprocess.DEVNULL,
            env=environment,
            # Its own session: Ctrl-C in the server's terminal is for the server, which stops its workers itself.
            start_new_session=True,
        )
        for descriptor in (jobs_read, events_write, control_read):
            os.close(descriptor)
        self.jobs = Connection(jobs_write, readable=False)
        self.events = Connection(events_read, writable=False)
        self.control_pipe = Connection(control_write, readable=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def busy(self) -> bool:
        with self.lock:
            return self.current is not None

    def start(self, spec: JobSpec, report: Report) -> None:
        with self.lock:
            if self.current is not None:
                raise RuntimeError(f"worker {self.number} is busy")
            self.current = (spec.job_id, report)
            try:
                self.jobs.send(spec)
            except OSError:
                pass  # The process died: the events thread reports the failure and starts a new one.

    def control(self, job_id: int, network: int, action: str) -> bool:
        with self.lock:
            if self.current is None or self.current[0] != job_id:
                return False
            try:
                self.control_pipe.send((job_id, network, action))
            except OSError:
                pass
            return True

    def _deliver(self, job_id: int, event: JobEvent) -> None:
        with self.lock:
            current = self.current
            if current is None or current[0] != job_id:
                return
            if isinstance(event, TERMINAL_EVENTS):
                self.current = None
        current[1](event)

    def _watch(self) -> None:
        while not self.stopping:
            try:
                job_id, event = self.events.recv()
            except (EOFError, OSError):
                # The worker's end of the pipe closed: the process has ended.
                returncode = self.process.wait()
                if self.stopping:
                    return
                with self.lock:
                    current, self.current = self.current, None
                    self._close()
                    self._spawn()
                if current is not None:
                    current[1](JobFailed(describe_exit(returncode)))
                continue
            self._deliver(job_id, event)

    def _close(self) -> None:
        for connection in (self.jobs, self.events, self.control_pipe):
            try:
                connection.close()
            except OSError:
                pass

    def stop(self) -> None:
        self.stopping = True
        with self.lock:
            try:
                self.jobs.send(None)
            except OSError:
                pass
        try:
            self.process.wait(3)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(3)
        self._close()


class ProcessBackend:
    """`workers` training processes on this machine; each trains one job at a time."""

    name = "local"

    def __init__(self, workers: int = 1, nice: int = 10):
        if workers < 1:
            raise ValueError(f"At least one worker process is needed, got {workers}.")
        self._workers = [_Worker(number, nice) for number in range(1, workers + 1)]

    @property
    def capacity(self) -> int:
        return len(self._workers)

    def start(self, spec: JobSpec, report: Report) -> None:
        for worker in self._workers:
            if not worker.busy:
                worker.start(spec, report)
                return
        raise RuntimeError("Every worker process is busy.")

    def control(self, job_id: int, network: int, action: str) -> None:
        """Stop or snapshot one network of a running job (after its current batch)."""
        for worker in self._workers:
            if worker.control(job_id, network, action):
                return

    def worker_pids(self) -> list[int]:
        return [worker.pid for worker in self._workers]

    def places(self) -> list[tuple[str, int | None]]:
        """Where each training place is, and the job it trains."""
        host = socket.gethostname()
        return [(f"process {worker.pid} on {host}", worker.current[0] if worker.current else None) for worker in self._workers]

    def describe(self) -> str:
        count = len(self._workers)
        return f"{count} worker process{'es' if count > 1 else ''} on this server"

    def shutdown(self) -> None:
        for worker in self._workers:
            worker.stop()


def worker_main(jobs: Connection, events: Connection, control: Connection, nice: int) -> None:
    """A worker process: train jobs one at a time and send their events back; Stop and snapshot arrive on `control`."""
    from mnistlab.worker import run_job

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if nice:
        try:
            os.nice(nice)
        except OSError:
            pass
    state: dict = {"job": None, "controls": None, "early": []}
    lock = threading.Lock()

    def read_control() -> None:
        while True:
            try:
                job_id, network, action = control.recv()
            except (EOFError, OSError):
                # The server is gone: nobody is left to report to.
                os._exit(0)
            with lock:
                if state["job"] == job_id and state["controls"] is not None:
                    state["controls"].request(network, action)
                else:
                    # A control that overtook its job (Stop pressed as the job was sent): kept for it.
                    state["early"] = [*state["early"][-50:], (job_id, network, action)]

    threading.Thread(target=read_control, name="mnistlab-worker-control", daemon=True).start()
    import tensorflow  # noqa: F401 (imported once, before the first job, so jobs start at once)

    send_lock = threading.Lock()

    def emit(job_id: int, event: JobEvent) -> None:
        with send_lock:
            events.send((job_id, event))

    while True:
        try:
            spec = jobs.recv()
        except (EOFError, OSError):
            return
        if spec is None:
            return
        controls = JobControls(len(spec.networks))
        with lock:
            state["job"], state["controls"] = spec.job_id, controls
            for job_id, network, action in state["early"]:
                if job_id == spec.job_id:
                    controls.request(network, action)
            state["early"] = [early for early in state["early"] if early[0] != spec.job_id]
        run_job(spec, lambda event, job_id=spec.job_id: emit(job_id, event), controls)
        with lock:
            state["job"], state["controls"] = None, None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="An MNIST Lab training worker (started by the web server).")
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--control", type=int, required=True)
    parser.add_argument("--nice", type=int, default=10)
    arguments = parser.parse_args()
    worker_main(
        Connection(arguments.jobs, writable=False),
        Connection(arguments.events, readable=False),
        Connection(arguments.control, writable=False),
        arguments.nice,
    )
