"""The command line: `python -m mnistlab serve | datasets | train | code | evaluate | predict | explain`.

Every command uses the same core as the web app. Bad input (an unknown dataset, a
target accuracy outside (0, 1], a missing file) prints one line starting with
"error:" and exits with status 2, without a traceback. A training whose network stopped
learning (a learning rate far too high) saves its model, prints a "warning:" line that
says why and what to try, and exits with status 3. With --json, standard output
is exactly one JSON document (an {"error": ...} object when the command fails); the
lines meant for people go to standard error. The benchmark lives outside the core:
`python -m benchmarks`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from mnistlab.datasets import DATASETS, OWN_IMAGES, load_dataset
from mnistlab.events import BatchProgress, EpochRecord, TrainingListener
from mnistlab.settings import SETTINGS, TrainingSettings, settings_from_texts


class ProgressBar(TrainingListener):
    """A text progress bar on standard error, redrawn at most ten times a second."""

    def __init__(self, stream=sys.stderr, width: int = 30):
        self.stream = stream
        self.width = width
        self._last_draw = 0.0

    def on_phase(self, phase: str) -> None:
        self.stream.write(f"{phase}...\n")
        self.stream.flush()

    def on_batch_end(self, progress: BatchProgress) -> None:
        now = time.monotonic()
        if now - self._last_draw < 0.1 and progress.batch != progress.batches_per_epoch:
            return
        self._last_draw = now
        filled = int(self.width * progress.batch / progress.batches_per_epoch)
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(
            f"\repoch {progress.epoch}/{progress.max_epochs} [{bar}] {progress.batch}/{progress.batches_per_epoch} "
            f"loss {progress.loss:.4f} accuracy {progress.accuracy:.4f} {progress.seconds:.0f}s"
        )
        self.stream.flush()

    def on_epoch_end(self, record: EpochRecord) -> None:
        validation = f" val_loss {record.val_loss:.4f} val_accuracy {record.val_accuracy:.4f}" if record.val_accuracy is not None else ""
        self.stream.write(f"\n  epoch {record.epoch}: loss {record.loss:.4f} accuracy {record.accuracy:.4f}{validation}\n")
        self.stream.flush()


def _print_json(payload: dict) -> None:
    print(json.dumps(payload, default=str))


def _say(arguments, text: str) -> None:
    """A line for people: on standard output, or on standard error when standard output carries JSON."""
    print(text, file=sys.stderr if getattr(arguments, "json", False) else sys.stdout)


def command_datasets(arguments) -> int:
    rows = []
    for name, info in DATASETS.items():
        try:
            dataset = load_dataset(name, data_dir=arguments.data_dir, allow_download=not arguments.offline)
        except ValueError as error:
            rows.append({"name": name, "title": info.title, "available": False, "error": str(error)})
            continue
        rows.append(
            {
                "name": name,
                "title": info.title,
                "available": True,
                "source": dataset.source.kind,
                "location": dataset.source.location,
                "is_sample": dataset.source.is_sample,
                "notice": dataset.source.notice,
                "train_images": int(len(dataset.y_train)),
                "test_images": int(len(dataset.y_test)),
                "classes": list(info.class_names),
            }
        )
    for row in rows:
        if row["available"]:
            sample = " (SAMPLE)" if row["is_sample"] else ""
            _say(arguments, f"{row['name']:14} {row['title']}: {row['train_images']:,} train / {row['test_images']:,} test{sample}")
            _say(arguments, f"{'':14} from {row['source']}: {row['location']}")
            if row["notice"]:
                _say(arguments, f"{'':14} note: {row['notice']}")
        else:
            _say(arguments, f"{row['name']:14} {row['title']}: NOT AVAILABLE. {row['error']}")
    if arguments.json:
        _print_json({"datasets": rows})
    return 0


def _cancel_on_interrupt(cancel: threading.Event) -> None:
    """The first Ctrl-C stops training after the current batch; a second one quits."""

    def handler(signum, frame):
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        sys.stderr.write("\nstopping after this batch (Ctrl-C again to quit)...\n")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)


# The training settings' flags come from the settings table (mnistlab.settings.SETTINGS): the same names, ranges and
# messages as the Train page and its links. The command line trains for the preset's epochs unless told a target.
CLI_DEFAULTS = {"target_accuracy": "off"}


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per training setting of the table, read as text and checked by the table."""
    for setting in SETTINGS:
        if not setting.cli_flag:
            continue
        metavar = setting.cli_flag.removeprefix("--").upper().replace("-", "_")
        described = _flag_help(setting)
        parser.add_argument(setting.cli_flag, dest=f"setting_{setting.name}", default=None, metavar=metavar, help=described)


