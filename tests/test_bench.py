"""The benchmarks are scripts, not timed tests: this checks that the quick training run works and reports its fields,
and that the goals table reads reports right."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_benchmarks(*arguments, timeout=900, **environment):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", MNISTLAB_OFFLINE="1", **environment)
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *arguments], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
def test_quick_training_benchmark_reports_every_field(tmp_path):
    report, plot, results = tmp_path / "PERFORMANCE.md", tmp_path / "plot.png", tmp_path / "results.json"
    completed = run_benchmarks("training", "--quick", "--json", "--results", str(results), "--report", str(report), "--plot", str(plot))
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout)
    assert json.loads(results.read_text())["training"] == result
    assert [(run["preset"], run["dataset"]) for run in result["runs"]] == [("dense", "mnist"), ("fast_cnn", "mnist")]
    for run in result["runs"]:
        assert {"preset", "dataset", "data_source", "epochs", "reached"} <= set(run)
        for epoch in run["epochs"]:
            assert set(epoch) == {"epoch", "wall_s", "cpu_s", "test_accuracy"}
            assert epoch["wall_s"] > 0 and epoch["cpu_s"] > 0 and 0 <= epoch["test_accuracy"] <= 1
        assert set(run["reached"]) == {"0.98", "0.985", "0.99"}
    for value in result["latency_ms"].values():
        assert 0 < value["median"] <= value["p90"]
    assert set(result["latency_ms"]) == {"dense/mnist", "fast_cnn/mnist"}
    drawing = result["drawing_accuracy"]
    assert {"clean_test_accuracy", "redrawn_with_mnist_preprocessing", "redrawn_with_plain_resize"} <= set(drawing)
    assert {"overhead_percent", "hooks_s", "hooks_percent"} <= set(result["callback_overhead"])
    assert set(result["batch_norm"]["presets"]) == {"fast_cnn", "accurate_cnn"}
    for entry in result["batch_norm"]["presets"].values():
        assert entry["fused_epoch_s"] > 0 and entry["keras_epoch_s"] > 0 and entry["fused_epoch_cpu_s"] > 0
    memory = result["app"]["memory"]
    assert memory["dataset_copies"] == 1 and memory["peak_mib"] > 100 and memory["worker_peak_mib"] > 100
    assert result["app"]["convolutions_page"]["render_s_median"] > 0
    assert result["home_page"]["tensorflow_imported"] is False
    assert result["peak_memory_mib"] > 0
    assert "python -m benchmarks training --quick" in result["command"]
    # CPUs of one name come with and without bfloat16 instructions, which change every figure: the report says which.
    assert isinstance(result["machine"]["bfloat16"], bool)
    # mnistlab asks TensorFlow for oneDNN's kernels on every CPU (TensorFlow itself does only on the newest).
    assert result["machine"]["onednn"] is True
    text = report.read_text()
    assert f"({'with' if result['machine']['bfloat16'] else 'without'} bfloat16 instructions, TensorFlow with oneDNN)" in text
    assert "# Performance" in text and "## Goals" in text and "Time to accuracy" in text and "python -m benchmarks training --quick" in text
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_training_benchmark_rejects_unknown_names_before_importing_tensorflow(without_tensorflow):
    completed = run_benchmarks("training", "--preset", "resnet", "--no-save", timeout=300, **without_tensorflow)
    assert completed.returncode == 2 and "Unknown preset 'resnet'" in completed.stderr, completed.stderr[-2000:]


@pytest.mark.slow
def test_training_benchmark_does_not_merge_another_machines_runs(tmp_path):
    results = tmp_path / "results.json"
    other = {"machine": {"cpu": "Some Other CPU", "cores": 64}, "runs": [], "latency_ms": {}, "total_seconds": 1}
    results.write_text(json.dumps({"training": other}))
    completed = run_benchmarks("training", "--quick", "--merge-runs", "--results", str(results), timeout=300)
    assert completed.returncode == 2 and "would mix two machines' figures" in completed.stderr, completed.stderr[-2000:]
    assert "Some Other CPU with 64 cores" in completed.stderr and "--results FILE" in completed.stderr
    assert json.loads(results.read_text())["training"]["machine"]["cpu"] == "Some Other CPU"


def test_goal_verdicts(tmp_path):
    """The report's goals table, through the benchmark's own command (tests never import the benchmarks)."""

    def run(preset, dataset, reached):
        return {"preset": preset, "dataset": dataset, "epochs": [], "reached": reached}

    report = {
        "training": {
            "runs": [
                run("fast_cnn", "fashion_mnist", {"0.91": {"epoch": 4, "wall_s": 64.0, "cpu_s": 96.0}, "0.93": None}),
                run(
                    "slow",
                    "fashion_mnist",
                    {"0.91": {"epoch": 9, "wall_s": 200.0, "cpu_s": 300.0}, "0.93": {"epoch": 10, "wall_s": 280.0, "cpu_s": 450.0}},
                ),
                run("accurate_cnn", "mnist", {"0.985": {"epoch": 17, "wall_s": 51.0, "cpu_s": 67.0}}),
            ],
            "latency_ms": {"a": {"median": 4.0, "p90": 5.0}, "b": {"median": 12.0, "p90": 13.0}},
            "callback_overhead": {"hooks_percent": 0.1},
            "home_page": {"tensorflow_imported": False},
            "app": {"memory": {"peak_mib": 1600.0, "dataset_copies": 1}},
        },
        "app": {
            "training": {"in_app_s": 50.0, "cli_s": 40.0, "ratio": 1.25, "sessions": 5},
            "drawing_alone": {"server_cpu_s_per_drawing": 0.05, "drawings": 40, "browsers": 8},
            "drawing_while_training": {"p50_s": 0.4, "p95_s": 0.9, "drawings": 30, "answered": 29},
        },
        "class-browsers": {
            "command": "python -m benchmarks class-browsers --students 30",
            "students": 30,
            "spread_s": 0.0,
            "networks": "dense32 to dense264, Fashion-MNIST to 88%, at most 20 epochs",
            "finished": 28,
            "failed": 0,
            "cancelled": 2,
            "cancelled_as_abandoned": 2,
            "interrupted": 0,
            "no_result": 0,
            "database_statuses": {"finished": 28, "cancelled": 2},
            "first_result_s": 20.0,
            "median_result_s": 40.0,
            "last_result_s": 90.0,
            "server_cpu_s": 50.0,
            "browsers_cpu_s": 100.0,
            "server_peak_mb": 900,
            "workers_peak_mb": 1200,
            "fragment_warnings": 0,
            "seconds": 95.0,
            "machine_cores": 2,
        },
    }
    results, page = tmp_path / "results.json", tmp_path / "PERFORMANCE.md"
    results.write_text(json.dumps(report))
    completed = run_benchmarks("report", "--results", str(results), "--report", str(page), timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    text = page.read_text()
    assert "| 6 | Fashion-MNIST clothes: 91.0% within 60 s (120 CPU-s) | fast_cnn, epoch 4: 64 s (96 CPU-s) | no |" in text
    assert "| 6 | Fashion-MNIST clothes: 93.0% within 300 s (500 CPU-s) | slow, epoch 10: 280 s (450 CPU-s) | yes |" in text
    assert "| 6 | MNIST digits: 98.5% within 60 s | accurate_cnn, epoch 17: 51 s (67 CPU-s) | yes |" in text
    assert "slowest preset 12.0 ms | no |" in text
    assert "1600.0 MiB, 1 copy | no |" in text
    assert "1.25x | no |" in text
    assert "0.050 CPU-s (40 drawings by 8 browsers) | yes |" in text
    assert "29 of 30 answered | no |" in text
    assert "| 14 | Ray's overhead per training (fast_cnn, Fashion-MNIST) at most 10% | not measured in this report | not measured |" in text
    assert "Raw figures: " + str(results) in text
    # Issue 35: an open tab's run cancelled as abandoned fails the class's goal, and the section says how many.
    goal = "| 35 | 30 students in real browsers, 30 networks at once: every run whose tab is open ends |"
    assert f"{goal} 28 of 30 finished, 2 cancelled as abandoned | no |" in text
    assert "| cancelled as abandoned while the tab was open | 2 |" in text and "| the runs database afterwards | 2 cancelled, 28 finished |" in text

    # A report that trained only the clothes (another machine's, say) has not measured the digits' goal: it did not fail it.
    report["training"]["runs"] = report["training"]["runs"][:2]
    results.write_text(json.dumps(report))
    completed = run_benchmarks("report", "--results", str(results), "--report", str(page), timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "| 6 | MNIST digits: 98.5% within 60 s | not measured in this report | not measured |" in page.read_text()
