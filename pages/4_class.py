"""Class page: a teacher starts a class and watches its dashboard; students join with a code and a nickname."""

from __future__ import annotations

import html

import streamlit as st

from mnistlab.classroom import TeacherKeyError, UnknownCodeError, normalise_code
from mnistlab.i18n import _, day, ngettext, number
from mnistlab.retention import deletion_notice
from mnistlab.settings import SETTING
from mnistlab.throttle import Throttle
from mnistlab_ui.class_categories import categories_settings, category_dashboard, category_exports, category_name
from mnistlab_ui.class_dashboard import DASHBOARD_EVERY, class_exports, dashboard, hidden_drawings, roster
from mnistlab_ui.class_pace import pace_controls
from mnistlab_ui.classroom import (
    become_teacher,
    class_drawings,
    class_model_options,
    join_url,
    keep_teacher_cookie,
    member,
    qr_png,
    students_url,
    taught_by_this_browser,
    teacher_key,
    teaching,
)
from mnistlab_ui.compare import compare_runs, share_panel
from mnistlab_ui.downloads import file_name, results_link
from mnistlab_ui.identity import browser_owner, client_address
from mnistlab_ui.race import race, race_controls
from mnistlab_ui.server import lab
from mnistlab_ui.session import CLASS_MEMBER, CLASS_NOTICE, CLASS_PROMPT, LEFT_DASHBOARD, NEW_TEACHER_LINK, TEACHER_KEYS, TEACHING
from mnistlab_ui.shell import leave_pages_folder_mode, page_link
from mnistlab_ui.text import captioned_image, plain
from mnistlab_ui.text import problem as problem_text

leave_pages_folder_mode()
st.title(_("Class"))
notice = CLASS_NOTICE.get()
if notice:
    st.success(notice, icon=":material/check_circle:")
    CLASS_NOTICE.set(None)
RACE_ONLY = "class.race_only"  # the teacher's "Only the race, for the projector"
if not st.session_state.get(RACE_ONLY):
    st.write(
        _(
            "Build a set of the class's own handwriting: everyone draws what they are asked for (the digits, or "
            "categories the class chooses), and the dashboard shows how well a network reads them."
        )
    )
classes = lab().classes


@st.cache_resource(show_spinner=False)
def join_throttle() -> Throttle:
    """Wrong join codes, per browser and per network address, shared by every session of this server."""
    return Throttle(allowed=5, window=60.0, first_wait=10.0)


# A teacher's private link (?class=CODE&teacher=KEY) gives this session the class's controls; the key then leaves
# the address bar, which a projector shows, and the browser keeps a signed token instead (a reload keeps the dashboard).
parameters = st.query_params
if "teacher" in parameters:
    found = classes.by_code(parameters.get("class", ""))
    key = parameters.get("teacher", "")
    del st.query_params["teacher"]
    if found is not None and classes.is_teacher(found.class_id, key):
        become_teacher(found, key)
    else:
        st.error(_("This teacher link does not open a class: the class code or the teacher key is wrong."))


def start_class() -> None:
    with st.form("new-class"):
        name = st.text_input(_("Class name"), max_chars=60, placeholder=_("e.g. 9B computer vision"))
        if st.form_submit_button(_("Start a class"), type="primary"):
            try:
                info, key = classes.create_class(name)
            except ValueError as problem:
                st.error(problem_text(problem))
                return
            become_teacher(info, key)
            NEW_TEACHER_LINK.set(f"{students_url().url}/class?class={info.code}&teacher={key}")
            st.rerun()


