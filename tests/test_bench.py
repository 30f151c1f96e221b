"""The benchmark is a script, not a timed test: this only checks that its quick run works and reports its fields."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_bench_reports_every_field(tmp_path):
    environment = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3", MNISTLAB_OFFLINE="1")
    report, plot = tmp_path / "PERFORMANCE.md", tmp_path / "plot.png"
    completed = subprocess.run(
        [sys.executable, "-m", "mnistlab", "bench", "--quick", "--json", "--report", str(report), "--plot", str(plot)],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
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
    assert result["app"]["memory"]["dataset_copies"] == 1 and result["app"]["memory"]["peak_mib"] > 100
    assert result["app"]["convolutions_page"]["render_s_median"] > 0
    assert result["home_page"]["tensorflow_imported"] is False
    assert result["peak_memory_mib"] > 0
    assert "python -m mnistlab bench --quick" in result["command"]
    text = report.read_text()
    assert "# Performance" in text and "Time to accuracy" in text and "fused kernel against Keras' layer" in text and "python -m mnistlab bench --quick" in text
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_rejects_unknown_names(tmp_path):
    environment = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    completed = subprocess.run([sys.executable, "-m", "mnistlab", "bench", "--preset", "resnet"], cwd=ROOT, env=environment,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 2 and "Unknown preset 'resnet'" in completed.stderr


def test_merge_replaces_only_the_runs_measured_again():
    from mnistlab.bench import merge_reports

    def run(preset, dataset, accuracy):
        return {"preset": preset, "dataset": dataset, "epochs": [{"epoch": 1, "wall_s": 1.0, "cpu_s": 1.0, "test_accuracy": accuracy}], "reached": {}}

    previous = {"command": "python -m mnistlab bench", "total_seconds": 100.0, "drawing_accuracy": {"digits": 10},
                "runs": [run("dense", "mnist", 0.9), run("fast_cnn", "fashion_mnist", 0.90)],
                "latency_ms": {"dense/mnist": {"median": 1.0, "p90": 2.0}, "fast_cnn/fashion_mnist": {"median": 5.0, "p90": 6.0}}}
    new = {"command": "python -m mnistlab bench --preset fast_cnn", "total_seconds": 10.0,
           "runs": [run("fast_cnn", "fashion_mnist", 0.91)], "latency_ms": {"fast_cnn/fashion_mnist": {"median": 4.0, "p90": 4.5}}}
    merged = merge_reports(previous, new)
    assert [(r["preset"], r["epochs"][0]["test_accuracy"]) for r in merged["runs"]] == [("dense", 0.9), ("fast_cnn", 0.91)]
    assert merged["latency_ms"]["fast_cnn/fashion_mnist"]["median"] == 4.0 and merged["latency_ms"]["dense/mnist"]["median"] == 1.0
    assert merged["drawing_accuracy"] == {"digits": 10}
    assert "then, to measure again: python -m mnistlab bench --preset fast_cnn" in merged["command"]
    assert merged["total_seconds"] == 110.0


def test_goal_verdicts():
    from mnistlab.bench_report import goal_lines

    def run(preset, dataset, reached):
        return {"preset": preset, "dataset": dataset, "epochs": [], "reached": reached}

    report = {
        "runs": [
            run("fast_cnn", "fashion_mnist", {"0.91": {"epoch": 4, "wall_s": 64.0, "cpu_s": 96.0}, "0.93": None}),
            run("slow", "fashion_mnist", {"0.91": {"epoch": 9, "wall_s": 200.0, "cpu_s": 300.0}, "0.93": {"epoch": 10, "wall_s": 280.0, "cpu_s": 450.0}}),
            run("accurate_cnn", "mnist", {"0.985": {"epoch": 17, "wall_s": 51.0, "cpu_s": 67.0}}),
        ],
        "latency_ms": {"a": {"median": 4.0, "p90": 5.0}, "b": {"median": 12.0, "p90": 13.0}},
        "callback_overhead": {"hooks_percent": 0.1},
        "home_page": {"tensorflow_imported": False},
        "app": {"memory": {"peak_mib": 1600.0, "dataset_copies": 1}},
    }
    text = "\n".join(goal_lines(report))
    assert "| Fashion-MNIST clothes: 91.0% within 60 s (120 CPU-s) | fast_cnn, epoch 4: 64 s (96 CPU-s) | CPU-seconds yes, wall seconds no |" in text
    assert "| Fashion-MNIST clothes: 93.0% within 300 s (500 CPU-s) | slow, epoch 10: 280 s (450 CPU-s) | yes |" in text
    assert "| MNIST digits: 98.5% within 60 s | accurate_cnn, epoch 17: 51 s (67 CPU-s) | yes |" in text
    assert "slowest preset 12.0 ms | no |" in text
    assert "1600.0 MiB, 1 copy | no |" in text
