"""Train page: pick a dataset and an architecture, watch it learn live, stop at a target."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from mnistlab.datasets import DATASETS, NORMALIZATIONS
from mnistlab.jobs import CANCELLED, FAILED, FINISHED, JobSnapshot, TrainingJob, default_queue
from mnistlab.models import PRESETS, ConvBlock, ModelConfig, get_preset
from mnistlab.training import MONITORS, TrainingSettings
from streamlit_helpers import DOWNLOADS, EVALUATIONS, SELECTED_MODEL, dataset_or_error, image_grid, session_runs

st.set_page_config(page_title="Train · MNIST Lab", page_icon=":material/school:", layout="wide")
st.title("Train")
st.write("Pick a dataset and an architecture, click Train, and watch the network learn until it reaches your target.")

CUSTOM = "custom"
TRAINING_IMAGES = {"all": None, "10,000": 10_000, "5,000": 5_000, "1,000": 1_000}


@st.cache_data(show_spinner=False, max_entries=64)
def layer_table(config_text: str, _config: ModelConfig) -> pd.DataFrame:
    """The layers of a model built from a config (cached by the config's text)."""
    from mnistlab.models import build_model, model_summary

    rows = model_summary(build_model(_config))
    return pd.DataFrame(
        {"layer": [row.name for row in rows], "kind": [row.kind for row in rows], "output shape": [row.output_shape for row in rows],
         "parameters": [row.parameters for row in rows]}
    )


def custom_config() -> ModelConfig:
    """The "build your own" form."""
    blocks = []
    block_count = st.slider("Convolution blocks", 0, 3, 1, help="Each block is a Conv2D layer, optionally followed by 2x2 max pooling.")
    for number in range(1, block_count + 1):
        left, middle, right = st.columns(3)
        filters = left.selectbox(f"Block {number}: filters", (8, 16, 32, 64, 128), index=2 + min(number - 1, 2),
                                 help="How many different 3x3 patterns this layer learns to detect.")
        kernel = middle.selectbox(f"Block {number}: kernel size", (3, 5), help="The size of each filter, in pixels.")
        pool = right.checkbox(f"Block {number}: max pooling", True, help="Keep the strongest value of each 2x2 square: the image shrinks by half.")
        blocks.append(ConvBlock(filters, kernel, pool))
    units_text = st.text_input("Dense layers (units, comma separated)", "128", help="For example '128' or '256, 128'.")
    try:
        units = tuple(int(part) for part in units_text.replace(" ", "").split(",") if part)
    except ValueError:
        raise ValueError(f"Dense layers must be whole numbers separated by commas, got {units_text!r}.") from None
    dropout = st.slider("Dropout", 0.0, 0.7, 0.0, 0.05, help="During training, switch off this fraction of dense units at random, so the network cannot rely on any one of them.")
    batch_norm = st.checkbox("Batch normalisation", False, help="Re-centre each convolution's outputs during training: faster, steadier learning.")
    left, right = st.columns(2)
    augmentation = left.checkbox("Augment: small rotations, shifts and zooms", False,
                                 help="Each epoch sees slightly moved copies of the training images, so the network learns shapes, not places.")
    mirror = right.checkbox("Augment: mirror left-right", False,
                            help="Good for clothes (a mirrored shoe is still a shoe), wrong for digits (a mirrored 2 is not a 2).")
    return ModelConfig(conv_blocks=tuple(blocks), dense_units=units, dropout=dropout, batch_norm=batch_norm,
                       augmentation=augmentation, mirror=mirror)


def choose_settings() -> TrainingSettings | None:
    """Dataset, architecture and training settings; None (with a message) when they are impossible."""
    left, right = st.columns(2)
    with left:
        dataset_name = st.selectbox("Dataset", list(DATASETS), format_func=lambda name: DATASETS[name].title)
        dataset, error = dataset_or_error(dataset_name)
        if dataset is None:
            st.error(error)
        else:
            st.caption(f"{len(dataset.y_train):,} training images, {len(dataset.y_test):,} test images, from {dataset.source.describe()}.")
            if dataset.source.is_sample:
                st.caption(dataset.source.notice)
        arch = st.selectbox("Architecture", [*PRESETS, CUSTOM],
                            format_func=lambda name: "Build your own" if name == CUSTOM else PRESETS[name].title)
        try:
            if arch == CUSTOM:
                config = custom_config()
                recipe_epochs, recipe_batch, recipe_rate = 5, 128, 0.001
            else:
                preset = get_preset(arch)
                st.info(preset.explanation)
                config = preset.config_for(dataset_name)
                recipe = preset.recipe.for_size(len(dataset.y_train) if dataset is not None else 60_000)
                recipe_epochs, recipe_batch, recipe_rate = recipe.max_epochs, recipe.batch_size, recipe.learning_rate
        except ValueError as problem:
            st.error(str(problem))
            return None
        with st.expander("Layers, output shapes and parameters", expanded=arch != CUSTOM):
            table = layer_table(repr(config), config)
            st.dataframe(table, hide_index=True)
            st.caption(f"{table['parameters'].sum():,} parameters in all.")
    with right:
        stop_at_target = st.checkbox("Stop at a target accuracy", True, help="Stop training as soon as the network is good enough, as the lessons teach.")
        target = st.slider("Target accuracy", 0.50, 1.00, DATASETS[dataset_name].suggested_target, 0.005, format="%.3f",
                           help="0.99 means 99% of the images classified right.", disabled=not stop_at_target)
        monitor = st.radio("Watch", list(MONITORS), index=1, format_func=lambda key: MONITORS[key].capitalize(), horizontal=True,
                           help="Validation accuracy is measured on images the network does not train on: a fairer test.")
        check_every = st.number_input("Also check every N batches (0: only at the end of each epoch)", 0, 10_000, 0, 50,
                                      help="Checking during an epoch stops sooner; with validation accuracy each check costs a little time.")
        columns = st.columns(3)
        max_epochs = columns[0].number_input("Max epochs", 1, 200, recipe_epochs, help="An epoch is one pass over all the training images.")
        batch_size = columns[1].selectbox("Batch size", (16, 32, 64, 128, 256, 512), index=(16, 32, 64, 128, 256, 512).index(recipe_batch),
                                          help="How many images the network sees before each update of its weights.")
        learning_rate = columns[2].select_slider("Learning rate", (0.0001, 0.0003, 0.001, 0.002, 0.003, 0.004, 0.006, 0.008, 0.01),
                                                 value=recipe_rate,
                                                 help="How big each update of the weights is: too big jumps around, too small crawls.")
        columns = st.columns(3)
        validation_split = columns[0].slider("Validation split", 0.0, 0.3, 0.1, 0.05,
                                             help="The fraction of training images kept aside to measure validation accuracy.")
        normalization = columns[1].radio("Normalisation", list(NORMALIZATIONS), format_func=lambda key: "÷ 255" if key == "divide_255" else "keras normalize",
                                         help=" / ".join(NORMALIZATIONS.values()))
        images = columns[2].selectbox("Training images", list(TRAINING_IMAGES), help="Fewer images train faster, for a quick try.")
    if dataset is None:
        return None
    try:
        return TrainingSettings(
            dataset=dataset_name, arch=arch, model_config=config if arch == CUSTOM else None,
            target_accuracy=target if stop_at_target else None, monitor=monitor, check_every_batches=int(check_every),
            max_epochs=int(max_epochs), batch_size=int(batch_size), learning_rate=float(learning_rate),
            validation_split=float(validation_split), normalization=normalization, train_size=TRAINING_IMAGES[images],
        )
    except ValueError as problem:
        st.error(str(problem))
        return None


def curves(snapshot: JobSnapshot, target: float | None) -> tuple[alt.Chart, alt.Chart]:
    """Loss and accuracy against epochs: training (running, per batch) and validation (per epoch)."""
    rows = []
    for point in snapshot.curve:
        x = point.epoch - 1 + point.batch / point.batches_per_epoch
        rows += [(x, "training", "loss", point.loss), (x, "training", "accuracy", point.accuracy)]
    for record in snapshot.epochs:
        if record.val_accuracy is not None:
            rows += [(record.epoch, "validation", "loss", record.val_loss), (record.epoch, "validation", "accuracy", record.val_accuracy)]
    frame = pd.DataFrame(rows, columns=["epoch", "data", "metric", "value"])
    charts = []
    for metric in ("loss", "accuracy"):
        part = frame[frame.metric == metric]
        chart = alt.Chart(part).mark_line(point=alt.OverlayMarkDef(size=30)).encode(
            x=alt.X("epoch:Q", title="epoch"), y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False)), color="data:N"
        ).properties(height=260, title=metric.capitalize())
        if metric == "accuracy" and target is not None:
            rule = alt.Chart(pd.DataFrame({"target": [target]})).mark_rule(color="#c0392b", strokeDash=[6, 4], size=2).encode(y="target:Q")
            chart = chart + rule
        charts.append(chart)
    return charts[0], charts[1]