def join_class() -> None:
    keys = (browser_owner(), client_address())
    with st.form("join-class"):
        code = st.text_input(_("Class code"), value=normalise_code(parameters.get("join", "")), max_chars=12)
        nickname = st.text_input(
            _("Nickname"),
            max_chars=40,  # The store allows 20 and says so; a longer paste is not cut silently.
            help=_("Any name the class will know you by: no real name needed. Letters, digits and spaces."),
        )
        if st.form_submit_button(_("Join"), type="primary"):
            wait = join_throttle().wait_for(keys)
            if wait > 0:
                st.error(
                    _("Too many wrong codes from here: wait {seconds} s, then check the code on the teacher's screen.").format(seconds=int(wait) + 1)
                )
                return
            try:
                student = classes.join(code, nickname, browser_owner())
            except UnknownCodeError as problem:
                join_throttle().failed(keys)
                st.error(problem_text(problem))
                return
            except ValueError as problem:
                st.error(problem_text(problem))
                return
            CLASS_MEMBER.set(student)
            CLASS_PROMPT.clear()
            st.query_params.pop("join", None)
            st.rerun()


def private_link() -> None:
    """The teacher link, once, folded (the projector shows the page): it opens the class's controls on another computer."""
    link = NEW_TEACHER_LINK.get()
    NEW_TEACHER_LINK.clear()
    if link:
        with st.expander(_("Your private teacher link (shown only now: open it to copy, keep it off the projector)")):
            st.caption(_("It opens this class's controls on any computer. This browser keeps them anyway, also after a reload."))
            st.code(link, language=None, wrap_lines=True)


def teacher_settings(info, key) -> None:
    with st.expander(_("Class settings"), expanded=info.model_name is None):
        labels = class_model_options()
        options = [None, *labels]
        if info.model_name and info.model_name not in labels:
            # Missing for now (a file moved away): it stays the class model until the teacher chooses another.
            options.append(info.model_name)
            st.warning(
                _("The class model {name} cannot be found or loaded now: put its file back, or choose another.").format(name=plain(info.model_name))
            )
        chosen = st.selectbox(
            _("Class model"),
            options,
            index=options.index(info.model_name) if info.model_name in options else 0,
            format_func=lambda name: (
                _("(none yet: train the quick digits model, or save a digits model on the Train page)")
                if name is None
                else labels.get(name, _("{name} (missing)").format(name=name))
            ),
            help=_("The digits model that answers the students' drawings and is measured on them: a saved model, or this server's quick model."),
        )
        is_open = st.toggle(_("Open to new drawings"), value=info.is_open)
        show_names = st.toggle(_("Show nicknames"), value=info.show_names, help=_("Off: the gallery and the runs table show no names."))
        st.caption(_("A lesson's budget for every training of the class (empty: this server's limits)."))
        left, right = st.columns(2)
        epochs_setting = SETTING["max_epochs"]
        max_epochs = left.number_input(
            _("Max epochs for the class"), int(epochs_setting.low), int(epochs_setting.high), value=info.max_epochs, placeholder=_("no limit")
        )
        images = right.selectbox(
            _("Training images for the class"),
            [None, 1_000, 5_000, 10_000, 20_000],
            index=[None, 1_000, 5_000, 10_000, 20_000].index(info.train_images) if info.train_images in (None, 1_000, 5_000, 10_000, 20_000) else 0,
            format_func=lambda size: _("all") if size is None else number(size),
            help=_("Fewer images train faster: a class of 25 gets its results sooner."),
        )
        changed = (chosen, is_open, show_names, max_epochs, images) != (
            info.model_name,
            info.is_open,
            info.show_names,
            info.max_epochs,
            info.train_images,
        )
        if changed:
            try:
                classes.set_model(info.class_id, key, chosen)
                classes.set_open(info.class_id, key, is_open)
                classes.set_show_names(info.class_id, key, show_names)
                classes.set_budget(info.class_id, key, None if max_epochs is None else int(max_epochs), images)
            except (TeacherKeyError, ValueError) as problem:
                st.error(problem_text(problem))
            else:
                st.rerun()


