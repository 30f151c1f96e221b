"""TensorFlow computes with oneDNN's kernels on every CPU once mnistlab is imported, and an operator's choice stands."""

import os
import subprocess
import sys

import pytest

from mnistlab.cpu_kernels import ONEDNN_VARIABLE, use_onednn


def test_oneDNN_is_asked_for_unless_the_operator_chose():
    environ: dict[str, str] = {}
    assert use_onednn(environ) is True and environ == {ONEDNN_VARIABLE: "1"}
    chosen = {ONEDNN_VARIABLE: "0"}
    assert use_onednn(chosen) is False and chosen == {ONEDNN_VARIABLE: "0"}


@pytest.mark.slow
def test_tensorflow_imported_after_mnistlab_uses_oneDNN_even_where_it_would_not_by_itself():
    # On a CPU without AVX512-VNNI, AVX512-BF16 or AMX (an AVX2 one), TensorFlow alone answers False here.
    environment = {key: value for key, value in os.environ.items() if key != ONEDNN_VARIABLE}
    environment["TF_CPP_MIN_LOG_LEVEL"] = "3"
    code = "import mnistlab.cpu_kernels\nprint(mnistlab.cpu_kernels.onednn_in_use())"
    completed = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.split()[-1] == "True"