def live_view(job: TrainingJob) -> None:
    """Progress, curves and the epoch table of one run; polls while the run is going."""
    snapshot = job.snapshot()
    settings = job.settings
    if snapshot.status == "queued":
        st.info(f"Waiting for a free place: you are number {snapshot.queue_position} in the queue "
                f"({default_queue().running} training(s) running on this server).")
    elif not snapshot.is_done:
        st.write(f"Run {job.job_id}: **{snapshot.phase}**, {snapshot.elapsed:.0f} s")
    batch = snapshot.latest_batch
    if batch is not None:
        epoch_done = batch.batch / batch.batches_per_epoch
        st.progress(min(1.0, epoch_done), text=f"Epoch {batch.epoch}: batch {batch.batch} of {batch.batches_per_epoch}")
        overall = 1.0 if snapshot.is_done else min(1.0, batch.fraction_done)
        st.progress(overall, text=f"Overall: {overall:.0%} of at most {batch.max_epochs} epochs")
    if not snapshot.is_done and st.button("Stop", key=f"stop-{job.job_id}", type="primary", help="Stop after this batch and keep the model."):
        job.cancel()
        st.toast("Stopping after this batch...")
    if snapshot.curve:
        loss_chart, accuracy_chart = curves(snapshot, settings.target_accuracy)
        left, right = st.columns(2)
        left.altair_chart(loss_chart)
        right.altair_chart(accuracy_chart)
    if snapshot.epochs:
        st.dataframe(pd.DataFrame([{
            "epoch": record.epoch, "loss": record.loss, "accuracy": record.accuracy, "validation loss": record.val_loss,
            "validation accuracy": record.val_accuracy, "seconds": record.seconds} for record in snapshot.epochs]), hide_index=True)
    if snapshot.status == FAILED:
        st.error(f"Training failed: {snapshot.error}")
    elif snapshot.result is not None and snapshot.is_done:
        message = snapshot.result.describe_stop()
        (st.success if snapshot.result.target_reached else st.info)(message + ".")
    if snapshot.is_done and not st.session_state.get(f"shown-done-{job.job_id}"):
        # One full rerun to show the results below and stop polling.
        st.session_state[f"shown-done-{job.job_id}"] = True
        st.rerun()