def digits_exports(info) -> None:
    """The class's digits as MNIST's IDX files and Keras' mnist.npz layout."""
    data, version = class_drawings(info)
    st.caption(
        _(
            "{count} drawings. Even-numbered drawings form the class's training half, odd-numbered its test half, so a model "
            "trained with our drawings is never tested on one it learned from."
        ).format(count=len(data))
    )
    left, right = st.columns(2)
    slug = f"class-{info.code.lower()}"
    idx_zip, npz = class_exports(info.class_id, version, slug)
    left.download_button(_("Download as IDX files (.zip, like MNIST)"), idx_zip, f"{slug}-idx.zip", "application/zip")
    right.download_button(_("Download as .npz (Keras' mnist.npz layout)"), npz, f"{slug}.npz", "application/octet-stream")


def teacher_view(info) -> None:
    key = teacher_key(info.class_id)
    private_link()
    if not st.session_state.get(RACE_ONLY):
        st.header(plain(info.name))
    # On the projector during a race: the race alone at the top, the chart first (with 25 students it began three
    # screens down).
    if st.toggle(
        _("Only the race, for the projector"),
        key=RACE_ONLY,
        help=_("Shows the class race at the top of the page and hides the join code, the settings and the drawings until you switch it off."),
    ):
        st.fragment(race, run_every=2.0)(info, teacher=True, projector=True)
        return
    keep_days = lab().config.keep_days
    removal = deletion_notice(info.created_at, keep_days)
    if removal is not None:
        st.warning(
            _(
                "This server keeps classes for {days} days: {name}, its drawings and its students' runs will be deleted on "
                "{date}. Download its drawings before then."
            ).format(days=keep_days, name=plain(info.name), date=day(removal)),
            icon=":material/auto_delete:",
        )
    address = students_url()
    url = join_url(info)
    code_column, qr_column = st.columns([3, 2])
    with code_column:
        st.markdown(_("Join code"))
        st.markdown(f"<div style='font-size:4rem;font-weight:700;letter-spacing:0.3rem;line-height:1.1'>{info.code}</div>", unsafe_allow_html=True)
        # The app's own address, in a code span: shown exactly as typed (no invisible joiner that plain() puts into an
        # address a student typed), in a typewriter face that tells 0 from O, and never turned into a link.
        st.markdown(_("or open **{url}**").format(url=f"`{url.replace('`', '')}`"))
        if address.loopback_only:
            st.warning(
                _(
                    "This address only works on this computer: no network address was found for it. Connect it to the school's "
                    "network, or start MNIST Lab with MNISTLAB_PUBLIC_URL set to the address students can open."
                )
            )
        if not info.is_open:
            st.warning(_("The class is closed: no new drawings are saved."))
    with qr_column:
        captioned_image(st, qr_png(url), width=260, caption=_("Scan to join"))

    teacher_settings(info, key)
    categories_settings(info, key)
    if info.categories is None:
        st.fragment(dashboard, run_every=DASHBOARD_EVERY)(info)
    else:
        st.fragment(category_dashboard, run_every=DASHBOARD_EVERY)(info)
    pace_controls(info, key)
    race_controls(info, key)
    st.fragment(race, run_every=2.0)(info, teacher=True)
    roster(info, key)
    hidden_drawings(info, key)

    st.header(_("Compare runs"))
    compare_runs(info)

    st.header(_("Our drawings as data"))
    if info.categories is not None:
        category_exports(info)
    else:
        digits_exports(info)

    st.header(_("The class's results"))
    st.caption(
        _(
            "For your records: one row per run each student trained in this class (settings, epochs, validation and test "
            "accuracy, seconds, whether it reached its target) and the drawings each made."
        )
    )
    # Made by the server when the teacher's browser asks for it (`mnistlab_ui.downloads`), as the results are then; a
    # link that downloads, not a Streamlit download, whose file a busy class's reruns deleted before it was fetched.
    label = html.escape(_("Download the results (.csv)"))
    st.markdown(f'<a href="{results_link(info)}" download="{file_name(info)}">⬇ {label}</a>', unsafe_allow_html=True)

    with st.expander(_("End the class")):
        st.write(
            _(
                "Deleting the class deletes for good its nicknames, its drawings, and the runs its students trained while in "
                "it (their models too). Download its drawings above first if you want to keep them."
            )
        )
        sure = st.checkbox(_("Yes, delete {name} with everything in it").format(name=plain(info.name)))
        if st.button(_("Delete the class and everything in it"), disabled=not sure):
            forgotten = lab().delete_class(info.class_id, key)
            # Said at the top of the page after the rerun (a toast is an unnamed alert dialog to a screen reader).
            deleted = len(forgotten.run_ids)
            CLASS_NOTICE.set(
                ngettext("{name} is deleted, with {runs} run.", "{name} is deleted, with {runs} runs.", deleted).format(
                    name=plain(info.name), runs=deleted
                )
            )
            TEACHER_KEYS.get().pop(info.class_id, None)
            TEACHING.clear()
            st.query_params.pop("class", None)
            st.rerun()
    if st.button(_("Leave the dashboard")):
        LEFT_DASHBOARD.set(True)
        TEACHING.clear()
        st.query_params.pop("class", None)
        st.rerun()


