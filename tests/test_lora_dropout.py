"""LoRA dropout fused into lora_A: the same maths as peft's dropout -> lora_A, far fewer bytes kept for backward."""

import pytest
import torch
from peft import LoraConfig, get_peft_model
from torch.nn import functional as F

from magnet_st.lora_dropout import DropoutLoraA, dropout_linear, fuse_lora_dropout
from magnet_st.precision import cpu_has_native_bf16


def saved_bytes(run) -> int:
    """Bytes of the distinct storages autograd keeps for backward while `run()` builds its graph."""
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        run()
    return sum(storages.values())


def test_gradients_match_the_unfused_product_for_a_given_mask():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 8, dtype=torch.double, requires_grad=True)
    weight = torch.randn(4, 8, dtype=torch.double, requires_grad=True)
    keep = torch.rand(3, 5, 8) >= 0.3
    torch.autograd.gradcheck(lambda x, weight: dropout_linear(x, weight, keep, 0.3), (x, weight))
    reference = F.linear(x * keep.double() / 0.7, weight)  # what peft computes with this mask
    torch.testing.assert_close(dropout_linear(x, weight, keep, 0.3), reference)


def test_drops_with_the_probability_asked_and_is_exact_in_eval():
    linear = torch.nn.Linear(64, 4, bias=False)
    fused = DropoutLoraA(linear, 0.25)
    assert fused.weight is linear.weight
    x = torch.randn(2, 64)
    fused.eval()
    torch.testing.assert_close(fused(x), linear(x))
    fused.train()
    # With an identity-like read of one input at a time, each output shows whether that input was kept.
    probe = DropoutLoraA(torch.nn.Linear(1, 1, bias=False), 0.25)
    with torch.no_grad():
        probe.weight.fill_(1.0)
    outputs = probe(torch.ones(200_000, 1))
    kept = outputs != 0
    assert abs(kept.float().mean().item() - 0.75) < 0.005
    torch.testing.assert_close(outputs[kept], torch.full_like(outputs[kept], 1 / 0.75))


def lora_model(dropout: float) -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential()
    model.add_module("q_proj", torch.nn.Linear(96, 96))
    model.add_module("k_proj", torch.nn.Linear(96, 96))
    model.add_module("v_proj", torch.nn.Linear(96, 96))
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout, target_modules=["q_proj", "k_proj", "v_proj"])
    return get_peft_model(model, config)


def three_projections(model, x):
    base = model.base_model.model
    return base.q_proj(x).sum() + base.k_proj(x).sum() + base.v_proj(x).sum()


def test_fused_peft_model_keeps_a_fraction_of_the_bytes_and_the_same_adapter():
    peft_model, fused_model = lora_model(0.1), lora_model(0.1)
    assert fuse_lora_dropout(fused_model) == 3
    assert fuse_lora_dropout(fused_model) == 0  # already fused
    assert fused_model.state_dict().keys() == peft_model.state_dict().keys()
    x = torch.randn(64, 32, 96, requires_grad=True)
    elements = x.numel()
    unfused = saved_bytes(lambda: three_projections(peft_model.train(), x))
    fused = saved_bytes(lambda: three_projections(fused_model.train(), x))
    # peft: a float noise tensor and a float dropped copy per projection; fused: x once and a bool mask each.
    assert unfused >= 3 * 2 * 4 * elements
    small = 256 * 1024  # the frozen and LoRA weights, LoRA's rank-4 activations
    assert fused <= 4 * elements + 3 * elements + small
    # In eval both are the plain LoRA product; the weights are the same Parameters peft saves and merges.
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_()
        fused_model.load_state_dict(peft_model.state_dict())
    peft_model.eval(), fused_model.eval()
    torch.testing.assert_close(three_projections(fused_model, x), three_projections(peft_model, x))
    merged = fused_model.merge_and_unload()
    torch.testing.assert_close(merged.q_proj(x), peft_model.base_model.model.q_proj(x), atol=1e-5, rtol=1e-5)


def test_training_step_gradients_follow_the_mask_peft_would_use():
    # The same mask through peft's path (by replacing its dropout with that mask) and through the fused one.
    fused_model = lora_model(0.5)
    fuse_lora_dropout(fused_model)
    x = torch.randn(4, 96, requires_grad=True)
    torch.manual_seed(7)
    fused_model.train()
    three_projections(fused_model, x).backward()
    torch.manual_seed(7)
    masks = [torch.rand(x.shape) >= 0.5 for _ in range(3)]  # the draws DropoutLoraA makes, in call order
    reference = lora_model(0.0)
    with torch.no_grad():
        for ours, theirs in zip(fused_model.parameters(), reference.parameters()):
            theirs.copy_(ours)
    x_ref = x.detach().clone().requires_grad_(True)
    base = reference.base_model.model
    total = 0
    for module, keep in zip((base.q_proj, base.k_proj, base.v_proj), masks):
        lora_a, lora_b = module.lora_A["default"], module.lora_B["default"]
        total = (
            total + (module.base_layer(x_ref) + lora_b(lora_a(x_ref * keep / 0.5)) * module.scaling["default"]).sum()
        )
    total.backward()
    torch.testing.assert_close(x.grad, x_ref.grad)
    for (name, ours), (_, theirs) in zip(fused_model.named_parameters(), reference.named_parameters()):
        if ours.requires_grad:
            torch.testing.assert_close(ours.grad, theirs.grad, msg=name)


def test_bf16_autocast_runs_the_product_in_bf16():
    if not cpu_has_native_bf16():
        pytest.skip("this CPU has no native bf16 (the product would run, only slowly)")
    fused = DropoutLoraA(torch.nn.Linear(32, 4, bias=False), 0.1)
    x = torch.randn(8, 32, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fused(x)
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert x.grad.dtype == torch.float32 and fused.weight.grad.dtype == torch.float32


def test_bad_arguments():
    with pytest.raises(ValueError, match="`p` must be a dropout probability in \\(0, 1\\)"):
        DropoutLoraA(torch.nn.Linear(4, 2, bias=False), 0.0)
    with pytest.raises(ValueError, match="`p` must be a dropout probability in \\[0, 1\\), got 1.0"):
        dropout_linear(torch.randn(2, 4), torch.randn(3, 4), torch.ones(2, 4, dtype=torch.bool), 1.0)
    with pytest.raises(ValueError, match="`keep` must be a boolean mask"):
        dropout_linear(torch.randn(2, 4), torch.randn(3, 4), torch.ones(2, 4), 0.1)
    with pytest.raises(ValueError, match="must have one dtype"):
        dropout_linear(
            torch.randn(2, 4), torch.randn(3, 4, dtype=torch.double), torch.ones(2, 4, dtype=torch.bool), 0.1
        )
