"""Real-browser tests: the app served by `streamlit run`, driven by Playwright in Debian's Chromium,
at a projector's 1024x768 and on a 390-pixel phone with touch."""

from __future__ import annotations

import os
import re

import pytest

from benchmarks.browsers import CHROMIUM, PHONE, PROJECTOR, AppServer, chromium, draw_stroke, one, seven

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (bash scripts/install.sh --dev)"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory, digits_sample):
    """The app on a free port, with a model store holding one trained digits model."""
    from mnistlab.settings import TrainingSettings
    from mnistlab.store import ModelStore, metadata_for
    from mnistlab.training import train

    folder = tmp_path_factory.mktemp("browser")
    trained = train(TrainingSettings(dataset="mnist", arch="dense", target_accuracy=None, max_epochs=4), dataset=digits_sample)
    ModelStore(folder / "models").save("browser-digits", trained.model, metadata_for(trained))
    app = AppServer(folder / "data", folder / "models", folder / "streamlit.log").start()
    yield app
    app.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = chromium(playwright)
        yield launched
        launched.close()


def new_page(browser, viewport=PROJECTOR, touch=False):
    context = browser.new_context(viewport=viewport, has_touch=touch, is_mobile=touch)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    return page


@pytest.fixture
def page(browser):
    page = new_page(browser)
    yield page
    page.context.close()


@pytest.fixture
def phone(browser):
    page = new_page(browser, PHONE, touch=True)
    yield page
    page.context.close()


def assert_no_errors(page, name=""):
    if os.environ.get("MNISTLAB_SCREENSHOTS"):
        slug = name or page.url.rstrip("/").split("/")[-1]
        page.screenshot(path=os.path.join(os.environ["MNISTLAB_SCREENSHOTS"], f"{slug}-{page.viewport_size['width']}.png"), full_page=True)
    assert page.errors == [], page.errors
    assert page.locator('[data-testid="stException"]').count() == 0


def test_home_page(server, page):
    page.goto(server.url)
    page.get_by_text("What you will learn").wait_for(timeout=60_000)
    page.get_by_text("MNIST digits", exact=True).first.wait_for()
    page.locator('[data-testid="stImage"] img').first.wait_for(timeout=60_000)
    assert_no_errors(page)


def test_train_page_short_training_reaches_its_target(server, page):
    page.goto(f"{server.url}/train")
    page.get_by_role("button", name="Train", exact=True).wait_for(timeout=90_000)
    # The target slider: Home moves it to its minimum, 50%, so a short run reaches it.
    slider = page.get_by_role("slider").first
    slider.focus()
    slider.press("Home")
    page.wait_for_timeout(1500)
    page.get_by_role("button", name="Train", exact=True).click()
    page.locator('[data-testid="stProgress"]').first.wait_for(timeout=60_000)
    page.get_by_text(re.compile(r"Reached \d+\.\d% validation accuracy at epoch \d+, batch \d+")).wait_for(timeout=120_000)
    page.get_by_text("Confusion matrix").wait_for(timeout=60_000)
    assert_no_errors(page)


def test_draw_page_predicts_a_drawing_and_clear_empties_it(server, page):
    page.goto(f"{server.url}/draw")
    draw_stroke(page, one())
    metric = page.locator('[data-testid="stMetric"]').filter(has_text="Prediction")
    metric.wait_for(timeout=60_000)
    value = metric.locator('[data-testid="stMetricValue"]').inner_text().strip()
    assert value in [str(digit) for digit in range(10)]
    page.get_by_text("What the network sees", exact=True).wait_for()
    page.get_by_role("button", name="Clear").click()
    page.get_by_text("Draw a digit on the black square").wait_for(timeout=30_000)
    assert page.locator('[data-testid="stMetric"]').filter(has_text="Prediction").count() == 0
    assert_no_errors(page)


def test_convolutions_page_shows_images(server, page):
    page.goto(f"{server.url}/convolutions")
    page.get_by_text("Kernel playground").wait_for(timeout=60_000)
    page.get_by_text(re.compile(r"2x2 max pooled: 13x13")).wait_for(timeout=60_000)
    page.locator('[data-testid="stImage"] img').nth(2).wait_for(timeout=60_000)
    assert_no_errors(page)


def test_phone_draws_with_a_finger_and_sees_the_answer_next_to_the_canvas(server, phone):
    phone.goto(f"{server.url}/draw")
    draw_stroke(phone, seven(), touch=True)
    metric = phone.locator('[data-testid="stMetric"]').filter(has_text="Prediction")
    metric.wait_for(timeout=60_000)
    canvas_box = phone.locator("canvas.upper-canvas").last.bounding_box()
    metric_box = metric.bounding_box()
    # Canvas and answer fit on the screen together.
    assert metric_box["y"] + metric_box["height"] - canvas_box["y"] <= PHONE["height"]
    assert_no_errors(phone, "draw-phone")
