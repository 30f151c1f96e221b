"""`python -m benchmarks SECTION`: measure one part of MNIST Lab and update the performance report.

Sections:
  training    time to accuracy of each preset, latency, progress hooks, batch normalisation, home page, memory
  app         the app as a class uses it: in-app training against the command line, drawing latency (real browsers)
  classroom   25 students drawing in class mode at once
  class-training  a class pressing Train at once: the same step, a CNN step, own variations, packed against one by one
  first-visit the first students after a server starts, against the next ones (real browsers)
  inside-controls  how fast Inside the answer's controls answer in a real browser
  explain     how fast Inside the answer answers: heat map, Break it, fooling, the maps, imagining
  ray         trainings per hour with worker processes and with a local Ray cluster
  report      rewrite docs/PERFORMANCE.md from docs/benchmark.json without measuring anything

Each measuring section replaces its own part of the results file (--results, default
docs/benchmark.json) and, with --report, rewrites the Markdown page from all parts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

DEFAULT_RESULTS = "docs/benchmark.json"
DEFAULT_PLOT = "docs/accuracy_vs_time.png"


def load_results(path: str) -> dict:
    file = Path(path)
    return json.loads(file.read_text()) if file.is_file() else {}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    sections = parser.add_subparsers(dest="section", required=True)

    def common(sub):
        sub.add_argument("--results", default=DEFAULT_RESULTS, help="the JSON results file to update (default: %(default)s)")
        sub.add_argument("--no-save", action="store_true", help="measure and print, but do not update the results file")
        sub.add_argument("--report", default=None, help="rewrite this Markdown page from the results (e.g. docs/PERFORMANCE.md)")
        sub.add_argument("--json", action="store_true", help="print this section's figures as one JSON document")
        sub.add_argument("--quick", action="store_true", help="a smoke run: small and short, figures not meaningful")

    training = sections.add_parser("training", help="time to accuracy and the other training figures")
    common(training)
    training.add_argument("--dataset", default=None, help="only this dataset (or several, comma separated)")
    training.add_argument("--preset", default=None, help="only this preset (or several, comma separated)")
    training.add_argument("--repeats", type=int, default=1, help="repeat each training run and report medians")
    training.add_argument("--mnist-test-dir", default=None, help="the official MNIST test set (IDX files) to score digits on")
    training.add_argument("--plot", default=None, help="write the accuracy-against-seconds plot here (PNG)")
    training.add_argument(
        "--compare-precision", action="store_true", help="train every preset in float32 and in bfloat16 too (on a CPU that has bfloat16)"
    )
    training.add_argument("--merge-runs", action="store_true", help="keep the earlier runs of presets not measured now")

    app = sections.add_parser("app", help="in-app training against the command line, and drawing latency, with real browsers")
    common(app)
    app.add_argument("--dataset", default="fashion_mnist")
    app.add_argument("--preset", default="fast_cnn")
    app.add_argument("--sessions", type=int, default=5, help="browser sessions open while the app trains (one watches, the rest draw)")
    app.add_argument("--drawers", type=int, default=8, help="browsers drawing at once in the drawing-latency parts")
    app.add_argument("--seconds", type=float, default=60, help="how long the drawing-only part lasts")

    classroom = sections.add_parser("classroom", help="students drawing in class mode at once")
    common(classroom)
    classroom.add_argument("--students", type=int, default=25)
    classroom.add_argument("--drawings", type=int, default=8, help="drawings each student makes")

    class_training = sections.add_parser("class-training", help="a class pressing Train at once, through the job manager")
    common(class_training)

    class_browsers = sections.add_parser("class-browsers", help="a class pressing Train at once in real browsers, each its own network")
    common(class_browsers)
    class_browsers.add_argument("--students", type=int, default=30)
    class_browsers.add_argument("--spread", type=float, default=0.0, help="presses at random moments over this many seconds (0: at once)")

    race = sections.add_parser("race-projector", help="a whole class's race on the projector: its dashboard's time and screenshots")
    common(race)
    race.add_argument("--students", type=int, default=25)
    race.add_argument(
        "--out", default=os.path.join(tempfile.gettempdir(), "mnistlab-race"), help="the folder for the screenshots (default: %(default)s)"
    )

    first_visit = sections.add_parser("first-visit", help="the first students after a server starts, against the next ones")
    common(first_visit)
    first_visit.add_argument(
        "--after", type=float, default=5.0, help="seconds between the server answering and the first student (default: %(default)s)"
    )
    first_visit.add_argument("--repeats", type=int, default=3, help="fresh servers to measure (medians)")

    inside_controls = sections.add_parser("inside-controls", help="how fast Inside the answer's controls answer in a real browser")
    common(inside_controls)
    inside_controls.add_argument("--repeats", type=int, default=5, help="times each control is measured (medians and slowest)")
    inside_controls.add_argument("--busy", action="store_true", help="keep one core busy meanwhile (another class's training)")
    inside_controls.add_argument(
        "--class-trains", type=int, default=0, help="a class of this many students trains lesson 1 meanwhile, again and again"
    )

    explain = sections.add_parser("explain", help="how fast Inside the answer answers on this server")
    common(explain)
    explain.add_argument("--preset", default="fast_cnn", help="the CNN preset to train on the digits and look inside")

    ray = sections.add_parser("ray", help="Ray's overhead per training and trainings per hour")
    common(ray)
    ray.add_argument("--dataset", default="fashion_mnist")
    ray.add_argument("--preset", default="fast_cnn")
    ray.add_argument("--repeats", type=int, default=3)

    report = sections.add_parser("report", help="rewrite the Markdown page from the results file")
    report.add_argument("--results", default=DEFAULT_RESULTS)
    report.add_argument("--report", default="docs/PERFORMANCE.md")
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    arguments = build_parser().parse_args(argv)
    results = load_results(arguments.results)
    try:
        if arguments.section == "training":
            from benchmarks import training

            arguments.previous = results.get("training")
            section = training.run(arguments)
            if arguments.plot:
                from benchmarks.report import plot

                plot(section, arguments.plot)
        elif arguments.section == "app":
            from benchmarks import app_load

            section = app_load.run(arguments)
        elif arguments.section == "classroom":
            from benchmarks import classroom_load

            section = classroom_load.run(arguments)
        elif arguments.section == "class-training":
            from benchmarks import class_training

            section = class_training.run(arguments)
        elif arguments.section == "class-browsers":
            from benchmarks import class_browsers

            section = class_browsers.run(arguments)
        elif arguments.section == "race-projector":
            from benchmarks import race_projector

            section = race_projector.run(arguments)
        elif arguments.section == "first-visit":
            from benchmarks import first_visit

            section = first_visit.run(arguments)
        elif arguments.section == "inside-controls":
            from benchmarks import inside_controls

            section = inside_controls.run(arguments)
        elif arguments.section == "explain":
            from benchmarks import explain_speed

            section = explain_speed.run(arguments)
        elif arguments.section == "ray":
            from benchmarks import ray_overhead

            section = ray_overhead.run(arguments)
        else:
            section = None
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if section is not None:
        results[arguments.section] = section
        if not arguments.no_save:
            Path(arguments.results).parent.mkdir(parents=True, exist_ok=True)
            Path(arguments.results).write_text(json.dumps(results, indent=1, default=str))
        if arguments.json:
            print(json.dumps(section, default=str))
        else:
            from benchmarks.report import section_summary

            print("\n".join(section_summary(arguments.section, section)))
    if arguments.report:
        from benchmarks.report import write_markdown

        # The plot of the default results; another results file (another machine's) has only the plot it is given.
        plot_path = arguments.plot if getattr(arguments, "plot", None) else None
        if plot_path is None and arguments.results == DEFAULT_RESULTS and Path(DEFAULT_PLOT).is_file():
            plot_path = DEFAULT_PLOT
        write_markdown(results, arguments.report, plot_path, arguments.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
