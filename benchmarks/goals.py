"""The performance goals of the issues, in one table, each with the figure that decides it.

Every benchmark writes its own section of docs/benchmark.json ("training", "app",
"classroom", "class-training", "ray"); `goal_rows` reads the sections that are there and says, for
each goal, what was measured and whether it is met.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mnistlab.datasets import DATASETS

# Test accuracies whose first epoch the training benchmark reports.
THRESHOLDS = {"fashion_mnist": (0.90, 0.91, 0.93), "mnist": (0.98, 0.985, 0.99)}

Verdict = tuple[str, bool]


@dataclass(frozen=True)
class Goal:
    issue: int
    section: str
    text: str
    measure: Callable[[dict], Verdict | None]


def _first_reach(section: dict, dataset: str, threshold: str) -> tuple[str, dict] | None:
    """The preset that reaches `threshold` first (by wall seconds), with where it reached it."""
    reached = [(run["preset"], run["reached"][threshold]) for run in section["runs"] if run["dataset"] == dataset and run["reached"].get(threshold)]
    return min(reached, key=lambda item: item[1]["wall_s"]) if reached else None


def _time_to_accuracy(dataset: str, threshold: str, wall: float, cpu: float | None):
    def measure(section: dict) -> Verdict | None:
        if not any(run["dataset"] == dataset for run in section["runs"]):
            return None  # this dataset was not trained in this report
        found = _first_reach(section, dataset, threshold)
        if found is None:
            return "not reached by any preset", False
        preset, where = found
        met = where["wall_s"] <= wall and (cpu is None or where["cpu_s"] <= cpu)
        return f"{preset}, epoch {where['epoch']}: {where['wall_s']:.0f} s ({where['cpu_s']:.0f} CPU-s)", met

    return measure


def _latency(section: dict) -> Verdict:
    slowest = max(value["median"] for value in section["latency_ms"].values())
    return f"slowest preset {slowest} ms", slowest <= 10


def _hooks(section: dict) -> Verdict | None:
    hooks = section["callback_overhead"].get("hooks_percent")
    return None if hooks is None else (f"{hooks}%", hooks <= 3)


def _home(section: dict) -> Verdict:
    imported = section["home_page"].get("tensorflow_imported")
    return f"imported: {imported}", imported is False


def _serving_memory(section: dict) -> Verdict | None:
    memory = section.get("app", {}).get("memory")
    if not memory:
        return None
    return f"{memory['peak_mib']} MiB, {memory['dataset_copies']} copy", memory["peak_mib"] < 1536 and memory["dataset_copies"] == 1


def _in_app_ratio(section: dict) -> Verdict | None:
    training = section.get("training")
    if not training:
        return None
    ratio = training["ratio"]
    return (
        f"{training['in_app_s']} s in the app with {training['sessions']} sessions open, {training['cli_s']} s from the command line: {ratio:.2f}x",
        ratio <= 1.15,
    )


def _cpu_per_drawing(section: dict) -> Verdict | None:
    drawing = section.get("drawing_alone")
    if not drawing:
        return None
    value = drawing["server_cpu_s_per_drawing"]
    return f"{value:.3f} CPU-s ({drawing['drawings']} drawings by {drawing['browsers']} browsers)", value <= 0.15


def _drawing_while_training(section: dict) -> Verdict | None:
    drawing = section.get("drawing_while_training")
    if not drawing:
        return None
    answered = drawing["answered"] == drawing["drawings"]
    return (
        f"p50 {drawing['p50_s']:.2f} s, p95 {drawing['p95_s']:.2f} s; {drawing['answered']} of {drawing['drawings']} answered",
        drawing["p95_s"] <= 1.5 and answered,
    )


def _class_lost(section: dict) -> Verdict | None:
    if "drawings_made" not in section:
        return None
    return (
        f"{section['drawings_saved']} saved of {section['drawings_made']} made by {section['students']} students",
        section["drawings_saved"] == section["drawings_made"],
    )


def _class_cpu(section: dict) -> Verdict | None:
    if "server_cpu_s_per_drawing" not in section:
        return None
    value = section["server_cpu_s_per_drawing"]
    return f"{value:.3f} CPU-s", value <= 0.15


def _ray_overhead(section: dict) -> Verdict | None:
    if "overhead_percent" not in section:
        return None
    value = section["overhead_percent"]
    return f"{value:+.1f}% ({section['ray_s']} s with Ray, {section['local_s']} s with worker processes)", value <= 10


def _preset_time(preset: str, dataset: str, threshold: str, wall: float):
    def measure(section: dict) -> Verdict | None:
        run = next((run for run in section["runs"] if run["preset"] == preset and run["dataset"] == dataset), None)
        if run is None:
            return None
        where = run["reached"].get(threshold)
        if where is None:
            return f"not reached in {len(run['epochs'])} epochs", False
        return f"epoch {where['epoch']}: {where['wall_s']:.0f} s in {run.get('precision', 'float32')}", where["wall_s"] <= wall

    return measure


def _precision_gap(section: dict) -> Verdict | None:
    compared = section.get("precision")
    if not compared:
        return None
    worst = max(compared, key=lambda entry: abs(entry["gap_points"]))
    faster = [entry for entry in compared if entry["app_uses"] != "float32"]
    speed = ", ".join(f"{entry['preset']} {entry['speed_up']:.2f}x" for entry in faster)
    met = all(abs(entry["gap_points"]) <= 0.3 and entry["speed_up"] > 1 for entry in faster)
    return f"largest gap {worst['gap_points']:+.2f} points ({worst['preset']}, {worst['dataset']}); faster per epoch: {speed}", met


def _class_ratio(scenario: str, most: float, baseline: str = "pack_of_one"):
    """The class's last result over one run alone. For different networks, alone is each network's own time (median),
    measured two ways: with the app's engine for a lone dense network (a pack of one) and with Keras' fit (the engine
    the issue measured "alone" with, before a pack of one made a lone network faster)."""

    def measure(section: dict) -> Verdict | None:
        found = section.get("scenarios", {}).get(scenario)
        if not found:
            return None
        if baseline == "keras_fit":
            if "keras_fit_alone_s" not in found:
                return None
            return (
                f"{found['students']} students: last after {found['last_s']:.0f} s, alone with Keras' fit {found['keras_fit_alone_s']:.0f} s: "
                f"{found['last_over_keras_fit_alone']:.2f}x",
                found["last_over_keras_fit_alone"] <= most,
            )
        alone = "alone as a pack of one" if "keras_fit_alone_s" in found else "alone"
        return (
            f"{found['students']} students: last after {found['last_s']:.0f} s, {alone} {found['alone_s']:.0f} s: {found['last_over_alone']:.2f}x",
            found["last_over_alone"] <= most,
        )

    return measure


def _packed(baseline: str):
    """Packed against one by one: with Keras' fit (the issue's baseline) or with packs of one (today's lone run)."""

    def measure(section: dict) -> Verdict | None:
        packed = section.get("packed")
        if not packed or "keras_fit_one_by_one_s" not in packed:
            return None
        if baseline == "keras_fit":
            return (
                f"{packed['speed_up_over_keras_fit']:.1f}x ({packed['packed_s']:.0f} s packed, {packed['keras_fit_one_by_one_s']:.0f} s one by one); "
                f"largest accuracy gap {packed['largest_gap_to_keras_fit_points']:.2f} points",
                packed["speed_up_over_keras_fit"] >= 3 and packed["largest_gap_to_keras_fit_points"] <= 0.5,
            )
        return (
            f"{packed['speed_up']:.1f}x ({packed['packed_s']:.0f} s packed, {packed['one_by_one_s']:.0f} s one by one); "
            f"largest accuracy gap {packed['largest_gap_points']:.2f} points",
            packed["speed_up"] >= 3 and packed["largest_gap_points"] <= 0.5,
        )

    return measure


def _explain(action: str, most: float, key: str = "median_s"):
    def measure(section: dict) -> Verdict | None:
        found = section.get("figures", {}).get(action)
        if not found:
            return None
        value = found[key]
        return f"{value:.3f} s ({section['preset']})", value <= most

    return measure


def _open_tabs_keep_their_runs(section: dict):
    kept = section["cancelled_as_abandoned"] == 0 and section["no_result"] == 0 and section["finished"] + section["failed"] == section["students"]
    return f"{section['finished']} of {section['students']} finished, {section['cancelled_as_abandoned']} cancelled as abandoned", kept


VARIATIONS = "12 students with their own variation of lesson 1's network"
PACKED = "12 dense networks packed at least 3x faster than one by one"
GOALS: tuple[Goal, ...] = (
    Goal(6, "training", f"{DATASETS['fashion_mnist'].title}: 91.0% within 60 s (120 CPU-s)", _time_to_accuracy("fashion_mnist", "0.91", 60, 120)),
    Goal(6, "training", f"{DATASETS['fashion_mnist'].title}: 93.0% within 300 s (500 CPU-s)", _time_to_accuracy("fashion_mnist", "0.93", 300, 500)),
    Goal(6, "training", f"{DATASETS['mnist'].title}: 98.5% within 60 s", _time_to_accuracy("mnist", "0.985", 60, None)),
    Goal(6, "training", "Drawing: preprocessing + model at most 10 ms median", _latency),
    Goal(6, "training", "Live progress at most 3% of epoch time", _hooks),
    Goal(6, "training", "Home page imports no TensorFlow", _home),
    Goal(6, "training", "Serving process with one training and two sessions under 1.5 GiB, one dataset copy", _serving_memory),
    Goal(10, "app", "In-app training with 5 sessions open at most 1.15x the command line", _in_app_ratio),
    Goal(10, "app", "Server CPU per drawing at most 0.15 CPU-s", _cpu_per_drawing),
    Goal(10, "app", "8 browsers drawing during a training: p95 pen-up to prediction at most 1.5 s, every drawing answered", _drawing_while_training),
    Goal(11, "classroom", "25 students drawing in class mode lose no drawing", _class_lost),
    Goal(11, "classroom", "Server CPU per saved class drawing at most 0.15 CPU-s", _class_cpu),
    Goal(14, "ray", "Ray's overhead per training (fast_cnn, Fashion-MNIST) at most 10%", _ray_overhead),
    Goal(18, "training", "fast_cnn reaches 91% on Fashion-MNIST within 30 s", _preset_time("fast_cnn", "fashion_mnist", "0.91", 30)),
    Goal(18, "training", "accurate_cnn reaches 93% on Fashion-MNIST within 150 s", _preset_time("accurate_cnn", "fashion_mnist", "0.93", 150)),
    Goal(18, "training", "bfloat16 presets: faster, and final test accuracy within 0.3 points of float32", _precision_gap),
    Goal(18, "class-training", "25 students on lesson 1's step at once: last result within 2x one run alone", _class_ratio("lesson1", 2)),
    Goal(18, "class-training", "8 students on lesson 4's fast CNN step at once: within 2x", _class_ratio("lesson4", 2)),
    Goal(
        18,
        "class-training",
        "12 students with their own variation of lesson 1's network: within 5x one run alone with Keras' fit (the issue's baseline)",
        _class_ratio("variations", 5, "keras_fit"),
    ),
    Goal(
        18,
        "class-training",
        "12 students with their own variation of lesson 1's network: within 5x one run alone as a pack of one (today's lone run)",
        _class_ratio("variations", 5),
    ),
    Goal(35, "class-browsers", "30 students in real browsers, 30 networks at once: every run whose tab is open ends", _open_tabs_keep_their_runs),
    Goal(21, "explain", "Heat map within 300 ms", _explain("heat_map", 0.3)),
    Goal(21, "explain", "Break it (1,000 test images and the drawing) within 300 ms", _explain("break_it", 0.3)),
    Goal(21, "explain", "Fooling within 2 s", _explain("fool", 2.0)),
    Goal(21, "explain", "PCA map of 2,000 test images within 5 s", _explain("pca_map", 5.0)),
    Goal(21, "explain", "t-SNE map within 60 s, once per model", _explain("tsne_map", 60.0, "seconds")),
    Goal(
        18,
        "class-training",
        "12 dense networks packed at least 3x faster than one by one with Keras' fit, each within 0.5 points",
        _packed("keras_fit"),
    ),
    Goal(
        18,
        "class-training",
        "12 dense networks packed at least 3x faster than one by one as packs of one, each within 0.5 points",
        _packed("pack_of_one"),
    ),
)


def goal_rows(report: dict) -> list[tuple[Goal, str, str]]:
    """(goal, measured, "yes"/"no"/"not measured") for every goal."""
    rows = []
    for goal in GOALS:
        section = report.get(goal.section)
        verdict = goal.measure(section) if section else None
        if verdict is None:
            rows.append((goal, "not measured in this report", "not measured"))
        else:
            rows.append((goal, verdict[0], "yes" if verdict[1] else "no"))
    return rows