def _flag_help(setting) -> str:
    if setting.kind == "choice":
        text = "one of: " + ", ".join(setting.choices)
    elif setting.kind == "network":
        text = "build your own network, e.g. conv32,conv64,dense128 (conv32: a 3x3 convolution with 32 filters and 2x2 pooling; dense128: 128 units)"
    elif setting.kind == "target":
        text = (
            f"stop once the watched accuracy reaches this fraction ({setting.low:g} to {setting.high:g}, or 90%%); leave it out to train every epoch"
        )
    elif setting.kind == "text":
        text = "a folder with the dataset's IDX files or .npz; used, or refused if it lacks them"
    else:
        text = setting.range_text()
        if setting.name == "train_size":
            text += " (default: all; a balanced part of the training images)"
        elif setting.name == "test_size":
            text += " (default: all)"
        elif setting.optional:
            text += " (default: the preset's recipe)"
    default = TrainingSettings().to_dict().get(setting.name)
    if setting.kind != "target" and default is not None and not setting.optional:
        text += f" (default: {setting.write(default)})"
    return text


def settings_from_arguments(arguments) -> TrainingSettings:
    """The training settings of the command's flags, checked by the settings table."""
    texts = {setting.name: getattr(arguments, f"setting_{setting.name}", None) for setting in SETTINGS if setting.cli_flag}
    for name, text in CLI_DEFAULTS.items():
        texts[name] = texts.get(name) or text
    return settings_from_texts(texts)


# `train`'s exit status when the network stopped learning (the model is saved all the same, and a warning says why).
STOPPED_LEARNING = 3


def command_train(arguments) -> int:
    from mnistlab.diagnosis import advice
    from mnistlab.precision import precision_for
    from mnistlab.store import ModelStore, check_name, metadata_for
    from mnistlab.training import train

    settings = settings_from_arguments(arguments)
    dataset = None
    if arguments.images:
        dataset, settings = _own_images(arguments, settings)
    elif arguments.test_images:
        raise ValueError("--test-images goes with --images (the training images, a folder per category).")
    out = Path(arguments.out) if arguments.out else None
    if out is not None:
        # Everything that would make the save fail is checked now, not after a long training.
        if out.suffix != ".keras":
            raise ValueError(f"--out must end in .keras, got {arguments.out}.")
        store = ModelStore(out.parent)
        check_name(out.name)
        if store.exists(out.stem) and not arguments.overwrite:
            raise ValueError(f"{out} already exists; add --overwrite to replace it, or choose another --out.")
        store.check_writable()
    cancel = threading.Event()
    _cancel_on_interrupt(cancel)
    listeners = [] if arguments.quiet else [ProgressBar()]
    precision = precision_for(settings.arch, settings.config.is_convolutional)
    trained = train(settings, dataset, listeners=listeners, cancel=cancel, precision=precision)
    result = trained.result
    print(result.describe_stop() + ".", file=sys.stderr)
    print(f"test accuracy {result.test_accuracy:.4f}, test loss {result.test_loss:.4f}", file=sys.stderr)
    saved_to = None
    if out is not None:
        stored = store.save(out.stem, trained.model, metadata_for(trained), overwrite=arguments.overwrite)
        saved_to = str(stored.path)
        print(f"saved to {saved_to}", file=sys.stderr)
    warning = advice(result, settings, len(trained.class_names))
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    if arguments.json:
        payload = result.to_dict()
        payload["saved_to"] = saved_to
        payload["target_reached_at"] = payload.pop("target_reached")
        payload["warning"] = warning
        payload["class_names"] = list(trained.class_names)
        _print_json(payload)
    return STOPPED_LEARNING if warning else 0


def _own_images(arguments, settings):
    """`train --images DIR [--test-images DIR]`: the set as a dataset (tested on a fifth of each category held out, or on
    the test images), and the settings that train on it; what was skipped is said."""
    from dataclasses import replace

    from mnistlab.image_sets import as_dataset, read_image_set

    if arguments.setting_dataset:
        raise ValueError("--images and --dataset each name the images to train on; give one of them.")
    found = read_image_set(Path(arguments.images))
    test = read_image_set(Path(arguments.test_images)) if arguments.test_images else None
    for sentence in [*found.skipped_sentences(), *(test.skipped_sentences() if test else [])]:
        _say(arguments, sentence)
    dataset = as_dataset(found, test, location=arguments.images, seed=settings.seed)
    counts = ", ".join(f"{name} {count}" for name, count in found.counts().items())
    _say(arguments, f"{len(found.labels):,} images in {len(found.class_names)} categories ({counts}); testing on {len(dataset.y_test):,}")
    return dataset, replace(settings, dataset=OWN_IMAGES)


