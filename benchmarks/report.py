"""Turn the benchmark report into text: a terminal summary, docs/PERFORMANCE.md and a plot.

The report (docs/benchmark.json) has one section per benchmark: "training", "app",
"classroom" and "ray". The page opens with the goals table of benchmarks/goals.py,
then each section that was measured, with the command that measured it.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.goals import THRESHOLDS, goal_rows
from mnistlab.datasets import DATASETS


def _reached_text(reached: dict | None) -> str:
    if reached is None:
        return "not reached"
    return f"epoch {reached['epoch']}: {reached['wall_s']:.0f} s ({reached['cpu_s']:.0f} CPU-s)"


def machine_name(machine: dict) -> str:
    """The CPU, whether it has bfloat16 instructions and whether TensorFlow used oneDNN, where the results recorded them (older ones did not)."""
    notes = []
    if "bfloat16" in machine:
        notes.append(f"{'with' if machine['bfloat16'] else 'without'} bfloat16 instructions")
    if "onednn" in machine:
        notes.append(f"TensorFlow {'with' if machine['onednn'] else 'without'} oneDNN")
    return machine.get("cpu", "unknown CPU") + (f" ({', '.join(notes)})" if notes else "")


def summary_lines(report: dict) -> list[str]:
    lines = []
    for run in report["runs"]:
        last = run["epochs"][-1]
        reached = ", ".join(f"{float(threshold):.1%} {_reached_text(value)}" for threshold, value in run["reached"].items())
        lines.append(f"{run['preset']:13} {run['dataset']:14} final {last['test_accuracy']:.2%} after {last['wall_s']:.0f} s; {reached}")
    for key, value in report["latency_ms"].items():
        lines.append(f"latency {key}: median {value['median']} ms, p90 {value['p90']} ms")
    if "drawing_accuracy" in report:
        lines.append(f"drawing accuracy: {report['drawing_accuracy']}")
    lines.append(f"callback overhead: {report['callback_overhead']['overhead_percent']}%")
    for preset, entry in report.get("batch_norm", {}).get("presets", {}).items():
        lines.append(
            f"batch normalisation, {preset}: fused {entry['fused_epoch_s']} s/epoch, Keras {entry['keras_epoch_s']} s/epoch "
            f"({entry['time_saved_percent']}% saved)"
        )
    lines.append(f"home page: {report['home_page']}")
    lines.append(f"app: {report['app']}")
    lines.append(f"peak memory: {report['peak_memory_mib']} MiB; total {report['total_seconds']} s")
    return lines


def section_summary(name: str, section: dict) -> list[str]:
    """A few lines for the terminal about one section."""
    if name == "training":
        return summary_lines(section)
    return [f"{key}: {value}" for key, value in section.items() if key not in ("machine",)]


def goal_lines(report: dict) -> list[str]:
    """The goals table: every goal of the issues with the figure measured for it."""
    rows = [f"| {goal.issue} | {goal.text} | {measured} | {met} |" for goal, measured, met in goal_rows(report)]
    return ["## Goals", "", "| issue | goal | measured | met |", "| --- | --- | --- | --- |", *rows, ""]


def _batch_norm_lines(batch_norm: dict | None) -> list[str]:
    """The fused batch normalisation against Keras' own layer, per preset."""
    if not batch_norm:
        return []
    out = [
        "## Batch normalisation: fused kernel against Keras' layer",
        "",
        "Keras 3 trains `BatchNormalization` with separate operations; the presets use `mnistlab.layers."
        "FusedBatchNormalization`, which computes the same thing with TensorFlow's fused kernel. One epoch of each "
        f"preset on {batch_norm['dataset']}, timed on {batch_norm['timed_images']:,} images and scaled to "
        f"{batch_norm['train_images']:,} (medians, alternating order). Each timing lasts a few seconds, so a slow spell of "
        "this shared machine can swing the wall seconds either way; the CPU-seconds are the steadier figure:",
        "",
        "| preset | fused | Keras' layer | time saved |",
        "| --- | --- | --- | --- |",
    ]
    for preset, entry in batch_norm["presets"].items():
        out.append(
            f"| {preset} | {entry['fused_epoch_s']} s ({entry['fused_epoch_cpu_s']} CPU-s) | {entry['keras_epoch_s']} s "
            f"({entry['keras_epoch_cpu_s']} CPU-s) | {entry['time_saved_percent']}% ({entry['cpu_saved_percent']}% of CPU-s) |"
        )
    return [*out, ""]


