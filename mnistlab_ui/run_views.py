"""A training run on the page: start it, watch it live, stop it, then read its results and keep its model.

The live view is a fragment that asks the job manager for the run's snapshot once a
second while the run waits or trains (asking also tells the server that the run is
still watched). The results come from the run's folder: the test-set predictions
its worker computed and the .keras file it saved.
"""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import streamlit as st

from mnistlab.datasets import DATASETS
from mnistlab.diagnosis import advice
from mnistlab.evaluation import Evaluation, evaluation_from_probabilities
from mnistlab.glossary import explain
from mnistlab.i18n import N_, _, ngettext, number, percent, seconds
from mnistlab.jobs import PREDICTIONS_FILE
from mnistlab.runs import CANCELLED, FAILED, INTERRUPTED, QUEUED, RUNNING, RunSnapshot
from mnistlab.settings import MONITORS, TrainingSettings
from mnistlab.store import ModelExistsError, metadata_for_result
from mnistlab_ui.charts import confusion_chart, per_class_chart, run_curves
from mnistlab_ui.data import dataset_or_error, image_grid
from mnistlab_ui.identity import browser_owner
from mnistlab_ui.server import lab
from mnistlab_ui.session import PRESSED_RUN, SAVE_CONFIRM, SHOWN_STATUS, VIEWED_RUN
from mnistlab_ui.text import captioned_image, plain
from mnistlab_ui.text import problem as problem_text


def start_run(settings: TrainingSettings, **extra) -> int | None:
    """Queue a training for this browser (or join the same one) and show it on the Train page; None, with the
    reason on the page, when it cannot start (a run already going, a network too big, a busy database)."""
    try:
        run_id = lab().jobs.submit(settings, browser_owner(), **extra)
    except ValueError as problem:
        st.error(problem_text(problem))
        return None
    VIEWED_RUN.set(run_id)
    PRESSED_RUN.set(run_id)
    return run_id


def _progress(snapshot: RunSnapshot) -> None:
    batch = snapshot.latest_batch
    if batch is None:
        return
    # A run that ended shows where it stopped: a Stop at batch 264 of epoch 1 is not 100% done.
    where = snapshot.result.stopped_at if snapshot.result is not None and snapshot.result.stopped_at else batch
    epoch_text = _("Epoch {epoch}: batch {batch} of {batches}").format(
        epoch=where.epoch, batch=number(where.batch), batches=number(where.batches_per_epoch)
    )
    this_epoch, all_epochs = st.columns(2)  # side by side: the curves below stay on a projector's screen
    this_epoch.progress(min(1.0, where.batch / where.batches_per_epoch), text=epoch_text)
    overall = min(1.0, where.fraction_done)
    all_epochs.progress(overall, text=_("Overall: {done} of at most {epochs} epochs").format(done=percent(overall, 0), epochs=where.max_epochs))


def _status(snapshot: RunSnapshot) -> None:
    if snapshot.status == QUEUED and snapshot.gathering:
        st.info(_("Starting in a moment: the server waits for classmates who press Train now, so that your networks train together."))
    elif snapshot.status == QUEUED:
        wait = snapshot.wait_seconds
        estimate = _(" Your turn comes in about {wait}.").format(wait=seconds(wait)) if wait else ""
        st.info(
            _("Waiting for a free place: you are number {place} in the queue.").format(place=snapshot.queue_position)
            + estimate
            + " "
            + _("The next place goes to whoever has trained least today.")
        )
    elif not snapshot.is_done:
        st.write(_("Run {run}: **{phase}**, {seconds}").format(run=snapshot.run_id, phase=_(snapshot.phase), seconds=seconds(snapshot.elapsed)))
        alone = alone_reason(snapshot)
        if alone:
            st.caption(_("Your network trains alone, not in the pack of your classmates' networks: {why}.").format(why=alone))
    if snapshot.watchers > 1 and not snapshot.is_done:
        st.info(
            _(
                "You and {count} classmates are watching the same training: the same settings and seed give the same network, "
                "so the server trains it once for all of you. Each of you keeps your own run."
            ).format(count=snapshot.watchers - 1)
            if snapshot.watchers > 2
            else _(
                "You and a classmate are watching the same training: the same settings and seed give the same network, "
                "so the server trains it once for both of you. Each of you keeps your own run."
            ),
            icon=":material/group:",
        )
    if snapshot.saving_delayed:
        st.warning(_("Saving this run is delayed: the runs database is busy. Nothing is lost; it is saved as soon as the database answers."))
    if snapshot.status == FAILED:
        st.error(_("Training failed: {reason}").format(reason=plain(snapshot.error)))
    elif snapshot.status == INTERRUPTED:
        st.warning(
            _("This run was interrupted: {reason} Its curve so far is kept below; train again to finish it.").format(reason=plain(snapshot.error))
        )
    elif snapshot.result is not None and snapshot.is_done:
        # As text: Turkish puts the epoch first ("6. epokun ..."), which Markdown would make a numbered list.
        (st.success if snapshot.result.target_reached else st.info)(plain(snapshot.result.describe_stop() + "."))
        stopped_learning = advice(snapshot.result, snapshot.settings, len(DATASETS[snapshot.settings.dataset].class_names))
        if stopped_learning:
            st.warning(stopped_learning, icon=":material/trending_up:")
        if snapshot.error:
            st.caption(plain(snapshot.error))
    elif snapshot.status == CANCELLED:
        st.info(plain(snapshot.error) if snapshot.error else _("Cancelled before it started."))
    if snapshot.shared_from is not None:
        st.info(
            _(
                "These settings were trained on this server before (run {run}): the same settings and seed give the same "
                "network, so here is its result at once."
            ).format(run=snapshot.shared_from),
            icon=":material/bolt:",
        )