def results_view(job: TrainingJob) -> None:
    """Test accuracy, confusion matrix, mistakes, per-class accuracy; save and download."""
    from mnistlab.evaluation import evaluate
    from mnistlab.store import ModelStore, metadata_for, model_to_bytes

    trained = job.trained
    dataset, error = dataset_or_error(job.settings.dataset)
    if trained is None or dataset is None:
        st.error(error or "This run has no model.")
        return
    evaluations = st.session_state.setdefault(EVALUATIONS, {})
    if job.job_id not in evaluations:
        evaluations[job.job_id] = evaluate(trained.model, dataset.x_test, dataset.y_test, trained.normalization, trained.class_names)
    evaluation = evaluations[job.job_id]
    names = list(trained.class_names)

    st.header("How good is it?")
    columns = st.columns(3)
    columns[0].metric("Test accuracy", f"{evaluation.accuracy:.2%}")
    columns[1].metric("Test images", f"{len(evaluation.labels):,}")
    columns[2].metric("Mistakes", f"{len(evaluation.misclassified):,}")

    st.subheader("Confusion matrix")
    st.caption("Each row is the true class, each column the network's answer; the diagonal is right. Click a cell to see those images.")
    confusion = pd.DataFrame(evaluation.confusion, index=[f"true {name}" for name in names], columns=names)
    event = st.dataframe(confusion.style.background_gradient(cmap="Blues", axis=None), on_select="rerun",
                         selection_mode="single-cell", key=f"confusion-{job.job_id}")
    off_diagonal = evaluation.confusion - np.diag(np.diag(evaluation.confusion))
    worst_true, worst_predicted = np.unravel_index(int(np.argmax(off_diagonal)), off_diagonal.shape)
    cells = event.selection.cells if event is not None and hasattr(event, "selection") else []
    if cells:
        worst_true, worst_predicted = cells[0][0], names.index(cells[0][1])
    left, right = st.columns(2)
    true_class = left.selectbox("True class", range(len(names)), index=int(worst_true), format_func=names.__getitem__, key=f"true-{job.job_id}")
    predicted_class = right.selectbox("Predicted as", range(len(names)), index=int(worst_predicted), format_func=names.__getitem__, key=f"pred-{job.job_id}")
    chosen = evaluation.indices(true_class, predicted_class)[:40]
    if len(chosen):
        st.image(image_grid(dataset.x_test[chosen], columns=10, scale=2), caption=f"{len(evaluation.indices(true_class, predicted_class))} test image(s): true {names[true_class]}, predicted {names[predicted_class]}")
    else:
        st.write("No test image in this cell.")

    st.subheader("Mistakes the network is most sure about")
    wrong = evaluation.misclassified[:24]
    if len(wrong):
        st.image([np.kron(dataset.x_test[index], np.ones((2, 2), np.uint8)) for index in wrong],
                 caption=[f"true {names[evaluation.labels[index]]}, said {names[evaluation.predicted[index]]} ({evaluation.probabilities[index].max():.0%})" for index in wrong], width=90)

    st.subheader("Accuracy per class")
    st.bar_chart(pd.DataFrame({"class": names, "accuracy": evaluation.per_class_accuracy}), x="class", y="accuracy", horizontal=True)

    st.subheader("Keep this model")
    left, right = st.columns(2)
    with left:
        name = st.text_input("Name", f"{job.settings.dataset}-{job.settings.arch}-run{job.job_id}", key=f"name-{job.job_id}")
        if st.button("Save to the model store", key=f"save-{job.job_id}"):
            try:
                stored = ModelStore().save(name, trained.model, metadata_for(trained))
            except ValueError as problem:
                st.error(str(problem))
            else:
                st.success(f"Saved as {stored.name}: every page (and every user of this server) can now pick it.")
    with right:
        downloads = st.session_state.setdefault(DOWNLOADS, {})
        if job.job_id not in downloads:
            downloads[job.job_id] = model_to_bytes(trained.model)
        st.download_button("Download .keras", downloads[job.job_id], file_name=f"{job.settings.dataset}-{job.settings.arch}.keras",
                           mime="application/octet-stream", key=f"download-{job.job_id}")


