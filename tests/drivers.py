"""The drivers tests and benchmarks share: the app as a class sees it, and a lab's Ray cluster on this machine.

`AppServer` starts the app (`streamlit run mnistlab_ui/asgi.py`, as the README does) on
a free port with its own data home and model store and stops it again; `chromium()`
launches Debian's Chromium with the flags this machine needs; `draw_stroke` draws with
the mouse or with touch (CDP touch events) on the drawing canvas, which lives in an open
shadow root; `choose` picks an option of a select box and waits for the page to take
it. `LocalRayCluster` starts a Ray head the way a lab's head PC does. The benchmarks
import these from here; tests never import from the benchmarks.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PROJECTOR = {"width": 1024, "height": 768}
PHONE = {"width": 390, "height": 844}


def free_port(address: str = "127.0.0.1") -> int:
    """A port free on `address` now (another process may still take it before the server binds it)."""
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


class AppServer:
    """`streamlit run mnistlab_ui/asgi.py` (the README's run command) on a free port; `stop()` ends it and its worker
    processes. `command(port, address)` starts it another way (an installed `mnistlab serve`), in the folder `cwd`."""

    def __init__(
        self,
        data_home: Path,
        models_dir: Path,
        log_path: Path,
        address: str = "127.0.0.1",
        command: Callable[[int, str], list[str]] | None = None,
        cwd: Path = ROOT,
        **environment: str,
    ):
        self.address = address
        self.port = free_port(address)
        self.log_path = log_path
        self.command = command or self.streamlit_run
        self.cwd = cwd
        self.environment = {
            **os.environ,
            "MNISTLAB_DATA_HOME": str(data_home),
            "MNISTLAB_MODELS_DIR": str(models_dir),
            "MNISTLAB_OFFLINE": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            **environment,
        }
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 90, attempts: int = 3) -> AppServer:
        """Start the server and wait until it answers; on a port another process took meanwhile, try a new one."""
        for attempt in range(attempts):
            if attempt:
                self.port = free_port(self.address)
            if self._started(timeout):
                return self
            log = self.log_path.read_text()
            self.stop()
            if f"Port {self.port} is not available" not in log:
                break
        raise RuntimeError("streamlit did not start:\n" + self.log_path.read_text()[-5000:])

    def _started(self, timeout: float) -> bool:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "a+")
        self.process = subprocess.Popen(
            self.command(self.port, self.address),
            cwd=self.cwd,
            env=self.environment,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.3)
        return False

    @staticmethod
    def streamlit_run(port: int, address: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "mnistlab_ui/asgi.py",
            "--server.port",
            str(port),
            "--server.address",
            address,
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # The whole process group: the server and the workers it started.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None
        if getattr(self, "log", None):
            self.log.close()

    def cpu_seconds(self) -> float:
        """CPU seconds the server process (not its workers) has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks


def _processes(names, pid: int | None = None):
    """The /proc folders of the running processes whose command line mentions one of `names` (or whose id is `pid`)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if any(name in command for name in names) or entry.name == str(pid):
            yield entry


def processes_cpu_seconds(*names: str) -> float:
    """CPU seconds used so far by every running process whose command line mentions one of `names`."""
    total, ticks = 0.0, os.sysconf("SC_CLK_TCK")
    for entry in _processes(names):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        except OSError:
            continue
    return total


def resident_megabytes(*names: str, pid: int | None = None) -> float:
    """The resident memory (MB) of the running processes whose command line mentions one of `names` (or of `pid`)."""
    total = 0.0
    for entry in _processes(names, pid):
        try:
            total += next(int(line.split()[1]) for line in (entry / "status").read_text().splitlines() if line.startswith("VmRSS:")) / 1024
        except (OSError, StopIteration):
            continue
    return total


def browsers_cpu_seconds() -> float:
    """CPU seconds of the Chromium processes and Playwright's driver (the stand-ins for the class's own devices)."""
    return processes_cpu_seconds("chromium", "playwright/driver")


def chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def open_expander(page, label, timeout: float = 30.0) -> None:
    """Open the expander whose label starts with `label` (a text or a pattern) and wait until it stays open: a click
    that lands while the page is running again can be undone by that run, so it is made again until it holds."""
    pattern = re.compile(re.escape(label)) if isinstance(label, str) else label
    summary = page.locator("summary").filter(has_text=pattern).first
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        wait_until_idle(page)
        if not summary.evaluate("(element) => element.parentElement.open"):
            summary.click()
        wait_until_idle(page)
        if summary.evaluate("(element) => element.parentElement.open"):
            return
    raise AssertionError(f"the expander {label!r} did not stay open")


def open_settings(page) -> None:
    """Bring back the Train page's settings (they step aside behind a switch while a run trains)."""
    name = re.compile("^(Show the settings|Ayarları göster)$")
    switch = page.get_by_role("switch", name=name).or_(page.get_by_role("checkbox", name=name))
    switch.wait_for(timeout=60_000)
    wait_until_idle(page)
    if not switch.is_checked():
        switch.check(force=True)
    page.get_by_role("spinbutton", name=re.compile("^(Max epochs|En fazla epok)$")).wait_for(timeout=60_000)
    wait_until_idle(page)