def alone_reason(snapshot: RunSnapshot) -> str | None:
    """Why a run trains alone while other networks on this server train in a pack (None: it is in one, or none packs)."""
    from mnistlab.packing import why_alone

    if snapshot.status != RUNNING or int((snapshot.plan or {}).get("networks_in_job", 1) or 1) > 1:
        return None
    packed = [
        run.settings
        for run in lab().jobs.active_runs()
        if run.status == RUNNING and run.run_id != snapshot.run_id and int((run.plan or {}).get("networks_in_job", 1) or 1) > 1
    ]
    return why_alone(snapshot.settings, packed) if packed else None


def epoch_table(snapshot: RunSnapshot) -> pd.DataFrame:
    """One row per epoch, every number written the page's language's way; an epoch a Stop cut short says so."""
    stopped = snapshot.result.stopped_at if snapshot.result is not None else snapshot.stopped_at

    def value(number_or_none, digits=4):
        return "" if number_or_none is None or number_or_none != number_or_none else number(number_or_none, digits)

    rows = []
    for record in snapshot.epochs:
        label = str(record.epoch)
        if stopped is not None and stopped.epoch == record.epoch and stopped.batch < stopped.batches_per_epoch:
            label = _("{epoch} (stopped at batch {batch})").format(epoch=record.epoch, batch=number(stopped.batch))
        rows.append(
            {
                _("epoch"): label,
                _("loss"): value(record.loss),
                _("accuracy"): value(record.accuracy),
                _("validation loss"): value(record.val_loss),
                _("validation accuracy"): value(record.val_accuracy),
                _("seconds"): value(record.epoch_seconds, 1),
            }
        )
    return pd.DataFrame(rows)


def live_view(run_id: int) -> None:
    """Progress, curves and the epoch table of one run; polled once a second while the run is going."""
    snapshot = lab().jobs.snapshot(run_id, owner=browser_owner())
    if snapshot is None:
        st.warning(_("Run {run} is not one of yours.").format(run=run_id))
        return
    status, stop = st.columns([4, 1], vertical_alignment="center") if not snapshot.is_done else (st.container(), None)
    with status:
        _status(snapshot)
    _progress(snapshot)
    if snapshot.stopping:
        where = snapshot.stopped_at
        st.info(
            _("Stopped at batch {batch} of epoch {epoch}: scoring the model on the test images...").format(
                batch=number(where.batch), epoch=where.epoch
            )
            if where is not None
            else _("Stopping after this batch...")
        )
    elif stop is not None and stop.button(_("Stop"), key=f"stop-{run_id}", type="primary", help=_("Stop after this batch and keep the model.")):
        lab().jobs.cancel(run_id, owner=browser_owner())  # the next look says "Stopping after this batch..."
    if snapshot.curve:
        loss_chart, accuracy_chart = run_curves(snapshot)
        left, right = st.columns(2)
        left.altair_chart(loss_chart)
        right.altair_chart(accuracy_chart)
        with st.expander(_("What do the curves show?")):
            loss_curves, accuracy_curves = _("Loss curves"), _("Accuracy curves")
            st.markdown(f"**{loss_curves}**: {explain('loss')}")
            st.markdown(f"**{accuracy_curves}**: {explain('accuracy')} {explain('overfitting')}")
    if snapshot.epochs:
        st.table(epoch_table(snapshot), hide_index=True)
    seen = SHOWN_STATUS.get()
    if seen.get(run_id, snapshot.status) != snapshot.status:
        # The run started or ended: one full rerun, so "Your runs" names it right, the results show and polling stops.
        seen[run_id] = snapshot.status
        st.rerun()
    seen[run_id] = snapshot.status