def command_code(arguments) -> int:
    """The plain Keras code of a network and its training, as a script or a notebook."""
    from mnistlab.export import keras_code, notebook_text

    run_id = None
    if arguments.run is not None:
        from mnistlab.database import DatabaseUnavailableError, DatabaseVersionError
        from mnistlab.services import runs_for_reading

        run_number = _whole(arguments.run, "--run")
        try:
            snapshot = runs_for_reading().get(run_number)  # reads only: it never writes to the runs database
        except (DatabaseUnavailableError, DatabaseVersionError) as problem:
            raise ValueError(f"The runs database cannot be read: {problem}") from None
        if snapshot is None:
            raise ValueError(f"There is no run {arguments.run} in the runs database (MNISTLAB_DATA_HOME or MNISTLAB_DATABASE_URL).")
        settings, run_id = snapshot.settings, snapshot.run_id
    else:
        settings = settings_from_arguments(arguments)
    out = Path(arguments.out)
    if out.suffix not in (".py", ".ipynb"):
        raise ValueError(f"--out must end in .py or .ipynb, got {arguments.out}.")
    chosen = arguments.format or out.suffix.lstrip(".")
    if (chosen == "py" and out.suffix != ".py") or (chosen == "ipynb" and out.suffix != ".ipynb"):
        raise ValueError(f"--format {chosen} writes a .{chosen} file; --out {out.name} does not end so.")
    if out.exists() and not arguments.overwrite:
        raise ValueError(f"{out} already exists; add --overwrite to replace it.")
    text = keras_code(settings, run_id=run_id) if chosen == "py" else notebook_text(settings, run_id=run_id)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    except OSError as error:
        raise ValueError(f"{out} cannot be written: {error.strerror or error}.") from None
    _say(arguments, f"wrote {out}")
    if arguments.json:
        _print_json({"out": str(out), "format": chosen, "run": run_id, "settings": settings.to_dict()})
    return 0


def _load_with_metadata(path: str, dataset_option: str | None):
    """The model, the dataset its classes come from, its class names and its normalisation (metadata checked). A model
    of one's own images names its categories in its metadata."""
    from mnistlab.store import load_model_file, read_metadata

    model = load_model_file(path)
    metadata, problem = read_metadata(Path(path).with_suffix(".json"))
    if problem and not dataset_option:
        raise ValueError(f"{Path(path).with_suffix('.json')}: {problem} (or name the dataset with --dataset to use the model anyway)")
    if problem:
        metadata = {}  # wrong metadata is ignored, not half used
    dataset = dataset_option or metadata.get("dataset") or "mnist"
    if dataset == OWN_IMAGES and not dataset_option:
        return model, dataset, tuple(metadata["class_names"]), metadata.get("normalization", "divide_255")
    if dataset not in DATASETS:
        raise ValueError(f"Unknown dataset {dataset!r}. Choose one of: {', '.join(DATASETS)}.")
    return model, dataset, DATASETS[dataset].class_names, metadata.get("normalization", "divide_255")


def _images_as_test_set(folder: str, class_names: tuple[str, ...]):
    """A folder (or zip) per category as a test set for a model with these class names; its labels are the model's."""
    import numpy as np

    from mnistlab.image_sets import read_image_set

    found = read_image_set(Path(folder))
    unknown = [name for name in found.class_names if name not in class_names]
    if unknown:
        raise ValueError(f"{folder}: the model does not know the categories {', '.join(unknown)}; it knows {', '.join(class_names)}.")
    mapping = np.asarray([class_names.index(name) for name in found.class_names])
    return found, mapping[found.labels]