def until_it_holds(attempt, seconds: float = 60, after_failure=None) -> None:
    """Call `attempt` until it returns without a Playwright timeout (a rerun that lands with a click can undo it);
    `after_failure` tidies up before the next try."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            attempt()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            if after_failure is not None:
                after_failure()


def start_class(page, url: str, name: str) -> str:
    """Start a class named `name` on the Class page of the app at `url`; its join code."""
    page.goto(f"{url}/class")
    page.get_by_role("textbox", name="Class name").fill(name)
    page.get_by_role("button", name="Start a class").click()
    code_box = page.locator("div[style*='letter-spacing']")
    code_box.wait_for(timeout=60_000)
    return code_box.inner_text().strip()


def start_race(page, target: int, number: int = 1) -> None:
    """On a teacher's dashboard, start the class's race number `number` (no lesson step, its offered name "Race N") to
    `target` percent validation accuracy, and wait until the projector shows it. In the language the caller set with
    `mnistlab.i18n.set_language` (the page's)."""
    from mnistlab.i18n import _, percent

    caption = _(
        "Target: {target} validation accuracy, measured at the end of each epoch as the stop measures it; labels say how a run differs from {step}."
    )
    heading = page.get_by_role("heading", name=_("Class race: {name}").format(name=_("Race {number}").format(number=number)))
    target_shown = page.get_by_text(re.compile("^" + re.escape(caption.split("{target}")[0] + percent(target / 100))))

    def attempt():
        if heading.count():  # an earlier attempt started it; the page was only slow to show it
            target_shown.first.wait_for(timeout=30_000)
            return
        open_expander(page, _("Start a race"))  # open while the class has no race yet; folded once it has one
        fill_number(page, _("Target: validation accuracy (%)"), target)
        wait_until_idle(page)
        page.get_by_role("button", name=_("Start a new race")).click()
        heading.wait_for(timeout=30_000)
        target_shown.first.wait_for(timeout=30_000)

    until_it_holds(attempt, 180)


def choose(page, label: str, option, timeout: float = 60) -> None:
    """Pick `option` (a name, or a pattern of it) in the select box labelled `label`, and let the page take it.

    A rerun that arrives while the list is open (a toggle's, a link's) closes the list or replaces the box, so the
    whole pick is tried again until the box shows the option."""
    pattern = re.escape(option) if isinstance(option, str) else option.pattern
    shows = (
        '([label, pattern]) => { const box = document.querySelector(`input[aria-label="${label}"]`); if (!box) return false;'
        " const shown = box.value || (box.closest('[data-baseweb=select]') || box.parentElement).innerText;"
        " return new RegExp(pattern).test(shown); }"
    )

    def attempt():
        wait_until_idle(page)
        box = page.get_by_role("combobox", name=label)
        # In the middle of the screen, so its list has room to open below it.
        box.evaluate("(element) => element.scrollIntoView({block: 'center', behavior: 'instant'})")
        box.click(timeout=5_000)
        wanted = page.get_by_role("option", name=option, exact=isinstance(option, str))
        try:
            wanted.wait_for(timeout=1500)
        except Exception:  # noqa: BLE001 (Playwright's timeout)
            # Right after an expander opens, a click only focuses the box; the arrow key opens its list.
            box.press("ArrowDown")
        wanted.click(timeout=5_000)
        # The page has taken the choice when the box shows it and the script has run again.
        page.wait_for_function(shows, arg=[label, pattern], timeout=10_000)
        wait_until_idle(page)

    until_it_holds(attempt, timeout, after_failure=lambda: page.keyboard.press("Escape"))  # close a list left open


def server_has(page, *fragments: str, timeout: float = 60_000) -> None:
    """Wait until the server has taken a change of the Train page's settings: its "Copy link to these settings" link,
    which the server writes from the settings it has, contains every fragment ("epochs=150", "target=off")."""
    page.wait_for_function(
        "(fragments) => [...document.querySelectorAll('code')].some((code) => fragments.every((part) => code.textContent.includes(part)))",
        arg=list(fragments),
        timeout=timeout,
    )
    wait_until_idle(page)


def target_to_minimum(page) -> None:
    """Move the target slider to its minimum (10%: any short run reaches it) and wait until the server has it."""
    slider = page.get_by_role("slider").first
    slider.focus()
    slider.press("Home")
    server_has(page, "target=0.1&")


def fill_number(page, label: str, value: int, link_key: str | None = None) -> None:
    """Type a number into the number box labelled `label`; with `link_key`, wait until the server has taken it."""
    box = page.get_by_role("spinbutton", name=label)
    box.fill(str(value))
    box.press("Enter")
    if link_key:
        server_has(page, f"{link_key}={value}")


def train_without_target(page, epochs: int = 150) -> None:
    """Untick "Stop at a target accuracy" and set the maximum epochs, each taken by the server."""

    def untick():
        wait_until_idle(page)
        box = page.get_by_role("checkbox", name="Stop at a target accuracy")
        if box.is_checked():
            box.uncheck(force=True)
        server_has(page, "target=off", timeout=10_000)

    until_it_holds(untick)  # a rerun that lands with the click can put the tick back
    fill_number(page, "Max epochs", epochs, "epochs")


def press_train(page) -> None:
    """Press Train once no script runs (a press that lands while a rerun replaces the form can be lost), and wait until
    the new run is training: its Stop button shows. (An earlier, finished run's "Epoch N: batch" line is already there.)"""
    wait_until_idle(page)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_role("button", name="Stop", exact=True).wait_for(timeout=60_000)


def settled(page, timeout: float = 60_000) -> None:
    """Wait until the page has stopped changing: no script running, every image loaded, every chart drawn."""
    wait_until_idle(page, timeout)
    page.wait_for_function(
        "() => [...document.images].every((image) => image.complete)"
        " && [...document.querySelectorAll('[data-testid=\"stVegaLiteChart\"]')].every((chart) => chart.querySelector('canvas, svg'))",
        timeout=timeout,
    )


def canvas(page):
    """The drawing surface of the newest canvas the student sees (a page being replaced can leave a hidden one after it:
    under load CI once waited 60 s on a hidden canvas)."""
    return page.locator("canvas.upper-canvas").filter(visible=True).last


def clear_canvas(page) -> None:
    """Press Clear and wait until the new, empty canvas has replaced the old one."""
    old = canvas(page).element_handle()
    page.get_by_role("button", name="Clear").click()
    page.wait_for_function("(canvas) => !canvas.isConnected", arg=old, timeout=30_000)
    canvas(page).wait_for(timeout=30_000)


def wait_until_idle(page, timeout: float = 60_000) -> None:
    """Wait until the app is not running a script (Streamlit's running indicator is gone)."""
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout)