@st.cache_resource(max_entries=16, show_spinner=False)
def _evaluation(path: str, modified_ns: int, class_names: tuple[str, ...]) -> tuple[Evaluation, np.ndarray | None]:
    with np.load(path, allow_pickle=False) as arrays:
        evaluation = evaluation_from_probabilities(arrays["probabilities"], arrays["labels"].astype(np.int64), class_names)
        images = arrays["images"] if "images" in arrays else None
    return evaluation, images


def run_evaluation(snapshot: RunSnapshot) -> tuple[Evaluation, np.ndarray] | None:
    """The run's test-set evaluation and the test images it was scored on, or None (with a message on the page)."""
    dataset, error = dataset_or_error(snapshot.settings.dataset)
    path = snapshot.model_path.parent / PREDICTIONS_FILE
    if dataset is None or not path.is_file():
        st.error(plain(error) if error else _("This run's test results are missing from {folder}.").format(folder=plain(path.parent)))
        return None
    try:
        evaluation, images = _evaluation(str(path), path.stat().st_mtime_ns, dataset.class_names)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as problem:
        st.error(
            _("This run's test results in {folder} cannot be read ({problem}); train again to get them.").format(folder=path.parent, problem=problem)
        )
        return None
    return evaluation, (images if images is not None else dataset.x_test)


def _choose_cell(state_key: str, run_id: int, names: list[str]) -> None:
    """When a confusion-matrix cell is clicked, show its images: the two select boxes follow the click."""
    selection = st.session_state[state_key].selection.get("cell") or []
    if selection:
        st.session_state[f"true-{run_id}"] = names.index(selection[0]["true"])
        st.session_state[f"pred-{run_id}"] = names.index(selection[0]["predicted"])


def results_view(snapshot: RunSnapshot) -> None:
    """Test accuracy, confusion matrix, mistakes, per-class accuracy; save and download."""
    found = run_evaluation(snapshot)
    if found is None:
        return
    evaluation, images = found
    names = [_(name) for name in DATASETS[snapshot.settings.dataset].class_names]  # the class names in the page's language
    run_id = snapshot.run_id

    st.header(_("How good is it?"))
    columns = st.columns(3)
    columns[0].metric(_("Test accuracy"), percent(evaluation.accuracy, 2), help=explain("test"))
    columns[1].metric(_("Test images"), number(len(evaluation.labels)))
    columns[2].metric(_("Mistakes"), number(int((evaluation.predicted != evaluation.labels).sum())))
    reached = snapshot.result.target_reached if snapshot.result is not None else None
    if reached is not None and snapshot.settings.monitor == "val_accuracy" and evaluation.accuracy < reached.value:
        st.caption(
            _(
                "Why lower than the {value} that met the target? The validation images decided when to stop, so training "
                "stopped at a moment that suits them; the test images are new to the network, so its score on them is the "
                "honest one, and usually a little lower."
            ).format(value=percent(reached.value))
        )
    for name, value in (snapshot.result.extra_test_accuracy or {}).items():
        st.metric(_("Accuracy on {name}").format(name=plain(name)), percent(value, 2))

    st.subheader(_("Confusion matrix"))
    st.caption(_("Each row is the true class, each column the network's answer; the diagonal is right. Click a cell to see those images."))
    chart_key = f"confusion-{run_id}"
    st.altair_chart(
        confusion_chart(evaluation, names), on_select=lambda: _choose_cell(chart_key, run_id, names), selection_mode="cell", key=chart_key
    )
    off_diagonal = evaluation.confusion - np.diag(np.diag(evaluation.confusion))
    worst_true, worst_predicted = np.unravel_index(int(np.argmax(off_diagonal)), off_diagonal.shape)
    left, right = st.columns(2)
    true_class = left.selectbox(_("True class"), range(len(names)), index=int(worst_true), format_func=names.__getitem__, key=f"true-{run_id}")
    predicted_class = right.selectbox(
        _("Predicted as"), range(len(names)), index=int(worst_predicted), format_func=names.__getitem__, key=f"pred-{run_id}"
    )
    chosen = evaluation.indices(true_class, predicted_class)
    if len(chosen):
        captioned_image(
            st,
            image_grid(images[chosen[:40]], columns=10, scale=2),
            caption=ngettext(
                "{count} test image: true {true}, predicted {predicted}", "{count} test images: true {true}, predicted {predicted}", len(chosen)
            ).format(count=len(chosen), true=names[true_class], predicted=names[predicted_class]),
        )
    else:
        st.write(_("No test image in this cell."))

    st.subheader(_("Mistakes the network is most sure about"))
    wrong = evaluation.misclassified[:24]
    if len(wrong):
        captioned_image(
            st,
            [np.kron(images[index], np.ones((2, 2), np.uint8)) for index in wrong],
            width=90,
            caption=[
                _("true {true}, said {said} ({sure})").format(
                    true=names[evaluation.labels[index]],
                    said=names[evaluation.predicted[index]],
                    sure=percent(evaluation.probabilities[index].max(), 0),
                )
                for index in wrong
            ],
        )

    st.subheader(_("Accuracy per class"))
    st.altair_chart(per_class_chart(evaluation, names))
    keep_model(snapshot)