def training_lines(report: dict, path: str, plot_path: str | None) -> list[str]:
    """The training section: time to accuracy, latency, drawn digits, batch normalisation, other figures."""
    machine = report["machine"]
    out = [
        "## Training benchmark",
        "",
        "Measured with:",
        "",
        "```",
        report["command"],
        "```",
        "",
        f"Machine: {machine_name(machine)}, {machine['cores']} cores, no GPU. Python {machine['python']}, TensorFlow "
        f"{machine['tensorflow']}, Keras {machine['keras']}, NumPy {machine['numpy']}, Streamlit {machine['streamlit']}.",
        "",
        "Timings are training time only (test scoring after each epoch is off the clock), the median of "
        f"{max(run['repeats'] for run in report['runs'])} run(s) per preset. The machine is shared and noisy, so CPU-seconds "
        "(both cores together) are given next to wall seconds.",
        "",
    ]
    out += ["### Time to accuracy", ""]
    for name in DATASETS:
        runs = [run for run in report["runs"] if run["dataset"] == name]
        if not runs:
            continue
        thresholds = THRESHOLDS[name]
        out += [
            f"#### {DATASETS[name].title}",
            "",
            f"Data: {runs[0]['data_source']} ({runs[0]['train_images']:,} training, {runs[0]['test_images']:,} test images).",
            "",
        ]
        out.append("| preset | epochs | final test accuracy | training time | " + " | ".join(f"first reaches {t:.1%}" for t in thresholds) + " |")
        out.append("| --- | --- | --- | --- | " + " | ".join("---" for _ in thresholds) + " |")
        for run in runs:
            last = run["epochs"][-1]
            reached = " | ".join(_reached_text(run["reached"][str(t)]) for t in thresholds)
            timing = f"{last['wall_s']:.0f} s ({last['cpu_s']:.0f} CPU-s)"
            name = f"{run['preset']} ({run.get('precision', 'float32')})"
            out.append(f"| {name} | {last['epoch']} | {last['test_accuracy']:.2%} | {timing} | {reached} |")
        out.append("")
    out += precision_lines(report.get("precision"))
    if plot_path:
        relative = Path(plot_path).name if Path(plot_path).parent == Path(path).parent else plot_path
        out += [f"![Test accuracy against training seconds]({relative})", ""]
    out += [
        "### Latency: canvas to probabilities",
        "",
        "A 280x280 RGBA canvas through the MNIST-style preprocessing and a compiled forward pass.",
        "",
        "| model | median | p90 |",
        "| --- | --- | --- |",
    ]
    out += [f"| {key} | {value['median']} ms | {value['p90']} ms |" for key, value in report["latency_ms"].items()]
    out.append("")
    if "drawing_accuracy" in report:
        drawing = report["drawing_accuracy"]
        out += [
            "### Drawn digits",
            "",
            f"{drawing['digits']:,} test digits redrawn on a 280x280 canvas at random sizes (90 to 270 pixels), places and stroke "
            f"widths, scored by {drawing['model']}:",
            "",
            "| input | accuracy |",
            "| --- | --- |",
            f"| the clean 28x28 test digits | {drawing['clean_test_accuracy']:.2%} |",
            f"| redrawn, through MNIST Lab's preprocessing (fit 20x20, centre of mass) | {drawing['redrawn_with_mnist_preprocessing']:.2%} |",
            f"| redrawn, canvas simply shrunk to 28x28 | {drawing['redrawn_with_plain_resize']:.2%} |",
            "",
        ]
    out += _batch_norm_lines(report.get("batch_norm"))
    overhead = report["callback_overhead"]
    home = report["home_page"]
    out += [
        "### Other figures",
        "",
        f"- Live progress: one epoch of {overhead['model']} takes {overhead['epoch_s_with']} s with the progress listeners and "
        f"{overhead['epoch_s_without']} s without (medians, alternating order; a difference this size is the machine's noise). "
        f"Time spent in the progress hooks themselves: {overhead['hooks_s']} s per epoch, {overhead['hooks_percent']}% of the epoch.",
        f"- Home page: rendered in {home.get('seconds', '?')} s in a fresh process; TensorFlow imported: {home.get('tensorflow_imported')}.",
        f"- Peak memory of the benchmark process (both datasets loaded, models trained one after another): {report['peak_memory_mib']} MiB.",
    ]
    app = report.get("app", {})
    if "error" in app:
        out.append(f"- App measurements failed: {app['error']}")
    else:
        page, memory = app["convolutions_page"], app["memory"]
        out += [
            f"- Convolutions page with the {page['model']}: first render {page['first_render_s']} s (TensorFlow import, "
            f"model load, tracing), then {page['render_s_median']} s per interaction (median of 5).",
            f"- Serving process with one training ({memory['training']}) and {memory['sessions']} sessions open: peak "
            f"{memory['peak_mib']} MiB; copies of the dataset in memory: {memory['dataset_copies']}"
            + (f"; the worker process that trained peaked at {memory['worker_peak_mib']} MiB." if memory.get("worker_peak_mib") else "."),
        ]
    out += [
        f"- The whole benchmark took {report['total_seconds'] / 60:.1f} minutes.",
        "",
    ]
    return out