def draw_stroke(page, points: list[tuple[float, float]], touch: bool = False) -> None:
    """Draw one stroke through `points` (fractions of the canvas' width and height), with the mouse or a finger."""
    surface = canvas(page)
    surface.wait_for(timeout=60_000)
    # A rerun in progress may replace the canvas under the pen.
    wait_until_idle(page)
    # The whole canvas on screen (a stroke that leaves the window is lost), and where it is now
    # (after Clear the page gets shorter and may still move).
    surface.evaluate("(element) => element.scrollIntoView({block: 'center', behavior: 'instant'})")
    # Wait until the canvas stays where it is for a few frames.
    surface.evaluate(
        """(element) => new Promise((resolve) => {
            let last = null, same = 0;
            const check = () => {
                const box = element.getBoundingClientRect(), key = [box.x, box.y, box.width, box.height].join();
                same = key === last ? same + 1 : 0;
                last = key;
                if (same >= 5) resolve(); else requestAnimationFrame(check);
            };
            check();
        })"""
    )
    box = surface.bounding_box()
    coordinates = [(box["x"] + box["width"] * x, box["y"] + box["height"] * y) for x, y in points]
    if not touch:
        page.mouse.move(*coordinates[0])
        page.mouse.down()
        for x, y in coordinates[1:]:
            page.mouse.move(x, y, steps=2)
        page.mouse.up()
        return
    session = page.context.new_cdp_session(page)
    kinds = ["touchStart"] + ["touchMove"] * (len(coordinates) - 2) + ["touchEnd"]
    for kind, (x, y) in zip(kinds, coordinates):
        points_now = [] if kind == "touchEnd" else [{"x": x, "y": y, "radiusX": 4, "radiusY": 4, "force": 1, "id": 1}]
        session.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points_now})
    session.detach()


