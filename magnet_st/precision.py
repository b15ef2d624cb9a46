"""Training precision chosen by the hardware: bf16 mixed precision only where it pays.

On a CPU without native bf16 (AVX2, plain AVX-512) bf16 matrix multiplies are emulated and run many times slower
than fp32, so no CPU path may use bf16 blindly. Native bf16 alone does not settle it either: whether autocast
pays depends on the chip, so "auto" times a small bf16-autocast training pass against fp32 on the CPU itself.
torch is imported inside the functions so that the command line can list the choices without it.
"""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "bf16", "fp32")
# `torch.backends.cpu.get_cpu_capability()` values that mean native bf16 (newer torch builds report them).
NATIVE_BF16_CAPABILITIES = frozenset({"AVX512_BF16", "AMX", "AMX_BF16"})
# /proc/cpuinfo flags of the bf16 instructions (x86: AVX512-BF16 dot products, AMX bf16 tiles).
NATIVE_BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
CPUINFO = Path("/proc/cpuinfo")
# "auto" trains a CPU in bf16 only when a bf16-autocast pass is at least this much faster than fp32: the
# timed pass is all matrix multiplies, and a training step's other work (losses, optimizer) does not speed up.
CPU_BF16_MIN_SPEEDUP = 1.3


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


def cpu_bf16_speedup(tokens: int = 512, hidden: int = 576, inner: int = 1536, repeats: int = 3) -> float:
    """fp32 time over bf16-autocast time of a forward and backward pass through a small MLP on this CPU.

    Above 1 bf16 is faster. The shapes are a small decoder's (SmolLM2-135M: hidden 576, MLP 1536); the pass
    runs under `torch.random.fork_rng`, so timing it leaves the caller's random state untouched.
    """
    import torch

    def seconds(bf16: bool) -> float:
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = mlp(x)  # (tokens, hidden)
        out.float().square().mean().backward()
        return time.perf_counter() - started

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        mlp = torch.nn.Sequential(torch.nn.Linear(hidden, inner), torch.nn.GELU(), torch.nn.Linear(inner, hidden))
        x = torch.randn(tokens, hidden, requires_grad=True)
        seconds(False), seconds(True)  # warm-up: the first pass of each sets its kernels up
        # Alternated, best of `repeats` each: a load that comes and goes hits both precisions alike.
        fp32, bf16 = (min(pair) for pair in zip(*((seconds(False), seconds(True)) for _ in range(repeats))))
    return fp32 / bf16


@functools.lru_cache(maxsize=1)
def cpu_bf16_pays() -> bool:
    """Whether bf16 autocast trains faster than fp32 on this CPU: native bf16 and a measured speed-up."""
    if not cpu_has_native_bf16():
        return False
    speedup = cpu_bf16_speedup()
    logger.info(
        "bf16 autocast ran %.2fx the speed of fp32 on this CPU (%s): training in %s.",
        speedup,
        cpu_model_name(),
        "bf16" if speedup >= CPU_BF16_MIN_SPEEDUP else "fp32",
    )
    return speedup >= CPU_BF16_MIN_SPEEDUP


def training_precision(device: Any, precision: str = "auto") -> str:
    """ "bf16" or "fp32" for training on `device`: `precision` itself unless it is "auto".

    "auto" picks bf16 mixed precision on a CUDA GPU that supports it. On a CPU it picks bf16 only where bf16 is
    native and a timed autocast pass is at least `CPU_BF16_MIN_SPEEDUP` times faster than fp32
    (`cpu_bf16_pays`): on one native-bf16 CPU autocast trained faster, on another slower
    (benchmarks/precision.py), and emulated bf16 is far slower still. An explicit "bf16" on a CPU without
    native bf16 is honoured with a warning.
    """
    import torch

    device = torch.device(device)
    if check_precision(precision) != "auto":
        if precision == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
            logger.warning("This CPU has no native bf16: bf16 training is emulated and much slower than fp32.")
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu" and cpu_bf16_pays():
        return "bf16"
    return "fp32"
