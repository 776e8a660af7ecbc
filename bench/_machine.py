"""The machine a benchmark ran on, in one line, for every figure it prints.

Also where the real CIFAR-10 data lies (`../shared/data` beside the
checkout). This module imports no framework, so a script's `--help`
answers at once.
"""

import os
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def machine_name():
    try:
        import torch

        if torch.cuda.is_available():
            return f"GPU: {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return cpu_name()


def cpu_name():
    """`CPU: <model>, <AVX512-BF16 | AVX512 | AVX2 | no AVX2>, <n> cores`."""
    model, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    kind = ("AVX512-BF16" if "avx512_bf16" in flags else
            "AVX512" if "avx512f" in flags else
            "AVX2" if "avx2" in flags else "no AVX2")
    return f"CPU: {model}, {kind}, {len(os.sched_getaffinity(0))} cores"