def one(steps: int = 20) -> list[tuple[float, float]]:
    """A slightly slanted vertical stroke: a "1"."""
    return [(0.5 + step * 0.001, 0.2 + 0.6 * step / steps) for step in range(steps + 1)]


def seven(steps: int = 20) -> list[tuple[float, float]]:
    top = [(0.3 + 0.4 * step / steps, 0.22) for step in range(steps + 1)]
    down = [(0.7 - 0.25 * step / steps, 0.22 + 0.6 * step / steps) for step in range(1, steps + 1)]
    return top + down


# A Ray cluster on this machine, started the way a lab's head PC starts one (`ray start --head`). Token
# authentication is on: the cluster and every client share a random token (RAY_AUTH_MODE=token, RAY_AUTH_TOKEN).


def seed_finished_run(runs, database, owner: str, settings, values, reached=None, waited: float = 1.0) -> int:
    """A run in a runs store that trained its epochs to these validation accuracies (one every 10 s) and finished,
    `waited` seconds after it was pressed (a class's runs for a page to show, without training them)."""
    import sqlalchemy as sa

    from mnistlab.database import runs as runs_table
    from mnistlab.events import EpochRecord, TrainingResult
    from mnistlab.runs import encode_epoch, encode_result

    run_id = runs.create(owner, settings, "test")
    history = [EpochRecord(index + 1, 0.3, value + 0.03, 0.3, value, 10.0 * (index + 1)) for index, value in enumerate(values)]
    result = TrainingResult(
        dataset=settings.dataset,
        arch=settings.arch,
        epochs_run=len(values),
        stop_reason="target" if reached else "max_epochs",
        target_accuracy=settings.target_accuracy,
        monitor=settings.monitor,
        target_reached=reached,
        train_accuracy=None,
        train_loss=None,
        val_accuracy=values[-1],
        val_loss=None,
        test_accuracy=0.885,
        test_loss=None,
        seconds=10.0 * len(values),
        parameters=101_770,
        data_source="test",
        normalization=settings.normalization,
        history=tuple(history),
    )
    with database.engine.begin() as connection:
        created = connection.execute(sa.select(runs_table.c.created_at).where(runs_table.c.id == run_id)).scalar_one()
        connection.execute(
            runs_table.update()
            .where(runs_table.c.id == run_id)
            .values(
                status="finished",
                epochs=[encode_epoch(record) for record in history],
                result=encode_result(result),
                plan={"batches_per_epoch": 1688, "parameters": 101_770},
                started_at=created + waited,
                ended_at=created + waited + 10 * len(values),
            )
        )
    return run_id


# A class's own images, made as a class would make them: shapes drawn by many hands, photographed or scanned.

SHAPE_KINDS = ("circle", "square", "triangle")


