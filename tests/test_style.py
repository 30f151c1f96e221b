"""The house style is checked like everything else: ruff's lint and format rules (configured in pyproject.toml)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def ruff(*arguments):
    return subprocess.run([sys.executable, "-m", "ruff", *arguments], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(
    shutil.which("ruff") is None and subprocess.run([sys.executable, "-m", "ruff", "--version"], capture_output=True).returncode,
    reason="ruff is not installed (bash scripts/install.sh --dev)",
)
def test_ruff_lint_and_format():
    lint = ruff("check", ".")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    formatted = ruff("format", "--check", ".")
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr


def test_the_core_never_imports_streamlit_or_the_app():
    """mnistlab is pure Python: imports go one way, from the pages and mnistlab_ui to mnistlab."""
    offenders = []
    for path in (ROOT / "mnistlab").rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")) and any(
                name in stripped.split()[1] for name in ("streamlit", "mnistlab_ui", "benchmarks", "tests")
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {stripped}")
    assert offenders == []
