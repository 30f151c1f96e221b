"""Real-browser tests: the app served by `streamlit run`, driven by Playwright in Debian's Chromium."""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (bash scripts/install.sh --dev)"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, digits_sample):
    """The app on a free port, with a model store holding one trained digits model."""
    from mnistlab.store import ModelStore, metadata_for
    from mnistlab.training import TrainingSettings, train

    models = tmp_path_factory.mktemp("browser-models")
    trained = train(TrainingSettings(dataset="mnist", arch="dense", target_accuracy=None, max_epochs=4), dataset=digits_sample)
    ModelStore(models).save("browser-digits", trained.model, metadata_for(trained))
    port = free_port()
    environment = dict(os.environ, MNISTLAB_MODELS_DIR=str(models), MNISTLAB_OFFLINE="1", TF_CPP_MIN_LOG_LEVEL="2")
    log = open(tmp_path_factory.mktemp("server") / "streamlit.log", "w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address", "127.0.0.1",
         "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        process.terminate()
        log.seek(0)
        raise RuntimeError("streamlit did not start:\n" + log.read())
    yield url
    process.terminate()
    process.wait(20)
    log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()


def assert_no_errors(page):
    if os.environ.get("MNISTLAB_SCREENSHOTS"):
        page.screenshot(path=os.path.join(os.environ["MNISTLAB_SCREENSHOTS"], page.url.rstrip("/").split("/")[-1] + ".png"), full_page=True)
    assert page.errors == [], page.errors
    assert page.locator('[data-testid="stException"]').count() == 0


def test_home_page(server, page):
    page.goto(server)
    page.get_by_text("What you will learn").wait_for(timeout=60_000)
    page.get_by_text("MNIST digits", exact=True).first.wait_for()
    page.locator('[data-testid="stImage"] img').first.wait_for(timeout=60_000)
    assert_no_errors(page)


def test_train_page_short_training_reaches_its_target(server, page):
    page.goto(f"{server}/train")
    page.get_by_role("button", name="Train", exact=True).wait_for(timeout=90_000)
    # The target slider: Home moves it to its minimum, 50%, so a short run reaches it.
    slider = page.get_by_role("slider").first
    slider.focus()
    slider.press("Home")
    page.wait_for_timeout(1500)
    page.get_by_role("button", name="Train", exact=True).click()
    progress = page.locator('[data-testid="stProgress"]').first
    progress.wait_for(timeout=60_000)
    page.get_by_text(re.compile(r"Reached \d+\.\d% validation accuracy at epoch \d+, batch \d+")).wait_for(timeout=120_000)
    page.get_by_text("Confusion matrix").wait_for(timeout=60_000)
    assert_no_errors(page)


def draw_a_one(page):
    canvas = page.locator("canvas.upper-canvas").first
    canvas.wait_for(timeout=60_000)
    box = canvas.bounding_box()
    x = box["x"] + box["width"] * 0.5
    page.mouse.move(x, box["y"] + box["height"] * 0.2)
    page.mouse.down()
    for step in range(1, 21):
        page.mouse.move(x + step * 0.3, box["y"] + box["height"] * (0.2 + 0.6 * step / 20))
    page.mouse.up()


def test_draw_page_predicts_a_drawing_and_clear_empties_it(server, page):
    page.goto(f"{server}/draw")
    draw_a_one(page)
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
    page.goto(f"{server}/convolutions")
    page.get_by_text("Kernel playground").wait_for(timeout=60_000)
    page.get_by_text(re.compile(r"2x2 max pooled: 13x13")).wait_for(timeout=60_000)
    page.locator('[data-testid="stImage"] img').nth(2).wait_for(timeout=60_000)
    assert_no_errors(page)
