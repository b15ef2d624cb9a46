"""bf16 mixed precision against fp32 for a quick-start training step, side by side in one run.

Two copies of the same LoRA model (same initialisation, same batches, same masks and spans) train in
alternation: one in fp32, one under `torch.autocast(device, torch.bfloat16)` as the Trainer's `bf16=True`
does. Prints seconds per step, the speed ratio and both loss curves, plus what `training_precision` picks
on this machine.

    python benchmarks/precision.py [--model smollm2-135m] [--batch-size 16] [--seq-len 48] [--steps 4]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import time

import torch

from magnet_st import load_model
from magnet_st.data.paths import dataset_file
from magnet_st.data.texts import load_texts
from magnet_st.lora import add_lora
from magnet_st.losses import MagnetLoss
from magnet_st.precision import cpu_has_native_bf16, describe_cpu, training_precision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=48)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per precision (after one warm-up)")
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    wiki = dataset_file(args.data, "wiki1m_for_simcse_head", "wiki1m_for_simcse.txt")
    texts = load_texts(wiki, max_texts=args.batch_size * (args.steps + 1), drop_cut_last_line=True)["text"]
    fp32 = load_model(args.model, max_seq_length=args.seq_len, device="cpu")
    add_lora(fp32)
    bf16 = copy.deepcopy(fp32)
    runs = {}
    for name, model in (("fp32", fp32), ("bf16", bf16)):
        model.train()
        trainable = [p for p in model.parameters() if p.requires_grad]
        runs[name] = (model, MagnetLoss(model), torch.optim.AdamW(trainable, lr=args.learning_rate))

    def step(name: str, index: int) -> float:
        model, loss, optimizer = runs[name]
        features = model.decoder.preprocess(texts[index * args.batch_size : (index + 1) * args.batch_size])
        loss.reseed(index)  # the same masks and spans for both precisions
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if name == "bf16" else contextlib.nullcontext()
        with autocast:
            total = torch.stack(list(loss([features]).values())).sum()
        total.backward()
        optimizer.step()
        optimizer.zero_grad()
        return float(total.detach())

    seconds, losses = {"fp32": [], "bf16": []}, {"fp32": [], "bf16": []}
    for index in range(args.steps + 1):
        for name in ("fp32", "bf16") if index % 2 else ("bf16", "fp32"):
            began = time.perf_counter()
            losses[name].append(step(name, index))
            if index:  # the first round is warm-up
                seconds[name].append(time.perf_counter() - began)

    fp32_s, bf16_s = statistics.median(seconds["fp32"]), statistics.median(seconds["bf16"])
    print(f"CPU: {describe_cpu()}")
    print(f"model={args.model} LoRA batch={args.batch_size} seq_len={args.seq_len} threads={args.threads}")
    print(f"fp32 step: {fp32_s:6.2f} s   bf16 autocast step: {bf16_s:6.2f} s   speed bf16/fp32: {fp32_s / bf16_s:.2f}x")
    for name in ("fp32", "bf16"):
        print(f"{name} loss by step: " + " ".join(f"{value:.3f}" for value in losses[name]))
    gap = max(abs(a - b) / abs(a) for a, b in zip(losses["fp32"], losses["bf16"]))
    print(f"largest relative loss gap: {gap:.3%}")
    print(f"native bf16: {cpu_has_native_bf16()}; training_precision('cpu') = {training_precision('cpu')!r}")


if __name__ == "__main__":
    main()