def command_evaluate(arguments) -> int:
    from mnistlab.evaluation import evaluate

    model, dataset_name, class_names, normalization = _load_with_metadata(arguments.model, arguments.dataset)
    if arguments.images:
        found, labels = _images_as_test_set(arguments.images, class_names)
        images, source, title = found.images, f"your own images: {arguments.images}", "Your images"
        for sentence in found.skipped_sentences():
            _say(arguments, sentence)
    else:
        if dataset_name == OWN_IMAGES:
            raise ValueError("This model was trained on a set of your own images: give its test images with --images DIR.")
        dataset = load_dataset(dataset_name, data_dir=arguments.data_dir)
        images, labels, source, title = dataset.x_test, dataset.y_test, dataset.source.describe(), f"{dataset.info.title} test set"
    evaluation = evaluate(model, images, labels, normalization, class_names)
    _say(arguments, f"{title} ({len(labels):,} images, {source})")
    _say(arguments, f"accuracy {evaluation.accuracy:.4f}, loss {evaluation.loss:.4f}")
    for name, accuracy in zip(class_names, evaluation.per_class_accuracy):
        _say(arguments, f"  {name:12} {accuracy:.4f}")
    if arguments.json:
        _print_json(
            {
                "model": arguments.model,
                "dataset": dataset_name,
                "data_source": source,
                "test_images": int(len(labels)),
                "test_accuracy": evaluation.accuracy,
                "test_loss": evaluation.loss,
                "per_class_accuracy": dict(zip(class_names, map(float, evaluation.per_class_accuracy))),
            }
        )
    return 0


def command_predict(arguments) -> int:
    from mnistlab.inference import Predictor
    from mnistlab.preprocessing import load_image_file

    model, dataset_name, class_names, normalization = _load_with_metadata(arguments.model, arguments.dataset)
    predictor = Predictor(model, normalization, class_names)
    results = []
    for path in arguments.images:
        prediction = predictor.predict_image(load_image_file(path))
        row = {"image": path, **prediction.to_dict()}
        results.append(row)
        if prediction.is_empty:
            _say(arguments, f"{path}: empty image (no ink found)")
            continue
        ranked = sorted(row["probabilities"].items(), key=lambda item: -item[1])[:3]
        others = ", ".join(f"{name} {p:.1%}" for name, p in ranked[1:])
        _say(arguments, f"{path}: {prediction.top_name} ({prediction.confidence:.1%}); next: {others}")
    if arguments.json:
        _print_json({"model": arguments.model, "dataset": dataset_name, "predictions": results})
    return 0


def _whole(text: str, flag: str) -> int:
    if not str(text).strip().lstrip("-").isdigit():
        raise ValueError(f"{flag} must be a whole number, not {str(text)[:40]!r}.")
    return int(text)