def student_view(student, info) -> None:
    st.header(plain(info.name))
    st.write(_("You are **{nickname}** in this class.").format(nickname=plain(student.nickname)))
    if not info.is_open:
        st.warning(_("The teacher has closed this class to new drawings."))
    else:
        if info.categories is None:
            page_link("pages/2_draw.py", _("Draw the digits the class needs"), ":material/draw:")
        else:
            page_link("pages/2_draw.py", _("Draw the class's categories: {names}").format(names=", ".join(info.categories.names)), ":material/draw:")
    tally = classes.tally(student.student_id)
    total = sum(tally.values())
    if total:
        each = " · ".join(f"{plain(category_name(info, label))}: {number(count)}" for label, count in tally.items())
        if info.categories is None:
            st.caption(_("Your drawings: {total}. Per digit: {digits}").format(total=number(total), digits=each))
        else:
            st.caption(_("Your drawings: {total}. Per category: {categories}").format(total=number(total), categories=each))
    else:
        st.caption(_("You have not drawn for the class yet."))
    st.fragment(race, run_every=2.0)(info)
    st.subheader(_("Share a run"))
    share_panel(info, student)
    st.subheader(_("Compare runs"))
    compare_runs(info)
    if st.button(_("Leave the class")):
        classes.leave(student.student_id, browser_owner())  # a reload, or the join link again, does not put this browser back
        CLASS_MEMBER.set(False)
        CLASS_PROMPT.clear()
        st.query_params.pop("join", None)
        st.rerun()


taught = teaching()
membership = member()
if taught is not None:
    keep_teacher_cookie()
    teacher_view(taught)
elif membership is not None:
    student_view(*membership)
else:
    mine = taught_by_this_browser()
    joining = "join" in st.query_params
    if len(mine) == 1 and not joining and not LEFT_DASHBOARD.get():
        # The teacher of one class opens Class from the navigation: its dashboard, without one more click.
        TEACHING.set(mine[0].class_id)
        st.query_params["class"] = mine[0].code
        st.rerun()
    st.subheader(_("Join a class"))
    join_class()
    # A student who opened the join link is not offered to start a class; a teacher finds it folded below.
    if joining:
        teach = st.expander(_("Teach a class"))
    else:
        st.subheader(_("Teach a class"))
        teach = st.container()
    with teach:
        for info in mine:
            if st.button(_("Open the dashboard of {name} ({code})").format(name=plain(info.name), code=info.code), key=f"teach-{info.class_id}"):
                LEFT_DASHBOARD.set(False)
                TEACHING.set(info.class_id)
                st.query_params["class"] = info.code
                st.rerun()
        start_class()