def shape_picture(kind: str, size: int = 120, dark_on_light: bool = True, colour: bool = False, shift: int = 0, seed: int | None = None):
    """A drawn shape (circle, square or triangle) as a picture of paper would have it: any size, dark on light or light
    on dark, grey or colour; with `seed`, drawn by another hand (its own size, place, slant and pen)."""
    import random

    from PIL import Image, ImageDraw

    hand = random.Random(seed)
    paper, ink = ((250, 248, 240), (20, 30, 120)) if dark_on_light else ((0, 0, 0), (255, 255, 255))
    picture = Image.new("RGB" if colour else "L", (size, size), paper if colour else paper[0])
    draw = ImageDraw.Draw(picture)
    scale = hand.uniform(0.35, 0.6) if seed is not None else 0.5
    left = size * hand.uniform(0.1, 0.9 - scale) + shift if seed is not None else size * 0.2 + shift
    top = size * hand.uniform(0.1, 0.9 - scale) if seed is not None else size * 0.2
    right, bottom = left + size * scale, top + size * scale * (hand.uniform(0.85, 1.15) if seed is not None else 1.2)
    fill = ink if colour else ink[0] if dark_on_light else 255
    width = max(3, int(size * (hand.uniform(0.04, 0.09) if seed is not None else 1 / 15)))
    if kind == "circle":
        draw.ellipse((left, top, right, bottom), outline=fill, width=width)
    elif kind == "square":
        draw.rectangle((left, top, right, bottom), outline=fill, width=width)
    elif kind == "triangle":
        draw.line([((left + right) / 2, top), (right, bottom), (left, bottom), ((left + right) / 2, top)], fill=fill, width=width, joint="curve")
    else:
        raise ValueError(f"no shape called {kind!r}")
    return picture.rotate(hand.uniform(-12, 12), fillcolor=paper if colour else paper[0]) if seed is not None else picture


def encoded(picture, kind: str = "PNG") -> bytes:
    import io

    out = io.BytesIO()
    picture.save(out, format=kind)
    return out.getvalue()


def make_folder(
    root: Path, categories=("circle", "square"), per_category: int = 3, shapes: dict[str, str] | None = None, hands: bool = False, first_hand: int = 0
) -> Path:
    """A folder per category of PNG and JPEG pictures (sizes 60 px and up, light and dark paper, grey and colour);
    `shapes` names the shape drawn for a category (default: its own name); `hands`: each picture by another hand
    (hands numbered from `first_hand`: another number, other hands)."""
    for index, category in enumerate(categories):
        (root / category).mkdir(parents=True)
        shape = (shapes or {}).get(category, category)
        for number in range(per_category):
            size = 60 + 40 * (number % 4)
            picture = shape_picture(
                shape,
                size,
                dark_on_light=number % 2 == 0,
                colour=number % 3 == 2,
                shift=(number % 4) * 3,
                seed=first_hand + 1000 * index + number if hands else None,
            )
            jpeg = number % 3 == 1
            data = encoded(picture.convert("RGB"), "JPEG") if jpeg else encoded(picture)
            (root / category / f"{number}{'.jpg' if jpeg else '.png'}").write_bytes(data)
    return root


SHAPES = {0: "circle", 1: "square", 2: "triangle"}


def drawn_by_a_class(students: int = 9, each: int = 4, removed_too: bool = False):
    """A class's drawings of a set of shapes (`SHAPES`: category number -> shape), as `ClassDrawings`, and the
    students' nicknames: each student draws `each` of every shape in their own hand, as the network sees it (28x28);
    with `removed_too`, a fourth category's drawings as well (its number 3)."""
    import numpy as np

    from mnistlab.class_drawings import ClassDrawings
    from mnistlab.preprocessing import load_image_bytes, preprocess

    ids, images, labels, owners = [], [], [], []
    kinds = {**SHAPES, 3: "circle"} if removed_too else SHAPES
    for student in range(1, students + 1):
        for label, kind in kinds.items():
            for number in range(each):
                picture = shape_picture(kind, 120, seed=10_000 * student + 100 * label + number)
                image = preprocess(load_image_bytes(encoded(picture))).image
                ids.append(len(ids) + 1)
                images.append(np.round(image * 255).astype(np.uint8))
                labels.append(label)
                owners.append(student)
    nicknames = {student: f"Öğrenci {student}" for student in range(1, students + 1)}
    return ClassDrawings(np.array(ids), np.stack(images), np.array(labels, np.uint8), np.array(owners)), nicknames


