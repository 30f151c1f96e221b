"""The server's settings, read once from environment variables into a frozen dataclass.

| variable | default | meaning |
| --- | --- | --- |
| MNISTLAB_DATA_HOME | ./mnistlab-data | runs' folders and the SQLite database |
| MNISTLAB_DATABASE_URL | sqlite:///DATA_HOME/mnistlab.db | any SQLAlchemy URL (PostgreSQL for several app replicas) |
| MNISTLAB_RUNS_DIR | DATA_HOME/runs | the runs' model files; replicas share it (a shared folder) |
| MNISTLAB_MODELS_DIR | ./models | the shared model store |
| MNISTLAB_MAX_TRAININGS | 1 | worker processes, i.e. trainings that run at once |
| MNISTLAB_RAY_ADDRESS | (unset) | train on a Ray cluster instead: auto, host:6379 or ray://host:10001 |
| MNISTLAB_RAY_CPUS_PER_TRAINING | 2 | CPUs Ray reserves for each training |
| MNISTLAB_SERVER_ID | host name and data home | names this server in the runs database |
| MNISTLAB_ABANDON_AFTER | 60 | seconds without a page asking about a run before it is cancelled |
| MNISTLAB_MAX_PARAMETERS | 3000000 | the biggest network (parameters) a student may train here |
| MNISTLAB_MAX_EPOCH_SECONDS | 120 | the longest estimated epoch a student's network may take here |
| MNISTLAB_PRECISION | auto | auto (bfloat16 where the CPU has it and it pays), float32 or bfloat16 |
| MNISTLAB_PUBLIC_URL | (unset) | the address students open (a school server behind a name), for join links and QR codes |
| MNISTLAB_KEEP_DAYS | (unset) | remove classes and runs older than this many days (the teacher is told a week before) |

A bad value raises ValueError naming the variable and what it accepts.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from mnistlab.sizing import MAX_EPOCH_SECONDS, MAX_PARAMETERS, Limits


def _whole_number(environ, name: str, default: int | None, low: int, high: int) -> int | None:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {text!r}.") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {value}.")
    return value


def _seconds(environ, name: str, default: float) -> float:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {text!r}.") from None
    if not 5 <= value <= 86_400:
        raise ValueError(f"{name} must be from 5 seconds to a day (86400), got {value}.")
    return value


def _public_url(environ) -> str | None:
    text = environ.get("MNISTLAB_PUBLIC_URL", "").strip().rstrip("/")
    if not text:
        return None
    if not text.startswith(("http://", "https://")) or " " in text:
        raise ValueError(f"MNISTLAB_PUBLIC_URL must be an address students can open, like http://lab.school.example:8501, got {text!r}.")
    return text


@dataclass(frozen=True)
class ServerConfig:
    """Where the server keeps its data and how it trains."""

    data_home: Path
    database_url: str
    models_dir: Path
    max_trainings: int = 1
    ray_address: str | None = None
    ray_cpus_per_training: int = 2
    server_id: str = "local"
    abandon_after: float = 60.0
    # Worker processes train at this lower CPU priority, so pages stay quick.
    worker_nice: int = 10
    max_parameters: int = MAX_PARAMETERS
    max_epoch_seconds: float = MAX_EPOCH_SECONDS
    public_url: str | None = None
    keep_days: int | None = None  # MNISTLAB_KEEP_DAYS: classes and runs are removed after this many days (None: kept)

    @property
    def limits(self) -> Limits:
        return Limits(self.max_parameters, self.max_epoch_seconds)

    runs_folder: Path | None = None  # MNISTLAB_RUNS_DIR: the runs' files (shared by replicas); default DATA_HOME/runs

    @property
    def runs_dir(self) -> Path:
        return self.runs_folder or self.data_home / "runs"

    @property
    def backend_name(self) -> str:
        return "ray" if self.ray_address else "local"

    @classmethod
    def from_environment(cls, environ=None) -> ServerConfig:
        environ = os.environ if environ is None else environ
        data_home = Path(environ.get("MNISTLAB_DATA_HOME") or "mnistlab-data").resolve()
        url = environ.get("MNISTLAB_DATABASE_URL", "").strip() or f"sqlite:///{data_home / 'mnistlab.db'}"
        ray_address = environ.get("MNISTLAB_RAY_ADDRESS", "").strip() or None
        return cls(
            data_home=data_home,
            database_url=url,
            models_dir=Path(environ.get("MNISTLAB_MODELS_DIR") or "models").resolve(),
            max_trainings=_whole_number(environ, "MNISTLAB_MAX_TRAININGS", 1, 1, 64),
            ray_address=ray_address,
            ray_cpus_per_training=_whole_number(environ, "MNISTLAB_RAY_CPUS_PER_TRAINING", 2, 1, 256),
            server_id=environ.get("MNISTLAB_SERVER_ID", "").strip() or f"{socket.gethostname()}:{data_home}",
            abandon_after=_seconds(environ, "MNISTLAB_ABANDON_AFTER", 60.0),
            max_parameters=_whole_number(environ, "MNISTLAB_MAX_PARAMETERS", MAX_PARAMETERS, 1_000, 1_000_000_000),
            max_epoch_seconds=_seconds(environ, "MNISTLAB_MAX_EPOCH_SECONDS", MAX_EPOCH_SECONDS),
            public_url=_public_url(environ),
            keep_days=_whole_number(environ, "MNISTLAB_KEEP_DAYS", None, 1, 3650),
            runs_folder=Path(environ["MNISTLAB_RUNS_DIR"]).resolve() if environ.get("MNISTLAB_RUNS_DIR", "").strip() else None,
        )
