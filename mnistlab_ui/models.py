"""Which models a page can use, loaded once per server and shared read-only by every session.

A browser sees its own runs' models, the quick models the server trained for
everyone, and the saved models of the store. Models that cannot be used (a damaged
file, a layer that carries code, metadata with the wrong class names) are listed
apart with their reason and never chosen. A model file is loaded (safe mode) and its
forward pass traced once per server process, then every session uses that copy.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from mnistlab.datasets import DATASETS
from mnistlab.events import STOP_CANCELLED
from mnistlab.i18n import _, ngettext, percent
from mnistlab.inference import LoadedModel, load_for_inference
from mnistlab.models import PRESETS
from mnistlab.runs import FINISHED, RunSnapshot
from mnistlab.settings import quick_model_settings, recipe_key
from mnistlab_ui.identity import browser_owner
from mnistlab_ui.server import lab
from mnistlab_ui.session import MODEL_PICKED, SELECTED_MODEL
from mnistlab_ui.text import plain

# Problems found when a model was loaded: {(path, modified_ns): reason}. Shared: a file that
# cannot be loaded cannot be loaded for anyone.
_load_problems: dict[tuple[str, int], str] = {}
_problems_lock = threading.Lock()


@dataclass(frozen=True)
class ModelChoice:
    """A model a page can use: a run of this browser, a shared quick model, or a saved one."""

    key: str
    label: str
    kind: str  # "run", "quick" or "saved"
    path: Path
    dataset: str | None
    class_names: tuple[str, ...]
    normalization: str
    problem: str | None = None
    convolutional: bool | None = None  # None: not known (a saved network of one's own)
    complete: bool = True  # False: stopped by its student before it finished

    @property
    def usable(self) -> bool:
        return self.problem is None

    @property
    def file_key(self) -> tuple[str, int]:
        try:
            return str(self.path), self.path.stat().st_mtime_ns
        except OSError:
            return str(self.path), 0


def _accuracy_text(accuracy) -> str:
    return _("test accuracy {accuracy}").format(accuracy=percent(accuracy)) if isinstance(accuracy, (int, float)) else ""


RUN, QUICK, SAVED = "run", "quick", "saved"


def choice_key(kind: str, name: str | int) -> str:
    """The one spelling of a model choice's key: "run-8", "quick-3", "saved-digits-cnn"."""
    return f"{kind}-{name}"


QUICK_CLASS_MODEL = "quick:"  # a class model that is a quick model: "quick:RUN" (a saved model's name has no colon)


def class_model_key(model_name: str | None) -> str | None:
    """The choice key of a class's model (a saved model, or a server's quick model)."""
    if not model_name:
        return None
    if model_name.startswith(QUICK_CLASS_MODEL):
        return choice_key(QUICK, model_name.removeprefix(QUICK_CLASS_MODEL))
    return choice_key(SAVED, model_name)


def run_choice(snapshot: RunSnapshot, kind: str = RUN) -> ModelChoice:
    """A run's model as a choice (a run of this browser, or the server's quick model)."""
    result, settings = snapshot.result, snapshot.settings
    dataset = settings.dataset
    accuracy = _accuracy_text(result.test_accuracy) if result is not None else ""
    if kind == QUICK:
        label = _("Quick model for {dataset}, trained on this server for everyone ({accuracy})").format(
            dataset=_(DATASETS[dataset].title), accuracy=accuracy
        )
    else:
        label = _("Your run {run}: {title} ({accuracy})").format(run=snapshot.run_id, title=snapshot.title, accuracy=accuracy)
    return ModelChoice(
        choice_key(kind, snapshot.run_id),
        label,
        kind,
        snapshot.model_path,
        dataset,
        DATASETS[dataset].class_names,
        settings.normalization,
        convolutional=settings.config.is_convolutional,
        complete=snapshot.status == FINISHED and (result is None or result.stop_reason != STOP_CANCELLED),
    )


def model_choices() -> list[ModelChoice]:
    """This browser's runs with a model (newest first), the quick models, then the saved models."""
    own = [
        run_choice(snapshot, RUN)
        for snapshot in lab().jobs.runs_of(browser_owner())
        if snapshot.has_model and snapshot.model_path.is_file() and not snapshot.on_own_set
    ]
    return _with_load_problems(own + shared_choices())