def app_lines(section: dict) -> list[str]:
    """The app as a class uses it: in-app training against the command line, and drawing latency."""
    cli, after = section["cli"], section.get("cli_after", {})
    alone, training, busy = section["drawing_alone"], section["training"], section["drawing_while_training"]
    preset = f"{section['preset']} on {DATASETS[section['dataset']].title}"
    return [
        "## The app with a class on it",
        "",
        "Measured with real browsers (Playwright, Debian's Chromium) against `streamlit run app.py` on this machine:",
        "",
        "```",
        section["command"],
        "```",
        "",
        "The browsers share this machine's two cores with the server (in a class they run on the students' own devices), "
        "so the CPU they use is given next to the server's. A student draws a stroke, waits for the answer, looks at it for "
        "three to six seconds and presses Clear.",
        "",
        "| part | what happened | figures |",
        "| --- | --- | --- |",
        f"| command line | {preset}, trained before and after the app parts | {cli['training_s']:.1f} s and "
        f"{after.get('training_s', float('nan')):.1f} s of training; yardstick {training['cli_s']} s |",
        f"| drawing alone | {alone['browsers']} browsers drawing for {alone['seconds']:.0f} s | {alone['drawings']} drawings, "
        f"{alone['answered']} answered; pen-up to prediction p50 {alone['p50_s']:.2f} s, p95 {alone['p95_s']:.2f} s; server "
        f"{alone['server_cpu_s']} CPU-s ({alone['server_cpu_s_per_drawing']:.3f} per drawing), browsers {alone.get('browsers_cpu_s', '?')} CPU-s |",
        f"| training in the app | one browser starts {preset} on the Train page and watches it, {training['browsers'] - 1} draw | "
        f"{training['in_app_s']} s of training, {training['ratio']:.2f}x the command line; {training['drawings']} drawings, "
        f"{training['answered']} answered, p95 {training['p95_s']:.2f} s; server {training['server_cpu_s']} CPU-s, browsers "
        f"{training.get('browsers_cpu_s', '?')} CPU-s in {training.get('seconds', '?')} s |",
        f"| drawing during a training | one browser trains and watches, {busy['browsers'] - 1} draw | {busy['drawings']} drawings, "
        f"{busy['answered']} answered; p50 {busy['p50_s']:.2f} s, p95 {busy['p95_s']:.2f} s (max {busy['max_s']:.2f} s); the "
        f"training took {busy['in_app_s']} s ({busy['ratio']:.2f}x) while the browsers used {busy.get('browsers_cpu_s', '?')} CPU-s |",
        "",
        "For comparison, issue 10 measured the app before trainings moved to worker processes: a training inside the web "
        "server ran 3-4x slower with one page watching (Streamlit reset Keras and collected all garbage after every page "
        "and fragment run), and the server spent about 1.5 CPU-seconds per drawing.",
        "",
    ]


