"""Encode throughput: magnet_st against plain sentence-transformers' `Transformer`, side by side in one run.

Same base model, same sentences (STS-B test), same batch size, same pooling and prompt. The plain
pipeline is the built-in `Transformer` + `Pooling` over the same weights: over the base checkpoint it
runs causal attention, over a saved MAGNET folder bidirectional, so each is paired with the matching
magnet_st mode. Rounds alternate between the two to share any machine noise.

    python benchmarks/encode.py [--model smollm2-135m] [--sentences 256] [--batch-size 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from sentence_transformers import SentenceTransformer

from magnet_st import load_model
from magnet_st.data.paths import dataset_file
from magnet_st.data.sts import read_stsb


def throughput(encode, sentences: list[str], rounds: int) -> float:
    encode(sentences[:32])  # warm-up
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        encode(sentences)
        times.append(time.perf_counter() - began)
    return len(sentences) / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--sentences", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = read_stsb(dataset_file(args.data, "stsbenchmark", "sts-test.csv"))
    sentences = (rows["sentence1"] + rows["sentence2"])[: args.sentences]
    magnet = load_model(args.model)
    magnet.eval()
    with tempfile.TemporaryDirectory() as folder:
        magnet.save(folder)  # bidirectional checkpoint, built-in modules only
        plain_bidirectional = SentenceTransformer(folder)
        # The same weights with the checkpoint's default (causal) attention, as plain users of the base get.
        plain_causal = SentenceTransformer(folder)
        plain_causal[0].model.config.is_causal = True
        options = dict(batch_size=args.batch_size, convert_to_tensor=True, show_progress_bar=False)

        results = {}
        for name, plain, mode in (
            ("bidirectional", plain_bidirectional, "bidirectional"),
            ("causal", plain_causal, "causal"),
        ):
            ours, theirs = [], []

            def encode_ours(texts, mode=mode):
                return magnet.encode(texts, attention_mode=mode, **options)

            def encode_plain(texts, plain=plain):
                return plain.encode(texts, **options)

            for _ in range(args.rounds):  # alternate, one round each
                ours.append(throughput(encode_ours, sentences, 1))
                theirs.append(throughput(encode_plain, sentences, 1))
            results[name] = (statistics.median(ours), statistics.median(theirs))
            check = (
                (
                    magnet.encode(sentences[:8], attention_mode=mode, convert_to_tensor=True)
                    - plain.encode(sentences[:8], convert_to_tensor=True)
                )
                .abs()
                .max()
            )
            results[name] += (float(check),)

    print(f"model={args.model} sentences={len(sentences)} batch_size={args.batch_size} threads={args.threads}")
    print(f"{'attention':<14} {'magnet_st s/s':>14} {'plain ST s/s':>14} {'ratio':>7} {'max |diff|':>11}")
    for name, (ours, theirs, diff) in results.items():
        print(f"{name:<14} {ours:>14.1f} {theirs:>14.1f} {ours / theirs:>7.3f} {diff:>11.2e}")
    print("ratio = magnet_st throughput / plain sentence-transformers throughput (1.0 = same speed)")


if __name__ == "__main__":
    main()
