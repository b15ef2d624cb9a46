"""LoRA dropout that keeps a 1-byte mask per input element for backward instead of two full copies.

peft computes `lora_B(lora_A(dropout(x)))`: dropout keeps its scaled noise (a float per element) and
`lora_A` keeps the dropped input (another), on each of the seven projections of every layer and every pass.
`DropoutLoraA` fuses dropout into `lora_A`: it keeps `x` (which every LoRA layer without dropout keeps too,
shared by q/k/v and by gate/up) and the boolean keep-mask, and rebuilds the dropped input in backward. Same
distribution as peft's dropout (each element kept with probability 1 - p, scaled by 1 / (1 - p)), and the
same weight name, so adapters save, load and merge through peft unchanged.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class _DropoutLinear(torch.autograd.Function):
    """y = (x * keep) @ W^T * scale, saving x and the boolean mask, not the dropped copy."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(x, weight, keep)
        ctx.scale = scale
        # The scale goes on the rank-r output, not the wide input: one pass over x instead of two.
        return F.linear(torch.where(keep, x, 0.0), weight) * scale  # (..., r)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, weight, keep = ctx.saved_tensors
        grad_out = grad_out * ctx.scale  # (..., r)
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.where(keep, grad_out @ weight, 0.0)  # (..., in)
        if ctx.needs_input_grad[1]:
            dropped = torch.where(keep, x, 0.0)  # (..., in), rebuilt instead of kept
            grad_weight = grad_out.reshape(-1, grad_out.shape[-1]).T @ dropped.reshape(-1, dropped.shape[-1])  # (r, in)
        return grad_x, grad_weight, None, None


def dropout_linear(x: torch.Tensor, weight: torch.Tensor, keep: torch.Tensor, p: float) -> torch.Tensor:
    """`F.linear(x * keep / (1 - p), weight)` keeping only `x` and the boolean `keep` for backward."""
    if not 0 <= p < 1:
        raise ValueError(f"`p` must be a dropout probability in [0, 1), got {p!r}.")
    if keep.dtype != torch.bool or keep.shape != x.shape:
        raise ValueError(
            f"`keep` must be a boolean mask of x's shape {tuple(x.shape)}, got {keep.dtype} {tuple(keep.shape)}."
        )
    if torch.is_autocast_enabled(x.device.type):  # the product runs in the autocast dtype, as F.linear's would
        dtype = torch.get_autocast_dtype(x.device.type)
        with torch.autocast(x.device.type, enabled=False):
            return _DropoutLinear.apply(x.to(dtype), weight.to(dtype), keep, 1.0 / (1.0 - p))
    if x.dtype != weight.dtype:
        raise ValueError(f"`x` ({x.dtype}) and `weight` ({weight.dtype}) must have one dtype outside autocast.")
    return _DropoutLinear.apply(x, weight, keep, 1.0 / (1.0 - p))


class DropoutLoraA(nn.Linear):
    """peft's `lora_A` with its input dropout fused in (same `weight`, so state dicts are unchanged)."""

    def __init__(self, linear: nn.Linear, p: float) -> None:
        if not 0 < p < 1:
            raise ValueError(f"`p` must be a dropout probability in (0, 1), got {p!r}.")
        nn.Module.__init__(self)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = linear.weight  # the same Parameter: optimizers and peft see no change
        self.register_parameter("bias", None)
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return F.linear(x, self.weight)
        keep = torch.rand(x.shape, device=x.device) >= self.p  # (..., in) bool
        return dropout_linear(x, self.weight, keep, self.p)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}"


def fuse_lora_dropout(model: nn.Module) -> int:
    """Replace each peft LoRA layer's `dropout -> lora_A` by a `DropoutLoraA`, in place; returns how many."""
    fused = 0
    for module in model.modules():
        lora_a, lora_dropout = getattr(module, "lora_A", None), getattr(module, "lora_dropout", None)
        if not isinstance(lora_a, nn.ModuleDict) or not isinstance(lora_dropout, nn.ModuleDict):
            continue
        for name, dropout in list(lora_dropout.items()):
            linear = lora_a[name] if name in lora_a else None
            if not isinstance(dropout, nn.Dropout) or type(linear) is not nn.Linear or linear.bias is not None:
                continue
            lora_a[name] = DropoutLoraA(linear, dropout.p)
            lora_dropout[name] = nn.Identity()
            fused += 1
    return fused