settings = choose_settings()
if st.button("Train", type="primary", disabled=settings is None):
    dataset, _ = dataset_or_error(settings.dataset)
    job = default_queue().submit(settings, dataset=dataset)
    session_runs().append(job)
    st.session_state["mnistlab_viewed_run"] = job.job_id

runs = session_runs()
if runs:
    st.divider()
    ids = [job.job_id for job in runs]
    viewed = st.session_state.get("mnistlab_viewed_run", ids[-1])
    if len(runs) > 1:
        viewed = st.selectbox("Your runs in this session", ids[::-1], index=ids[::-1].index(viewed) if viewed in ids else 0,
                              format_func=lambda job_id: f"Run {job_id}: {runs[ids.index(job_id)].settings.arch} on "
                              f"{runs[ids.index(job_id)].settings.dataset} ({runs[ids.index(job_id)].status})")
        st.session_state["mnistlab_viewed_run"] = viewed
    job = runs[ids.index(viewed)] if viewed in ids else runs[-1]
    polling = None if job.snapshot().is_done else 1.0
    st.fragment(live_view, run_every=polling)(job)
    if job.status in (FINISHED, CANCELLED) and job.trained is not None:
        st.session_state.setdefault(SELECTED_MODEL, f"run-{job.job_id}")
        results_view(job)