def ray_lines(section: dict) -> list[str]:
    """Ray's overhead per training on this machine, and trainings per hour, here and in a lab (on paper)."""
    preset = f"{section['preset']} on {DATASETS[section['dataset']].title}, {section['epochs']} epoch(s), no target"

    def outside(name: str) -> float:
        """Median seconds of a run outside its training: queue, start, evaluation, the model coming back."""
        values = sorted(run["submit_to_done_s"] - run["training_s"] for run in section["runs"][name])
        return values[len(values) // 2]

    return [
        "## A computer lab as one cluster (Ray)",
        "",
        "Measured on this machine: the same training submitted through the job manager, alternately to one local worker "
        "process and to a local Ray cluster (`ray start --head` with 2 CPUs, token authentication on, the server joining "
        "it as a client), after one warm-up run each:",
        "",
        "```",
        section["command"],
        "```",
        "",
        "| backend | Submit to finished run (median) | training itself (median) | outside training (median) | trainings per hour, one place |",
        "| --- | --- | --- | --- | --- |",
        f"| worker processes | {section['local_s']} s | {section['local_training_s']} s | {outside('local'):.2f} s | "
        f"{section['trainings_per_hour_local']} |",
        f"| Ray | {section['ray_s']} s | {section['ray_training_s']} s | {outside('ray'):.2f} s | {section['trainings_per_hour_ray']} |",
        "",
        "Each run: "
        + "; ".join(f"{name} " + ", ".join(f"{run['submit_to_done_s']}" for run in runs) + " s" for name, runs in section["runs"].items())
        + ". The same training on the same machine varies by a third from one minute to the next, which is more than the "
        "difference between the backends; what Ray adds to each training is the time outside training.",
        "",
        f"Ray's overhead per training ({preset}): {section['overhead_percent']:+.1f}% of the time from Submit to the finished run. "
        f"On paper, a lab of {section['lab_pcs']} PCs like this one (2 CPUs each, one training each, "
        f"MNISTLAB_RAY_CPUS_PER_TRAINING=2) trains {section['lab_pcs']} at once: about {section['lab_trainings_per_hour_estimate']} "
        f"such trainings an hour, against {section['trainings_per_hour_local']} on this server alone.",
        "",
    ]


def classroom_lines(section: dict) -> list[str]:
    """A class drawing in class mode at once."""
    answer, save = section["answer"], section["save"]
    return [
        "## A class drawing for the class",
        "",
        "Measured with real browsers against `streamlit run app.py` on this machine (the browsers share its two cores with the server):",
        "",
        "```",
        section["command"],
        "```",
        "",
        f"{section['students']} students (separate browser contexts) joined by the link, went to the Draw page and drew at "
        "once, each drawing: a stroke, the class model's answer, Save for the class, one to three seconds' pause; the "
        "teacher's dashboard was open and refreshed itself.",
        "",
        "| figure | measured |",
        "| --- | --- |",
        f"| drawings made / saved in the database | {section['drawings_made']} / {section['drawings_saved']} |",
        f"| pen-up to the class model's answer | p50 {answer['p50_s']:.2f} s, p95 {answer['p95_s']:.2f} s, max {answer['max_s']:.2f} s |",
        f'| Save to "Saved" | p50 {save["p50_s"]:.2f} s, p95 {save["p95_s"]:.2f} s, max {save["max_s"]:.2f} s |',
        f"| server CPU | {section['server_cpu_s']} CPU-s in {section['seconds']} s: {section['server_cpu_s_per_drawing']:.3f} per saved drawing |",
        f"| browsers' CPU (on the students' devices in a class) | {section['browsers_cpu_s']} CPU-s |",
        f"| the dashboard showed every saved drawing | {'yes' if section['dashboard_showed_all'] else 'no'} |",
        "",
        f"The browsers used {section['browsers_cpu_s']} of the {section['machine_cores'] * section['seconds']:.0f} CPU-seconds this "
        f"machine had in those {section['seconds']} s, so the waits above are mostly the browsers' queue for the CPU; in a class "
        "each browser runs on its student's own device and the server's share is the figure that counts.",
        "",
    ]


def class_training_lines(section: dict) -> list[str]:
    """A class pressing Train at once, through the job manager."""
    names = {
        "lesson1": "lesson 1's step (dense network on clothes to 88%), the same settings",
        "lesson4": "lesson 4's fast-CNN step (clothes to 89%), the same settings",
        "variations": "their own variation of lesson 1's network (hidden size x learning rate)",
    }
    out = [
        "## A class pressing Train at once",
        "",
        "Measured through the app's job manager with the app's backend (worker processes, "
        f"{section['training_places']} training place(s)"
        + (f", on {machine_name(section['machine'])} with {section['machine']['cores']} cores" if "cpu" in section.get("machine", {}) else "")
        + "), every student pressing Train in the same second from their own "
        "thread, each with their own owner id; one run alone is the same training on a quiet server; each measurement has a "
        "fresh database and a warmed-up worker:",
        "",
        "```",
        section["command"],
        "```",
        "",
        "| students pressing Train | trainings | first result | median | last | one run alone | last / alone |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, scenario in section["scenarios"].items():
        out.append(
            f"| {scenario['students']} on {names.get(name, name)} | {scenario['trainings']} | {scenario['first_s']:.0f} s | "
            f"{scenario['median_s']:.0f} s | {scenario['last_s']:.0f} s | {scenario['alone_s']:.0f} s | {scenario['last_over_alone']:.2f}x |"
        )
    packed, variations = section["packed"], section["scenarios"].get("variations", {})
    out += [
        "",
        "Students with the same settings follow one training (trainings are seeded and deterministic); different dense "
        "networks that read the same batches train packed, one pass over each batch for all of them. For the variations, "
        "one run alone is the median of each network's own time when the same networks train one after another "
        f"({', '.join(f'{value:.0f}' for value in variations.get('alone_each_s', []))} s); one after another they took "
        f"{variations.get('one_by_one_s', float('nan')):.0f} s in all, {variations.get('speed_up', float('nan')):.1f}x the packed time. "
        "Each stops at the lesson's target, and a network whose validation accuracy ends an epoch a hair either side of "
        "it trains another number of epochs packed than alone (epochs packed "
        f"{variations.get('epochs_packed')}, alone {variations.get('epochs_alone')}).",
        "",
        "A lone dense network trains with the pack engine (a pack of one), which made it much faster than Keras' own `fit`: "
        "the variations alone with `fit` took "
        + ", ".join(f"{value:.0f}" for value in variations.get("keras_fit_alone_each_s", []))
        + f" s (median {variations.get('keras_fit_alone_s', float('nan')):.0f} s), so the class's last result came "
        f"{variations.get('last_over_keras_fit_alone', float('nan')):.2f}x that. Packing cannot win back as much against a "
        "pack of one: twelve networks' forward and backward passes are then most of each step's time.",
        "",
        f"Packed against one by one, the same {packed['networks']} networks ({', '.join(section['variations'])}) for a fixed "
        f"{packed['epochs']} epochs with no target, so both ways do the same work: all results after {packed['packed_s']:.0f} s "
        f"packed against {packed['one_by_one_s']:.0f} s one after another, **{packed['speed_up']:.1f}x**; test accuracy packed "
        + ", ".join(f"{value:.2%}" for value in packed["packed_accuracy"])
        + "; alone "
        + ", ".join(f"{value:.2%}" for value in packed["alone_accuracy"])
        + f" (largest gap {packed['largest_gap_points']:.2f} points: a lone dense network trains as a pack of one, and its "
        "part of a pack's step is the same computation, bit for bit).",
        *(
            [
                f"Each of these times, through the job manager, includes the {section['gather_seconds']:g} s a dense network waits "
                "for classmates pressing Train in the same moment (a lone one waits too): once packed, once per network one by one."
            ]
            if "gather_seconds" in section
            else []
        ),
        "",
        f"With Keras' own `fit`, one after another (how the server trained a lone network before packs of one, and how the "
        f"command line trains): {packed['keras_fit_one_by_one_s']:.0f} s, so packed is **{packed['speed_up_over_keras_fit']:.1f}x** "
        "faster; test accuracy "
        + ", ".join(f"{value:.2%}" for value in packed["keras_fit_accuracy"])
        + f" (largest gap to packed {packed['largest_gap_to_keras_fit_points']:.2f} points: the same algorithm, but another "
        "order of floating-point operations, which a few thousand steps at a high learning rate turn into a visibly different "
        "network).",
        "",
    ]
    return out


def precision_lines(compared: list[dict] | None) -> list[str]:
    """float32 against mixed bfloat16, per preset."""
    if not compared:
        return []
    out = [
        "### bfloat16 against float32",
        "",
        "Each preset trained in both number formats with the same seeds, alternating which goes first (medians of "
        f"{compared[0]['repeats']} runs); the app trains a preset in bfloat16 where it is faster and as accurate:",
        "",
        "| preset | data | float32: final test accuracy, s per epoch | bfloat16: final test accuracy, s per epoch | gap | speed-up | the app uses |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for entry in compared:
        f32, bf16 = entry["float32"], entry["mixed_bfloat16"]
        out.append(
            f"| {entry['preset']} | {DATASETS[entry['dataset']].title} | {f32['final_test_accuracy']:.2%}, {f32['epoch_s']} s | "
            f"{bf16['final_test_accuracy']:.2%}, {bf16['epoch_s']} s | {entry['gap_points']:+.2f} points | {entry['speed_up']:.2f}x | "
            f"{entry['app_uses']} |"
        )
    return [*out, ""]


def explain_lines(section: dict) -> list[str]:
    """How fast Inside the answer answers."""
    names = {
        "heat_map": "heat map (Grad-CAM) of a drawing",
        "break_it": f"Break it: switch off 8 filters, shake the weights, score {section['break_images']:,} test images and the drawing",
        "fool": "fool it within a budget of 0.3 per pixel (gradient steps)",
        "fool_few_pixels": "fool it with a few pixels",
        "pca_map": f"PCA map of {section['map_images']:,} test images",
        "imagine_class": "what it imagines for a class",
    }
    out = [
        "## Inside the answer",
        "",
        f"{section['preset']} trained on the digits ({section['data_source']}; test accuracy {section['test_accuracy']:.2%}), loaded "
        "as the server loads it; test digits stand in for students' drawings:",
        "",
        "```",
        section["command"],
        "```",
        "",
        "| action | first call (tracing) | then, median | slowest |",
        "| --- | --- | --- | --- |",
    ]
    for key, name in names.items():
        figure = section["figures"][key]
        out.append(f"| {name} | {figure['first_s']:.2f} s | {figure['median_s']:.3f} s | {figure['max_s']:.3f} s |")
    fooled = section["fooled"]
    out += [
        f"| t-SNE map of {section['map_images']:,} test images | {section['figures']['tsne_map']['seconds']:.1f} s, once per model for "
        "everyone | | |",
        "",
        f"Fooled within 0.3 per pixel: {fooled['fooled']} of {fooled['tried']} test digits into the digit three above their own.",
        "",
    ]
    return out


def class_browsers_lines(section: dict) -> list[str]:
    """A class pressing Train at once in real browsers, each with a network of their own."""
    statuses = ", ".join(f"{count} {status}" for status, count in sorted(section["database_statuses"].items()))
    return [
        "## A class pressing Train at once in real browsers",
        "",
        f"{section['students']} Chromium contexts (each its own cookie) on one app server started as the README starts it, each "
        f"opening lesson 1's Train link with a network of its own ({section['networks']}), all pressing Train "
        + ("in the same second" if not section["spread_s"] else f"at random moments over {section['spread_s']:g} s")
        + "; every tab stays open and waits on its own page for its run's end"
        + (f" (on {machine_name(section['machine'])}, {section['machine']['cores']} cores)" if "machine" in section else "")
        + ":",
        "",
        "```",
        section["command"],
        "```",
        "",
        "| figure | measured |",
        "| --- | --- |",
        f"| runs that finished / failed / cancelled / interrupted / no result | {section['finished']} / {section['failed']} / "
        f"{section['cancelled']} / {section['interrupted']} / {section['no_result']} |",
        f"| cancelled as abandoned while the tab was open | {section['cancelled_as_abandoned']} |",
        f"| the runs database afterwards | {statuses} |",
        f"| press to result: first, median, last | {section['first_result_s']:.0f} s, {section['median_result_s']:.0f} s, "
        f"{section['last_result_s']:.0f} s |",
        f"| server process: peak memory, CPU | {section['server_peak_mb']} MB, {section['server_cpu_s']} CPU-s |",
        f"| training workers: peak memory | {section['workers_peak_mb']} MB |",
        f"| browsers' CPU (on the students' devices in a class) | {section['browsers_cpu_s']} CPU-s |",
        f'| "fragment ... does not exist anymore" lines in the server\'s log | {section["fragment_warnings"]} |',
        "",
        f"The browsers used {section['browsers_cpu_s']:.0f} of the {section['machine_cores'] * section['seconds']:.0f} CPU-seconds "
        f"this machine had in those {section['seconds']:.0f} s, beside the trainings; in a class each browser runs on its "
        "student's own device. A page whose reruns fall behind under such load no longer loses its run: a run is cancelled "
        "as abandoned only when its browser has no page of the app connected.",
        "",
    ]


SECTION_WRITERS: dict = {
    "app": app_lines,
    "classroom": classroom_lines,
    "class-training": class_training_lines,
    "class-browsers": class_browsers_lines,
    "explain": explain_lines,
    "ray": ray_lines,
}


def write_markdown(report: dict, path: str, plot_path: str | None = None, results_path: str = "docs/benchmark.json") -> None:
    """docs/PERFORMANCE.md: the goals table, then every section the report has (from `results_path`)."""
    out = [
        "# Performance",
        "",
        "Every figure here was measured by a benchmark script (`python -m benchmarks ...`); each section names the command "
        f"that measured it. Raw figures: {results_path}.",
        "",
    ]
    out += goal_lines(report)
    writers = {"training": lambda section: training_lines(section, path, plot_path), **SECTION_WRITERS}
    for name, writer in writers.items():
        if name not in report:
            continue
        try:
            out += writer(report[name])
        except (KeyError, TypeError, ValueError) as missing:
            note = f"(This section's figures are incomplete ({missing!r}): measure it again with `python -m benchmarks {name}`.)"
            out += [f"## {name}", "", note, ""]
    for name, section in report.items():
        if name not in writers and isinstance(section, dict):
            out += plain_section_lines(name, section)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(out))


def plain_section_lines(name: str, section: dict) -> list[str]:
    """A section without a page of its own: its command, its machine, and each figure as measured."""
    lines = [f"## {name}", "", f"Measured with `{section.get('command', 'python -m benchmarks ' + name)}`."]
    machine = section.get("machine")
    if isinstance(machine, dict):
        lines.append(f"Machine: {machine.get('cpu', '?')}, {'with' if machine.get('bfloat16') else 'without'} bfloat16 instructions.")
    lines.append("")
    for key, value in section.items():
        if key not in ("command", "machine"):
            lines.append(f"- {key}: {json.dumps(value, ensure_ascii=False, default=str)}")
    return [*lines, ""]


def plot(report: dict, path: str) -> None:
    """Test accuracy against training wall seconds, one panel per dataset (from the training section)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name for name in DATASETS if any(run["dataset"] == name for run in report["runs"])]
    figure, axes = plt.subplots(1, len(names), figsize=(6.5 * len(names), 4.5), squeeze=False)
    for axis, name in zip(axes[0], names):
        for run in (run for run in report["runs"] if run["dataset"] == name):
            seconds = [epoch["wall_s"] for epoch in run["epochs"]]
            accuracy = [epoch["test_accuracy"] for epoch in run["epochs"]]
            axis.plot(seconds, accuracy, marker="o", markersize=3, label=run["preset"])
        for threshold in THRESHOLDS[name]:
            axis.axhline(threshold, color="grey", linestyle=":", linewidth=1)
        axis.set_ylim(min(THRESHOLDS[name]) - 0.1, 1.0 if name == "mnist" else 0.95)
        axis.set_xlabel("training seconds (wall)")
        axis.set_ylabel("test accuracy")
        axis.set_title(DATASETS[name].title)
        axis.grid(alpha=0.3)
        axis.legend(loc="lower right")
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
