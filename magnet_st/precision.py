"""Training precision chosen by the hardware: bf16 mixed precision only where it pays.

On a CPU without native bf16 (AVX2, plain AVX-512) bf16 matrix multiplies are emulated and run many times slower
than fp32, so no CPU path may use bf16 blindly. torch is imported inside the functions so that the command line
can list the choices without it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "bf16", "fp32")
# `torch.backends.cpu.get_cpu_capability()` values that mean native bf16 (newer torch builds report them).
NATIVE_BF16_CAPABILITIES = frozenset({"AVX512_BF16", "AMX", "AMX_BF16"})
# /proc/cpuinfo flags of the bf16 instructions (x86: AVX512-BF16 dot products, AMX bf16 tiles).
NATIVE_BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
CPUINFO = Path("/proc/cpuinfo")


def check_precision(precision: Any, argument: str = "precision") -> str:
    """Return `precision` if it is one of `PRECISIONS`, else raise an error naming `argument`."""
    if precision not in PRECISIONS:
        raise ValueError(f"`{argument}` must be one of {', '.join(PRECISIONS)}; got {precision!r}.")
    return precision


def cpu_flags(cpuinfo: Path | None = None) -> frozenset[str]:
    """The CPU feature flags the kernel reports (empty where /proc/cpuinfo does not exist)."""
    try:
        text = (cpuinfo or CPUINFO).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86, ARM
            return frozenset(value.split())
    return frozenset()


def cpu_model_name(cpuinfo: Path | None = None) -> str:
    """The CPU's model name as the kernel reports it, else `platform.processor()`."""
    try:
        for line in (cpuinfo or CPUINFO).read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def describe_cpu() -> str:
    """One line for benchmark output: model name, torch's capability level, AVX-512 and native bf16."""
    import torch

    flags = cpu_flags()
    avx512 = "avx512f" in flags or torch.backends.cpu.get_cpu_capability().upper().startswith("AVX512")
    return (
        f"{cpu_model_name()}; torch capability {torch.backends.cpu.get_cpu_capability()}; "
        f"AVX-512 {'yes' if avx512 else 'no'}; native bf16 {'yes' if cpu_has_native_bf16() else 'no'}"
    )


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware, checked at run time."""
    import torch

    if torch.backends.cpu.get_cpu_capability().upper() in NATIVE_BF16_CAPABILITIES:
        return True
    return bool(cpu_flags() & NATIVE_BF16_CPU_FLAGS)


def training_precision(device: Any, precision: str = "auto") -> str:
    """ "bf16" or "fp32" for training on `device`: `precision` itself unless it is "auto".

    "auto" picks bf16 mixed precision on a CUDA GPU that supports it and fp32 on CPUs: bf16 autocast of a LoRA
    step measured slower than fp32 even on a CPU with native bf16 (benchmarks/precision.py), and emulated bf16
    is far slower still. An explicit "bf16" on a CPU without native bf16 is honoured with a warning.
    """
    import torch

    device = torch.device(device)
    if check_precision(precision) != "auto":
        if precision == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
            logger.warning("This CPU has no native bf16: bf16 training is emulated and much slower than fp32.")
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "fp32"
