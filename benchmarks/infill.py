"""Time per generated token: `magnet_st.infill` against `magnet_st.generate`, side by side in one run.

Both see a context of the same number of tokens (ROCStories test stories): `generate` continues it as a
prompt, `infill` fills a blank in its middle. Both decode greedily with a KV cache and produce the same
number of tokens. A second comparison times an automatic length against the known length it chose.

    python benchmarks/infill.py [--model smollm2-135m] [--context-tokens 256] [--new-tokens 32] [--repeats 3]

Targets: infill <= 1.2x generate per generated token; automatic length <= 2x the known length.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from magnet_st import load_model
from magnet_st.evaluation.infilling import rocstories_examples
from magnet_st.generation import BLANK, generate, infill


def timed(function, repeats: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        function()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def build_context(tokenizer, context_tokens: int, data_dir=None) -> tuple[str, str]:
    """Left and right text around a blank, together `context_tokens` tokens of real stories."""
    stories = [text.replace(BLANK, reference.strip()) for text, reference in rocstories_examples(data_dir, 200)]
    ids: list[int] = []
    for story in stories:
        ids += tokenizer(" " + story, add_special_tokens=False)["input_ids"]
        if len(ids) >= context_tokens:
            break
    ids = ids[:context_tokens]
    half = context_tokens // 2
    return tokenizer.decode(ids[:half]), tokenizer.decode(ids[half:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--context-tokens", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--max-auto-length", type=int, default=32)
    parser.add_argument("--sentence-length", type=int, default=12, help="a typical known length (tokens)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = load_model(args.model)
    model.eval()
    tokenizer = model.decoder.tokenizer
    left, right = build_context(tokenizer, args.context_tokens, args.data)
    text = f"{left}{BLANK}{right}"
    # The prompt for `generate` has exactly as many tokens as the infill context (EOS included there).
    prompt_ids = tokenizer(left + right, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    prompt = tokenizer.decode(prompt_ids[: args.context_tokens])
    n = args.new_tokens

    generate_time = timed(lambda: generate(model, prompt, max_new_tokens=n, min_new_tokens=n), args.repeats)
    infill_time = timed(lambda: infill(model, text, length=n), args.repeats)
    auto = infill(model, text, max_auto_length=args.max_auto_length).fills[0]
    auto_time = timed(lambda: infill(model, text, max_auto_length=args.max_auto_length), args.repeats)
    known_time = timed(lambda: infill(model, text, length=auto.length), args.repeats)
    sentence_time = timed(lambda: infill(model, text, length=args.sentence_length), args.repeats)

    print(f"model {args.model}, context {args.context_tokens} tokens, {torch.get_num_threads()} thread(s)")
    print(f"generate: {n} tokens in {generate_time:.3f} s = {1000 * generate_time / n:.1f} ms/token")
    print(f"infill:   {n} tokens in {infill_time:.3f} s = {1000 * infill_time / n:.1f} ms/token")
    print(f"ratio infill / generate per generated token: {infill_time / generate_time:.2f}x (target <= 1.2x)")
    print(
        f"automatic length (up to {args.max_auto_length}) chose {auto.length} tokens: {auto_time:.3f} s; "
        f"known length {auto.length}: {known_time:.3f} s"
    )
    print(f"ratio automatic / known length (same output length): {auto_time / known_time:.2f}x (target <= 2x)")
    print(
        f"ratio automatic / known length {args.sentence_length} (decodes up to {args.max_auto_length} instead): "
        f"{auto_time / sentence_time:.2f}x"
    )


if __name__ == "__main__":
    main()
