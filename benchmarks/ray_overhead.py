"""Ray's overhead per training, and trainings per hour: `python -m benchmarks ray`.

The same training (a preset on a dataset, a fixed number of epochs, no target, so each
run does the same work) is submitted through the job manager, as the Train page does,
alternately to the local backend (one worker process) and to a Ray cluster started on
this machine the way a lab's head PC starts one (`ray start --head`, 2 CPUs, token
authentication on; this process joins it as the web server does). Alternating A/B
keeps the machine's drift over minutes out of the comparison.

For each run: the seconds from Submit to the finished run in the database (queue,
start, training, evaluation, the model coming back), and the training's own seconds.
The overhead is the median submit-to-done time with Ray over the local one; as this
machine's speed drifts by a third over minutes, the fixed cost outside training (submit
to done minus the training's own seconds, median) is given for each backend too. Trainings
per hour is 3600 over that median, for one training place. A lab's figure is an
estimate on paper from these: one training place per PC, PCs as fast as this machine.
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from mnistlab.database import Database
from mnistlab.jobs import JobManager
from mnistlab.runs import FINISHED, RunStore
from mnistlab.settings import TrainingSettings
from tests.drivers import LocalRayCluster

LAB_PCS = 25


def _one_run(jobs: JobManager, settings: TrainingSettings) -> dict:
    submitted = time.perf_counter()
    run_id = jobs.submit(settings, "benchmark")
    if not jobs.wait(run_id, 3600):
        raise RuntimeError(f"run {run_id} did not finish within an hour")
    done = time.perf_counter()
    snapshot = jobs.snapshot(run_id)
    if snapshot.status != FINISHED:
        raise RuntimeError(f"run {run_id} ended {snapshot.status}: {snapshot.error}")
    return {
        "submit_to_done_s": round(done - submitted, 2),
        "training_s": round(snapshot.result.seconds, 2),
        "test_accuracy": round(snapshot.result.test_accuracy, 4),
        "worker": snapshot.worker,
    }


def run(arguments) -> dict:
    settings = TrainingSettings(
        dataset=arguments.dataset,
        arch=arguments.preset,
        target_accuracy=None,
        max_epochs=1 if arguments.quick else 3,
        train_size=2000 if arguments.quick else None,
        test_size=500 if arguments.quick else None,
    )
    repeats = 1 if arguments.quick else arguments.repeats
    folder = Path(tempfile.mkdtemp(prefix="mnistlab-ray-bench-"))
    cluster = LocalRayCluster(cpus=2).start()
    os.environ.update(cluster.environment)  # Before Ray is imported: it reads its token from the environment.
    from mnistlab.process_backend import ProcessBackend
    from mnistlab.ray_backend import RayBackend

    managers = {}
    try:
        ray_backend = RayBackend(cluster.address, cpus_per_training=2)
        if not ray_backend.wait_until_ready(places=1, timeout=300):
            raise RuntimeError("the local Ray cluster did not start a training actor")
        managers["local"] = JobManager(
            RunStore(Database(f"sqlite:///{folder / 'local.db'}"), folder / "local"), ProcessBackend(workers=1), "bench-local"
        )
        managers["ray"] = JobManager(RunStore(Database(f"sqlite:///{folder / 'ray.db'}"), folder / "ray"), ray_backend, "bench-ray")
        # One warm-up run each: both backends keep their processes, with TensorFlow imported and data loaded.
        for name, jobs in managers.items():
            print(f"warm-up: {name}", flush=True)
            _one_run(jobs, settings)
        runs: dict[str, list[dict]] = {"local": [], "ray": []}
        for repeat in range(repeats):
            for name in ("local", "ray") if repeat % 2 == 0 else ("ray", "local"):
                runs[name].append(_one_run(managers[name], settings))
                print(f"{name}: {runs[name][-1]}", flush=True)
    finally:
        for jobs in managers.values():
            jobs.shutdown()
        cluster.stop()
    local_s = statistics.median(run["submit_to_done_s"] for run in runs["local"])
    ray_s = statistics.median(run["submit_to_done_s"] for run in runs["ray"])
    per_hour_local = 3600 / local_s
    per_hour_ray = 3600 / ray_s
    return {
        "command": f"python -m benchmarks ray --dataset {arguments.dataset} --preset {arguments.preset} --repeats {repeats}"
        + (" --quick" if arguments.quick else ""),
        "dataset": arguments.dataset,
        "preset": arguments.preset,
        "epochs": settings.max_epochs,
        "repeats": repeats,
        "local_s": round(local_s, 1),
        "ray_s": round(ray_s, 1),
        "local_training_s": round(statistics.median(run["training_s"] for run in runs["local"]), 1),
        "ray_training_s": round(statistics.median(run["training_s"] for run in runs["ray"]), 1),
        "overhead_percent": round(100 * (ray_s - local_s) / local_s, 1),
        "trainings_per_hour_local": round(per_hour_local, 1),
        "trainings_per_hour_ray": round(per_hour_ray, 1),
        "lab_pcs": LAB_PCS,
        "lab_trainings_per_hour_estimate": round(LAB_PCS * per_hour_ray),
        "runs": runs,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "quick": bool(arguments.quick),
    }