def ray_installed() -> bool:
    return shutil.which("ray") is not None


class LocalRayCluster:
    """`ray start --head` with `cpus` CPUs on a free port; `environment` is what a client needs to join it."""

    def __init__(self, cpus: int = 2):
        self.cpus = cpus
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        # Ray's sockets live under its temp folder, whose path must stay short.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
        self.environment = {
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(32),
            "RAY_USAGE_STATS_ENABLED": "0",
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }

    def start(self) -> LocalRayCluster:
        command = [
            "ray",
            "start",
            "--head",
            f"--port={self.port}",
            "--node-ip-address=127.0.0.1",
            f"--num-cpus={self.cpus}",
            f"--ray-client-server-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={self.temp_dir}",
        ]
        completed = subprocess.run(command, env=dict(os.environ, **self.environment), capture_output=True, text=True, timeout=180)
        if completed.returncode != 0:
            raise RuntimeError(f"ray start failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
        return self

    def stop(self) -> None:
        """Kill this cluster's processes only (`ray stop` would stop every Ray cluster on the machine)."""
        for pid in self._processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def _processes(self) -> list[int]:
        """The processes started with this cluster's temp folder in their arguments, and all their descendants."""
        parents: dict[int, int] = {}
        ours: set[int] = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                arguments = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if str(self.temp_dir) in arguments:
                ours.add(int(entry.name))
        grew = True
        while grew:
            children = {pid for pid, parent in parents.items() if parent in ours} - ours
            grew = bool(children)
            ours |= children
        ours.discard(os.getpid())
        return sorted(ours)


# Waiting for a condition (never for a fixed time), and a drawing as the canvas component sends it


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll `condition` until it is true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())


def canvas_value(image) -> dict:
    """What the drawing canvas sends to the server for a picture (AppTest puts it in the canvas's widget state)."""
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return {"drawing": {"raw": {"objects": []}, "data": "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()}}


# PostgreSQL for the tests: the CI's server (MNISTLAB_TEST_POSTGRES_URL, started by .ci/run), or a throwaway cluster


class PostgresCluster:
    """A private PostgreSQL cluster in a temporary folder on a free port (initdb and pg_ctl of Debian's postgresql).

    PostgreSQL refuses to run as root, so as root it runs as the postgres user. `url` is a SQLAlchemy URL of its
    maintenance database; `fresh_database()` makes an empty database for one test."""

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="mnistlab-pg-"))
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def binaries() -> Path | None:
        versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda path: int(path.parent.parent.name))
        return versions[-1].parent if versions else None

    def _as_owner(self, command: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command

    def start(self) -> PostgresCluster:
        binaries = self.binaries()
        if binaries is None:
            raise RuntimeError("PostgreSQL is not installed (bash scripts/install.sh --dev installs Debian's postgresql).")
        data = self.folder / "data"
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
        subprocess.run(
            self._as_owner([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
            check=True,
            capture_output=True,
        )
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        subprocess.run(
            self._as_owner([str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(self.folder / "log"), "-w", "start"]),
            check=True,
            capture_output=True,
        )
        return self

    def stop(self) -> None:
        binaries = self.binaries()
        if binaries is not None:
            subprocess.run(
                self._as_owner([str(binaries / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "stop"]), capture_output=True
            )
        shutil.rmtree(self.folder, ignore_errors=True)


def fresh_postgres_database(maintenance_url: str) -> tuple[str, Callable[[], None]]:
    """A new, empty database on the server of `maintenance_url`; returns its URL and a function that drops it."""
    import sqlalchemy as sa

    name = f"mnistlab_{secrets.token_hex(6)}"
    engine = sa.create_engine(maintenance_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(maintenance_url).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        from mnistlab import database as database_module

        known = database_module._databases.pop(url, None)
        if known is not None:
            known.dispose()
        with engine.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        engine.dispose()

    return url, drop
