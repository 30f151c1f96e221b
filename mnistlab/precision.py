"""Which number format a training computes in: bfloat16 where this CPU has it, float32 elsewhere.

CPUs with AVX512-BF16 (or AMX) compute bfloat16 matrix products about twice as fast as
float32 ones. Keras' `mixed_bfloat16` policy computes the layers in bfloat16 and keeps
the weights in float32; the output layer computes in float32 and a saved model is
float32 throughout (`mnistlab.layers.portable_model`), so a downloaded model loads
anywhere. The benchmark measures, per preset, that accuracy stays within 0.3 points
and that epochs get shorter; the presets that use it are `BFLOAT16_PRESETS` (the
convolutional ones, about 1.55x faster per epoch; a dense network trains packed, in
float32, which is faster still). `MNISTLAB_PRECISION` (auto, float32 or bfloat16)
overrides the choice.
"""

from __future__ import annotations

import contextlib
import os
import platform
from functools import cache
from pathlib import Path

FLOAT32 = "float32"
MIXED_BFLOAT16 = "mixed_bfloat16"
# Measured by `python -m benchmarks training` (docs/PERFORMANCE.md): faster, and within 0.3 points of float32.
BFLOAT16_PRESETS = frozenset({"cnn", "fast_cnn", "accurate_cnn"})
CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@cache
def cpu_has_bfloat16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bfloat16 products natively (Linux: its flags in /proc/cpuinfo)."""
    if platform.system() != "Linux":
        return False
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return any(flag in flags for flag in CPU_FLAGS)
    return False


def configured(environ=None) -> str:
    """MNISTLAB_PRECISION: "auto" (the default), "float32" or "bfloat16"; anything else is refused."""
    value = (environ if environ is not None else os.environ).get("MNISTLAB_PRECISION", "").strip().lower() or "auto"
    if value not in ("auto", "float32", "bfloat16"):
        raise ValueError(f"MNISTLAB_PRECISION must be auto, float32 or bfloat16, got {value!r}.")
    return value


def precision_for(arch: str, convolutional: bool, environ=None) -> str:
    """The policy a training of this architecture uses on this machine."""
    choice = configured(environ)
    if choice == "float32" or not cpu_has_bfloat16():
        return FLOAT32
    if choice == "bfloat16":
        return MIXED_BFLOAT16
    return MIXED_BFLOAT16 if arch in BFLOAT16_PRESETS or (arch == "custom" and convolutional) else FLOAT32


def describe(environ=None) -> str:
    """What the Train page says about this server's number format."""
    choice = configured(environ)
    if choice == "float32" or not cpu_has_bfloat16():
        return "float32"
    return "bfloat16" if choice == "bfloat16" else "bfloat16 for convolutional networks, float32 for dense ones"


@contextlib.contextmanager
def precision_policy(name: str):
    """Build layers under Keras' `name` policy, then go back to float32."""
    import keras

    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(FLOAT32)
