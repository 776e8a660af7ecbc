"""TensorFlow's oneDNN CPU kernels, also where TensorFlow leaves them off.

On Linux x86, TensorFlow turns its oneDNN kernels on by default only for
CPUs with AVX512-VNNI, AVX512-BF16, AVX-VNNI or AMX. On an AVX2-only CPU
(an AMD EPYC Zen 3, for one) it runs its Eigen kernels instead, which
trained the `fast` preset 2.3x slower in float32: 107 against 242 img/s on
2 cores of a Zen 5 EPYC with oneDNN held to AVX2 (`ONEDNN_MAX_CPU_ISA=AVX2`,
oneDNN's verbose log showing `brg_conv_fwd:avx2`). The switch is the
environment variable `TF_ENABLE_ONEDNN_OPTS`, read once when TensorFlow is
imported; so this module imports nothing heavy and must run before
TensorFlow does. The `regkit` command and the benchmarks call it; in your
own scripts, set `TF_ENABLE_ONEDNN_OPTS=1` before importing Keras.
"""

import os
import platform
import sys

ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"


def prefer_onednn() -> bool:
    """Asks TensorFlow for its oneDNN kernels, if it is not imported yet.

    Leaves a `TF_ENABLE_ONEDNN_OPTS` that is already set as it is (so `0`
    still turns the kernels off), and does nothing on CPUs other than x86
    or once TensorFlow is imported (it has read the variable by then).

    Returns:
        Whether it set the variable.
    """
    if ONEDNN_ENV in os.environ or "tensorflow" in sys.modules:
        return False
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    os.environ[ONEDNN_ENV] = "1"
    return True
