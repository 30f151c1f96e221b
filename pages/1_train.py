"""Train page: pick a dataset and an architecture, watch it learn live, stop at a target."""

from __future__ import annotations

import streamlit as st

from mnistlab.i18n import _
from mnistlab.runs import CANCELLED, FINISHED
from mnistlab.settings import DEFAULT_SETTINGS, link_of, settings_from_link
from mnistlab_ui.class_student import class_budget, class_data_options
from mnistlab_ui.identity import browser_owner
from mnistlab_ui.links import apply_link, share_link
from mnistlab_ui.models import RUN, choice_key
from mnistlab_ui.run_views import live_view, results_view, run_label, server_load_panel, size_panel, start_run, train_again_with_a_new_seed
from mnistlab_ui.server import lab
from mnistlab_ui.session import PRESSED_RUN, SELECTED_MODEL, VIEWED_RUN
from mnistlab_ui.shell import leave_pages_folder_mode
from mnistlab_ui.train_form import choose_settings, seed, step_aside

YOUR_RUNS = "train_page.your_runs"


def view_run(by_id: dict) -> None:
    """Another run chosen in "Your runs": show it, with its settings in the form (and so in the layer table and the code
    view), before the page draws them."""
    chosen = by_id[st.session_state[YOUR_RUNS]]
    VIEWED_RUN.set(chosen.run_id)
    seed(chosen.settings, replace=True)


leave_pages_folder_mode()
st.title(_("Train"))
# A training on a class's own set is shown on the Class page, which knows its categories.
runs = [run for run in lab().jobs.runs_of(browser_owner()) if run.shared_key is None and not run.on_own_set]
by_id = {run.run_id: run for run in runs}
if VIEWED_RUN.get() not in by_id:
    VIEWED_RUN.set(runs[0].run_id if runs else None)
viewed = by_id.get(VIEWED_RUN.get())
# While a run trains, and once the run Train was pressed for has ended, the form steps aside (a switch brings it back)
# and the page keeps to the run: at 1024x768 the Stop button and the whole live curves, then the results, are on the
# first screen (under the returned form they started about 1,000 px down).
training_now = viewed is not None and not viewed.is_done
# A link's settings (a lesson, a teacher's "Copy link") fill the form once, and show it; after a reload the form shows
# the settings of the run being viewed.
link = apply_link("train", lambda values: (seed(settings_from_link(values), replace=True), PRESSED_RUN.set(None)))
seed(viewed.settings if viewed is not None else DEFAULT_SETTINGS)
focused = viewed is not None and (training_now or PRESSED_RUN.get() == viewed.run_id)
if not focused:
    st.write(_("Pick a dataset and an architecture, click Train, and watch the network learn until it reaches your target."))

settings, refused, class_data, actions = None, None, {}, st.container()
busy = _("Your run is training: watch it below, or stop it to train another.")
done = _("Change the settings and train again.")
if not focused or st.toggle(_("Show the settings"), key=f"train_page.show_settings.{viewed.run_id}", help=busy if training_now else done):
    chosen = choose_settings()
    settings, actions = chosen.settings, chosen.actions
    if settings is not None:
        settings = class_budget(settings)
        share_link("train", link_of(settings))
    class_data = class_data_options(settings.dataset) if settings is not None else {}
    refused = size_panel(settings) if settings is not None else None
else:
    step_aside()
# The Train button sits in the form, next to the settings, so a projector shows it on the first screen.
with actions:
    if training_now:
        if settings is not None:
            st.caption(busy)
    elif focused and settings is None:
        pass  # the form is aside after the run: its switch brings the settings and Train back (a greyed Train puzzled)
    elif st.button(_("Train"), type="primary", disabled=settings is None or refused is not None, icon=":material/play_arrow:"):
        if start_run(settings, **class_data) is not None:
            st.rerun()

if not focused:
    server_load_panel()
if runs:
    if not focused or settings is not None:
        st.divider()
    if len(runs) > 1:
        labels = {run.run_id: run_label(run) for run in runs}
        st.session_state[YOUR_RUNS] = viewed.run_id  # set before the box is drawn: the run shown (a new one, after Train)
        chosen = st.selectbox(_("Your runs"), list(labels), format_func=labels.__getitem__, key=YOUR_RUNS, on_change=view_run, args=(by_id,))
        viewed = by_id[chosen]
    polling = None if viewed.is_done else 1.0
    st.fragment(live_view, run_every=polling)(viewed.run_id)
    if viewed.shared_from is not None:
        train_again_with_a_new_seed(viewed)
    if training_now:
        server_load_panel()
    if viewed.status in (FINISHED, CANCELLED) and viewed.has_model:
        SELECTED_MODEL.get() or SELECTED_MODEL.set(choice_key(RUN, viewed.run_id))
        results_view(viewed)
