"""The course's lessons as steps: each step opens a page of the app with the lesson's settings chosen.

The Home page lists them; a step is a page and the query of its link (see
`mnistlab.links`), so a teacher can also hand the class one step as a link.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnistlab.i18n import N_


@dataclass(frozen=True)
class Step:
    text: str  # what the student does (marked with N_, translated where shown)
    page: str  # the page's URL slug
    query: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Lesson:
    number: int
    title: str
    goal: str
    steps: tuple[Step, ...]


LESSONS: tuple[Lesson, ...] = (
    Lesson(
        1,
        N_("A dense network on clothes, stopped by a callback"),
        N_("Train a Flatten-Dense-Dense network on Fashion-MNIST and let a callback stop it as soon as it reaches 88%."),
        (
            Step(
                N_("Train the dense network on clothes until 88% validation accuracy"),
                "train",
                (("dataset", "fashion_mnist"), ("preset", "dense"), ("target", "0.88"), ("epochs", "20")),
            ),
        ),
    ),
    Lesson(
        2,
        N_("Digits, and drawing your own"),
        N_("Train the same network on handwritten digits, then draw digits for it and see what it sees."),
        (
            Step(
                N_("Train the dense network on digits until 95% validation accuracy"),
                "train",
                (("dataset", "mnist"), ("preset", "dense"), ("target", "0.95"), ("epochs", "20")),
            ),
            Step(N_("Draw digits for your network"), "draw"),
        ),
    ),
    Lesson(
        3,
        N_("Convolutions and pooling"),
        N_("Slide a 3x3 edge kernel over a digit, see the 26x26 result and what 2x2 max pooling keeps of it."),
        (
            Step(N_("The edge kernel on a digit"), "convolutions", (("kernel", "edge"), ("dataset", "mnist"))),
            Step(N_("A Sobel kernel on clothes"), "convolutions", (("kernel", "sobel_vertical"), ("dataset", "fashion_mnist"))),
        ),
    ),
    Lesson(
        4,
        N_("A CNN against the dense network"),
        N_(
            "Train a small CNN and the dense network on clothes to the same target, then compare how many epochs each needed and their test accuracy."
        ),
        (
            Step(
                N_("Train the fast CNN on clothes until 89%"),
                "train",
                # The preset's own epochs: its one-cycle schedule spans them (stretched over 15, its warm-up alone
                # took 4 epochs, and it reached 89% at epoch 5 instead of 2).
                (("dataset", "fashion_mnist"), ("preset", "fast_cnn"), ("target", "0.89")),
            ),
            Step(
                N_("Train the dense network on clothes until 89%"),
                "train",
                (("dataset", "fashion_mnist"), ("preset", "dense"), ("target", "0.89"), ("epochs", "15")),
            ),
        ),
    ),
    Lesson(
        5,
        N_("Inside the answer"),
        N_(
            "Draw a digit, see which pixels made the network answer, fool it with a change you can barely see, find your "
            "drawing among the test images, and switch parts of the network off."
        ),
        (
            Step(N_("Draw a digit for a CNN"), "draw"),
            Step(N_("See why it answered, and fool it"), "explain"),
        ),
    ),
)


def step_title(lesson: Lesson, step: Step) -> str:
    """A step as a teacher and a student read it: "Lesson 4: Train the fast CNN on clothes until 89%"."""
    from mnistlab.i18n import _

    return _("Lesson {number}: {step}").format(number=lesson.number, step=_(step.text))


def training_steps() -> list[tuple[Lesson, Step]]:
    """The steps that train a network on the Train page (what a class can race), in the course's order."""
    return [(lesson, step) for lesson in LESSONS for step in lesson.steps if step.page == "train"]


def step_settings(step: Step):
    """The training settings a Train step's link opens the page with."""
    from mnistlab.links import read_link
    from mnistlab.settings import settings_from_link

    return settings_from_link(read_link("train", dict(step.query)).values)