def train_again_with_a_new_seed(snapshot: RunSnapshot) -> None:
    """A run that took a classmate's result at once: the student may train a network of their own."""
    import secrets
    from dataclasses import replace

    def again() -> None:
        seed = secrets.randbelow(2**31 - 1)
        st.session_state["train.seed"] = seed
        start_run(replace(snapshot.settings, seed=seed))

    st.button(
        _("Train again with a new seed"),
        key=f"again-{snapshot.run_id}",
        on_click=again,
        help=_("Another seed starts from other random weights and reads the images in another order: a network of your own."),
    )


def keep_model(snapshot: RunSnapshot) -> None:
    """Save the run's model to the shared store (asking before replacing one) or download it."""
    st.subheader(_("Keep this model"))
    if not snapshot.model_path.is_file():
        st.warning(
            _(
                "This run's model file is missing from {folder} (it was deleted or moved), so it cannot be saved or downloaded. "
                "Its results above are kept; train again to get a model."
            ).format(folder=snapshot.model_path.parent)
        )
        return
    run_id, settings, result = snapshot.run_id, snapshot.settings, snapshot.result
    left, right = st.columns(2)
    with left:
        name = st.text_input(_("Name"), f"{settings.dataset}-{settings.arch}-run{run_id}", key=f"name-{run_id}")
        replace = SAVE_CONFIRM.get() == name
        if replace:
            st.warning(
                _("A model called {name} is already saved. Press the button again to replace it, or choose another name.").format(name=plain(name))
            )
        if st.button(_("Replace it") if replace else _("Save to the model store"), key=f"save-{run_id}"):
            metadata = metadata_for_result(result, DATASETS[settings.dataset].class_names)
            try:
                stored = lab().models.save_file(name, snapshot.model_path, metadata, overwrite=replace)
            except ModelExistsError:
                SAVE_CONFIRM.set(name)
                st.rerun()
            except (ValueError, OSError) as problem:
                st.error(problem_text(problem))
            else:
                SAVE_CONFIRM.clear()
                st.success(_("Saved as {name}: every page (and every user of this server) can now pick it.").format(name=plain(stored.name)))
    with right:
        try:
            model_bytes = snapshot.model_path.read_bytes()
        except OSError:
            model_bytes = None
        if model_bytes is not None:
            st.download_button(
                _("Download .keras"),
                model_bytes,
                file_name=f"{settings.dataset}-{settings.arch}-run{run_id}.keras",
                mime="application/octet-stream",
                key=f"download-{run_id}",
            )
    take_home(snapshot)