def shared_choices() -> list[ModelChoice]:
    """The models every browser sees: the quick models, then the saved models."""
    services = lab()
    choices = []
    for dataset in DATASETS:
        quick = services.runs.latest_shared(recipe_key(quick_model_settings(dataset)))
        if quick is not None and quick.has_model and quick.model_path.is_file():
            choices.append(run_choice(quick, QUICK))
    for stored in services.models.list():
        label = _("Saved: {description}").format(description=stored.describe())
        arch = stored.metadata.get("arch") if stored.usable else None
        choices.append(
            ModelChoice(
                choice_key(SAVED, stored.name),
                label,
                SAVED,
                stored.path,
                stored.dataset,
                stored.class_names,
                stored.normalization,
                stored.problem,
                convolutional=PRESETS[arch].config_for(stored.dataset or "mnist").is_convolutional if arch in PRESETS else None,
                complete=stored.metadata.get("stop_reason") != STOP_CANCELLED if stored.usable else True,
            )
        )
    return _with_load_problems(choices)


def _with_load_problems(choices: list[ModelChoice]) -> list[ModelChoice]:
    with _problems_lock:
        return [
            choice
            if choice.problem or choice.file_key not in _load_problems
            else ModelChoice(**{**choice.__dict__, "problem": _load_problems[choice.file_key]})
            for choice in choices
        ]


@st.cache_resource(max_entries=32, show_spinner=False)
def _load(path: str, modified_ns: int, normalization: str, class_names: tuple[str, ...]) -> LoadedModel:
    return load_for_inference(path, normalization, class_names)


def load_choice(choice: ModelChoice) -> LoadedModel:
    """The shared loaded model of a choice; a model that fails to load raises ValueError and is marked unusable."""
    if choice.problem:
        raise ValueError(choice.problem)
    path, modified = choice.file_key
    try:
        return _load(path, modified, choice.normalization, choice.class_names)
    except ValueError as problem:
        with _problems_lock:
            _load_problems[(path, modified)] = str(problem).removeprefix(f"{path}: ")
        raise


def default_choice(choices: list[ModelChoice], prefer_dataset: str | None, needs_convolution: bool = False) -> ModelChoice | None:
    """The model a page starts with: the one the student picked in a model box, if still usable; else the one the Train
    page last showed if it serves this page; else the newest that serves it (its dataset, convolutions where the page
    shows them, trained to its end, not stopped), then any usable one."""
    usable = [choice for choice in choices if choice.usable]

    def serves(choice: ModelChoice) -> bool:
        return (prefer_dataset is None or choice.dataset == prefer_dataset) and (not needs_convolution or choice.convolutional is not False)

    current = SELECTED_MODEL.get()
    for choice in usable:
        if choice.key == current and (MODEL_PICKED.get() or (serves(choice) and choice.complete)):
            return choice
    ranked = sorted(usable, key=lambda choice: (not serves(choice), not choice.complete))  # stable: newest first within a rank
    return ranked[0] if ranked else None


def warm_shared_models() -> list[ModelChoice]:
    """Load, once for the server, the model each dataset's pages open with for a browser without runs of its own (the
    newest quick model, else the first saved one, as `default_choice` ranks them); returns those loaded. Called by the
    warm-up as the server starts, so the first Draw page does not wait for a model file."""
    usable = [choice for choice in shared_choices() if choice.usable and choice.complete]
    loaded = []
    for dataset in DATASETS:
        first = next((choice for choice in usable if choice.dataset == dataset), None)
        if first is not None:
            try:
                load_choice(first)
            except ValueError:
                continue  # marked unusable: the page says why
            loaded.append(first)
    return loaded


def model_picker(label: str, prefer_dataset: str | None = None, needs_convolution: bool = False) -> ModelChoice | None:
    """A select box of the usable models (the choice is shared by the pages), and a note on the unusable ones."""
    choices = model_choices()
    usable = [choice for choice in choices if choice.usable]
    unusable = [choice for choice in choices if not choice.usable]
    picked = None
    if usable:
        by_key = {choice.key: choice for choice in usable}
        keys = list(by_key)
        default = default_choice(choices, prefer_dataset, needs_convolution)
        key = st.selectbox(label, keys, index=keys.index(default.key), format_func=lambda key: by_key[key].label)
        if key != default.key:
            MODEL_PICKED.set(True)  # the student's own pick: every page keeps it
        SELECTED_MODEL.set(key)
        picked = by_key[key]
    if unusable:
        with st.expander(
            ngettext("{count} saved model cannot be used", "{count} saved models cannot be used", len(unusable)).format(count=len(unusable))
        ):
            for choice in unusable:
                st.text(f"{choice.label}: {choice.problem}")
    return picked


def loaded_or_warning(choice: ModelChoice) -> LoadedModel | None:
    """Load the chosen model; if it cannot be loaded, say why (it is then listed as unusable) and return None."""
    try:
        return load_choice(choice)
    except ValueError as problem:
        st.warning(_("This model cannot be used: {problem}").format(problem=plain(problem)))
        return None
