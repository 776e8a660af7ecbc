"""The machine a benchmark ran on, in one line, for every figure it prints."""

import os
from pathlib import Path


def machine_name():
    try:
        import torch

        if torch.cuda.is_available():
            return f"GPU: {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
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