def take_home(snapshot: RunSnapshot) -> None:
    """The run as plain Keras code to take home: a Python script and a Jupyter notebook that reproduce it."""
    from mnistlab.export import keras_code, notebook_text

    st.subheader(_("Take it home"))
    st.caption(
        _(
            "The same network and training in plain Keras, to run at home in Jupyter or Colab (in Colab: File, Upload "
            "notebook). It gets about the same result: the server may compute in bfloat16 and shuffles in its own way."
        )
    )
    name = f"{snapshot.settings.dataset}-{snapshot.settings.arch}-run{snapshot.run_id}"
    left, right = st.columns(2)
    left.download_button(
        _("Download the notebook (.ipynb)"),
        notebook_text(snapshot.settings, run_id=snapshot.run_id),
        file_name=f"{name}.ipynb",
        mime="application/x-ipynb+json",
        key=f"notebook-{snapshot.run_id}",
    )
    right.download_button(
        _("Download the script (.py)"),
        keras_code(snapshot.settings, run_id=snapshot.run_id),
        file_name=f"{name}.py",
        mime="text/x-python",
        key=f"script-{snapshot.run_id}",
    )


def size_panel(settings: TrainingSettings) -> str | None:
    """The network's parameters and its estimated time per epoch on this server, before Train; the reason it is
    refused (shown, and returned) when it is over the server's limits."""
    from mnistlab.datasets import DATASETS as ALL_DATASETS
    from mnistlab.precision import describe
    from mnistlab.sizing import epoch_seconds, parameter_count

    jobs = lab().jobs
    dataset, _error = dataset_or_error(settings.dataset)
    images = settings.train_size or int(
        (len(dataset.y_train) if dataset is not None else ALL_DATASETS[settings.dataset].published_train_size) * (1 - settings.validation_split)
    )
    recipe = settings.recipe_for(images)
    estimate = epoch_seconds(settings.config, images, recipe.batch_size, jobs.speed(settings.config.is_convolutional))
    st.caption(
        _("{parameters} parameters · about {seconds} per epoch on this server · computed in {precision}").format(
            parameters=number(parameter_count(settings.config)), seconds=seconds(max(1.0, estimate)), precision=_(describe_precision(settings))
        ),
        help=_("The estimate comes from the network's arithmetic and this server's own recorded epochs; the server uses {policy}.").format(
            policy=_(describe())
        ),
    )
    try:
        jobs.check(settings, images)
    except ValueError as problem:
        st.error(problem_text(problem))
        return str(problem)
    return None


def describe_precision(settings: TrainingSettings) -> str:
    from mnistlab.precision import MIXED_BFLOAT16

    return N_("bfloat16 (this CPU computes it fast)") if lab().jobs.precision(settings) == MIXED_BFLOAT16 else N_("float32")


LOAD_EVERY = 5.0  # seconds between refreshes of the server's load panel


@st.fragment(run_every=LOAD_EVERY)
def server_load_panel() -> None:
    """How many trainings this server runs at once and where, and how long the queue is (no names); it refreshes itself."""
    load = lab().jobs.load()
    owner = browser_owner()
    with st.expander(_("Trainings on this server: {running} running, {waiting} waiting").format(running=load.running, waiting=load.waiting)):
        st.caption(_("This server trains on {backend}.").format(backend=load.backend))
        rows = []
        for place in load.places:
            if place.run_id is None:
                who = _("free")
            elif place.owner == owner:
                who = _("your run {run}").format(run=place.run_id)
            elif place.owner == "server":
                who = _("the quick model for everyone")
            else:
                who = _("a classmate's run")
            if place.networks > 1:
                who += " · " + _("{count} networks in one pass").format(count=place.networks)
            if place.watchers > 1:
                who += " · " + _("{count} students watching").format(count=place.watchers)
            rows.append({_("where"): place.where, _("training"): who})
        if rows:
            st.table(pd.DataFrame(rows), hide_index=True)


def run_label(snapshot: RunSnapshot) -> str:
    """A run in the "Your runs" list: its name and how it ended (an active run is shown live below the list)."""
    if snapshot.status == CANCELLED and snapshot.result is not None:
        return _("{name} (stopped)").format(name=snapshot.name)  # stopped by its student, with the model so far
    if snapshot.is_done:
        return _("{name} ({status})").format(name=snapshot.name, status=_(snapshot.status))
    return _("{name} (now)").format(name=snapshot.name)


def target_text(settings: TrainingSettings) -> str:
    if settings.target_accuracy is None:
        return _("no target")
    return _("target {target} {watched}").format(target=percent(settings.target_accuracy), watched=_(MONITORS[settings.monitor]))
