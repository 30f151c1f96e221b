"""Which kernels TensorFlow computes with on this CPU: oneDNN's, on every x86 CPU, not only the newest.

TensorFlow's Linux build turns on oneDNN (Intel's library of fast CPU kernels for
convolutions and matrix products) by itself only on CPUs with AVX512-VNNI, AVX512-BF16
or AMX. On an AVX2-only CPU (most school PCs and many servers) it falls back to kernels
built for plain AVX, and convolutions on one core. On a 2-core AMD EPYC with AVX2 only,
lesson 4's fast-CNN step to 89% (`tests/test_lessons.py`) trained in 156 s without
oneDNN and 52 s with it. The numbers are float32 either way, added in another order.

The switch is the environment variable `TF_ENABLE_ONEDNN_OPTS`, read once when
TensorFlow is imported, so `mnistlab` sets it on import (every entry point imports
`mnistlab` before TensorFlow: the app, its worker processes and Ray tasks, the command
line). An operator who set it, to 0 or 1, keeps their choice.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"


def use_onednn(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Ask TensorFlow (imported after this) for oneDNN's kernels unless the operator chose; True when they are asked for."""
    environ.setdefault(ONEDNN_VARIABLE, "1")
    return environ[ONEDNN_VARIABLE].strip() not in ("0", "false", "False")


def onednn_in_use() -> bool:
    """Whether the TensorFlow of this process computes with oneDNN's kernels (imports TensorFlow)."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())
