"""Training tokens per second: a MAGNET step against a plain causal-LM LoRA step, side by side in one run.

Same model (LoRA r=16 on all projections), same batch of Wikipedia sentences, same sequence length, same
optimizer. The causal step is the ordinary next-token loss over the batch. The MAGNET step runs its three
views (the masked-and-spanned view under the hybrid mask, and the prompted text and its positive for the
contrastive loss); every token of every view is counted. Rounds alternate between the two.

    python benchmarks/train_step.py [--model smollm2-135m] [--batch-size 16] [--seq-len 48] [--steps 3]

Target: the MAGNET step costs at most 1.25x the causal step per token processed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from magnet_st import load_model
from magnet_st.data.paths import dataset_file
from magnet_st.data.texts import load_texts
from magnet_st.lora import add_lora
from magnet_st.losses import MagnetLoss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=48)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per kind (after one warm-up)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    texts = load_texts(
        dataset_file(args.data, "wiki1m_for_simcse_head", "wiki1m_for_simcse.txt"), drop_cut_last_line=True
    )
    texts = [text for text in texts["text"] if len(text.split()) >= 12]
    model = load_model(args.model, max_seq_length=args.seq_len)
    add_lora(model)
    model.train()
    loss = MagnetLoss(model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    lm = model.decoder.causal_lm

    def batch(step: int) -> list[str]:
        start = (step * args.batch_size) % (len(texts) - args.batch_size)
        return texts[start : start + args.batch_size]

    def causal_step(step: int) -> int:
        features = model.decoder.preprocess(batch(step))
        labels = features["input_ids"].masked_fill(features["attention_mask"] == 0, -100)
        output = lm(
            input_ids=features["input_ids"], attention_mask=features["attention_mask"], labels=labels, is_causal=True
        )
        output.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return int(features["attention_mask"].sum())

    def magnet_step(step: int) -> int:
        features = model.decoder.preprocess(batch(step))
        loss.reseed(step)
        parts = loss([features])
        torch.stack(list(parts.values())).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
        prompted = model.decoder.preprocess(batch(step), prompt=loss.prompt)
        # hybrid view + anchors + positives
        return int(features["attention_mask"].sum()) + 2 * int(prompted["attention_mask"].sum())

    rates = {"causal": [], "magnet": []}
    for step in range(args.steps + 1):
        for name, run in (("causal", causal_step), ("magnet", magnet_step)):
            began = time.perf_counter()
            tokens = run(step)
            elapsed = time.perf_counter() - began
            if step:  # the first round is warm-up
                rates[name].append(tokens / elapsed)
    causal, magnet = statistics.median(rates["causal"]), statistics.median(rates["magnet"])
    print(
        f"model={args.model} batch={args.batch_size} seq_len={args.seq_len} threads={args.threads} steps={args.steps}"
    )
    print(f"causal-LM LoRA step: {causal:8.1f} tokens/s")
    print(f"MAGNET step:         {magnet:8.1f} tokens/s (all three views counted)")
    print(f"cost per token, MAGNET / causal: {causal / magnet:.3f}  (target <= 1.25)")


if __name__ == "__main__":
    main()