def _fraction(text: str, flag: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{flag} must be a number from 0 to 1 (0.3 is 30%), not {str(text)[:40]!r}.") from None
    if not 0 < value <= 1:
        raise ValueError(f"{flag} must be above 0 and at most 1 (0.3 is 30%), not {value:g}.")
    return value


def command_explain(arguments) -> int:
    """Why a model answered for an image, and the smallest change that makes it answer another digit."""
    import numpy as np

    # Bad input is said before TensorFlow's import, which takes seconds.
    budget = _fraction(arguments.budget, "--budget")
    chosen = None if arguments.target is None else _whole(arguments.target, "--target")
    if chosen is not None and not 0 <= chosen <= 9:
        raise ValueError(f"--target is a class number from 0 to 9, not {chosen}.")

    from mnistlab.explain import Inspector
    from mnistlab.preprocessing import load_image_file, preprocess

    model, _dataset_name, names, normalization = _load_with_metadata(arguments.model, arguments.dataset)
    prepared = preprocess(load_image_file(arguments.image))
    if prepared.is_empty:
        raise ValueError(f"{arguments.image}: the image is empty (no ink found).")
    if chosen is not None and chosen >= len(names):
        raise ValueError(f"--target is a class number from 0 to {len(names) - 1} for this model, not {chosen}.")
    inspector = Inspector(model, normalization)
    probabilities = inspector.probabilities(prepared.image)[0]
    answer = int(np.argmax(probabilities))
    target = int(np.argsort(probabilities)[-2]) if chosen is None else chosen
    fooled = inspector.fool(prepared.image, target, budget)
    saliency = inspector.saliency(prepared.image)
    _say(arguments, f"{arguments.image}: {names[answer]} ({probabilities[answer]:.1%})")
    verdict = "fooled" if fooled.reached else "not fooled"
    _say(
        arguments,
        f"towards {names[target]}: {verdict}, it says {names[fooled.new_answer]} ({fooled.new_confidence:.1%}); "
        f"largest change {fooled.linf:.3f}, {fooled.pixels_changed} pixels changed",
    )
    if arguments.json:
        _print_json(
            {
                "model": arguments.model,
                "image": arguments.image,
                "answer": answer,
                "answer_name": names[answer],
                "probabilities": [round(float(value), 6) for value in probabilities],
                "saliency": np.round(saliency, 4).tolist(),
                "saliency_method": "grad-cam" if inspector.is_convolutional else "gradient x input",
                "fooling": {**fooled.to_dict(), "budget": budget},
            }
        )
    return 0


def command_serve(arguments) -> int:
    """Start the app (as the README's run command does), after printing the address students open."""
    from mnistlab.config import ServerConfig
    from mnistlab.serving import serve_command, student_address

    port = _port(arguments.port)
    command = serve_command(port, arguments.address)
    print(f"MNIST Lab: students open {student_address(port, ServerConfig.from_environment().public_url)}", file=sys.stderr)
    print(f"MNIST Lab: on this computer, open http://localhost:{port}", file=sys.stderr)
    sys.stderr.flush()
    os.execv(sys.executable, command)  # noqa: S606 (our interpreter, our fixed arguments: the process becomes the server)
    return 0  # not reached: the process is Streamlit's now


def _port(text) -> int:
    try:
        port = int(str(text))
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise ValueError(f"A port is a whole number from 1 to 65535, not {str(text)!r}.")
    return port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mnistlab",
        description="MNIST Lab: train and test digit and clothes classifiers.",
        epilog="Bad input prints one 'error:' line and exits with status 2. With --json, standard output is exactly one JSON document.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="start the app, and print the address students open")
    serve.add_argument("--port", default="8501", help="the port to listen on (default: 8501)")
    serve.add_argument("--address", default=None, help="the address to listen on (default: every address of this machine)")
    serve.set_defaults(handler=command_serve)

    datasets = commands.add_parser("datasets", help="list the datasets and where each would load from")
    datasets.add_argument("--data-dir", help="a folder with the IDX files or a Keras .npz (also MNISTLAB_DATA_DIR)")
    datasets.add_argument("--offline", action="store_true", help="do not try to download")
    datasets.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    datasets.set_defaults(handler=command_datasets)

    train = commands.add_parser("train", help="train a model until it reaches a target accuracy")
    add_settings_flags(train)
    train.add_argument("--images", default=None, help="train on your own images: a folder or zip with one folder of PNG or JPEG images per category")
    train.add_argument(
        "--test-images", default=None, help="with --images: test on these (a folder per category); default: a fifth of --images held out"
    )
    train.add_argument("--out", default=None, help="save the model here (a .keras path; metadata goes next to it); checked before training")
    train.add_argument("--overwrite", action="store_true", help="replace the --out model if it exists")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    train.set_defaults(handler=command_train)

    code = commands.add_parser("code", help="write the plain Keras code of a training, as a script or a Jupyter notebook")
    add_settings_flags(code)
    code.add_argument("--run", default=None, help="the code of this run of the runs database (its settings) instead of the flags")
    code.add_argument("--format", choices=["py", "ipynb"], default=None, help="py (a script) or ipynb (a notebook); default: --out's ending")
    code.add_argument("--out", required=True, help="the .py or .ipynb file to write")
    code.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    code.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    code.set_defaults(handler=command_code)

    evaluate = commands.add_parser("evaluate", help="evaluate a saved model on its test set")
    evaluate.add_argument("--model", required=True, help="a .keras file")
    evaluate.add_argument("--dataset", default=None, help="default: the dataset recorded with the model")
    evaluate.add_argument("--data-dir", default=None)
    evaluate.add_argument("--images", default=None, help="evaluate on your own images: a folder or zip with one folder per category")
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(handler=command_evaluate)

    explain = commands.add_parser("explain", help="why a model answered for an image, and the smallest change that fools it")
    explain.add_argument("--model", required=True, help="a .keras file")
    explain.add_argument("image", help="a PNG or JPEG of one digit")
    explain.add_argument("--target", default=None, help="the digit to make it answer (default: its second choice)")
    explain.add_argument("--budget", default="0.3", help="how much any pixel may change, 0 to 1 (default: 0.3)")
    explain.add_argument("--dataset", default=None, help="for class names; default: the one recorded with the model")
    explain.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    explain.set_defaults(handler=command_explain)

    predict = commands.add_parser("predict", help="predict the class of PNG/JPEG images")
    predict.add_argument("--model", required=True, help="a .keras file")
    predict.add_argument("--dataset", default=None, help="for class names; default: the one recorded with the model")
    predict.add_argument("images", nargs="+", help="PNG or JPEG files, any size, light on dark or dark on light")
    predict.add_argument("--json", action="store_true")
    predict.set_defaults(handler=command_predict)

    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    arguments = build_parser().parse_args(argv)
    try:
        return arguments.handler(arguments)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        if getattr(arguments, "json", False):
            _print_json({"error": str(error)})
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
