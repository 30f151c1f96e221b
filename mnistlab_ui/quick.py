"""The server's quick models: one seeded recipe per dataset, trained once and shared by everyone.

The Draw and Convolutions pages offer a quick model when there is none to use. The
button asks the job manager for the shared run of that recipe: the first press
starts it, later presses (any session) watch the same run, and once it is done
everyone finds it among the models at once.
"""

from __future__ import annotations

import streamlit as st

from mnistlab.datasets import DATASETS
from mnistlab.i18n import _
from mnistlab.settings import quick_model_settings, recipe_key
from mnistlab_ui.models import QUICK, choice_key
from mnistlab_ui.server import lab
from mnistlab_ui.session import QUICK_RUN, SELECTED_MODEL
from mnistlab_ui.text import plain


def _progress(run_id: int) -> None:
    snapshot = lab().jobs.snapshot(run_id)
    if snapshot is None:
        return
    if snapshot.queue_position:
        st.info(_("Waiting for a free place: number {place} in the queue.").format(place=snapshot.queue_position))
    elif snapshot.latest_batch is not None:
        st.progress(
            min(1.0, snapshot.latest_batch.fraction_done),
            text=_("Training the quick model for everyone: {seconds:.0f} s").format(seconds=snapshot.elapsed),
        )
    else:
        st.write(_("Training the quick model for everyone: {phase}...").format(phase=_(snapshot.phase)))
    if snapshot.is_done:
        QUICK_RUN.clear()
        if snapshot.has_model:
            SELECTED_MODEL.set(choice_key(QUICK, run_id))
        else:
            st.error(plain(snapshot.error) if snapshot.error else _("The quick model did not finish."))
        st.rerun()


def quick_model_panel(dataset: str) -> None:
    """A button that trains (or joins) the server's quick model for `dataset`, and its progress."""
    settings = quick_model_settings(dataset)
    key = recipe_key(settings)
    run_id = QUICK_RUN.get()
    if run_id is None:
        shared = lab().runs.latest_shared(key)
        if shared is not None and not shared.is_done:
            run_id = shared.run_id
    if run_id is not None:
        st.fragment(_progress, run_every=1.0)(run_id)
        return
    title = _(DATASETS[dataset].title)
    if st.button(
        _("Train a quick model on {dataset} (about a minute)").format(dataset=title),
        type="primary",
        key=f"quick-{dataset}",
        help=_("The same fast CNN for everyone: trained once on this server, then every page can use it."),
    ):
        QUICK_RUN.set(lab().jobs.shared_run(key, settings))
        st.rerun()
