"""Time per generated token: `magnet_st.infill` against `magnet_st.generate`, side by side in one run.

Both see a context of the same number of tokens (ROCStories test stories): `generate` continues it as a
prompt, `infill` fills a blank in its middle. Both decode greedily with a KV cache and produce the same
number of tokens. Then an automatic length is timed against the known length it chose, for a blank inside
a sentence (candidate lengths decoded and ranked) and for a blank between sentences (mean sentence length,
no extra decoding).

    python benchmarks/infill.py [--model smollm2-135m] [--context-tokens 256] [--new-tokens 32] [--repeats 3]
    python benchmarks/infill.py --code OLD_CHECKOUT --code .   # two versions alternately, side by side

Targets: infill <= 1.2x generate per generated token; automatic length <= 2x the known length.

`--length-blanks N` also measures what the automatic length is for: its mean error in tokens on N blanks of
1-4 words inside held-out Wikipedia sentences, against always guessing 1, 2 or 3 tokens (run it with an
adapted model, e.g. `--model magnet-smollm2-135m`).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time


def timed(function, repeats: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        function()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def cpu_name() -> str:
    """The CPU's model name and torch's capability level (AVX2, AVX512, ...), printed beside every timing."""
    import torch

    name = platform.processor()
    try:
        with open("/proc/cpuinfo") as info:
            name = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), name)
    except OSError:
        pass
    return f"{name or 'unknown CPU'} ({torch.backends.cpu.get_cpu_capability()})"


def compare(codes: list[str], rounds: int, forwarded: list[str]) -> None:
    """Run this benchmark on each checkout in turn, `rounds` times, alternating, and print every run's lines."""
    for round_index in range(rounds):
        for code in codes:
            print(f"--- round {round_index + 1}, code {code}", flush=True)
            subprocess.run([sys.executable, __file__, "--code", code, *forwarded], check=True)


def build_context(tokenizer, context_tokens: int, data_dir=None) -> tuple[str, str, str, str]:
    """Left and right text around a blank, together about `context_tokens` tokens of real stories: once cut in
    the middle of a sentence, once at the sentence boundary nearest the middle."""
    from magnet_st.data.rocstories import rocstories_examples
    from magnet_st.generation import BLANK
    from magnet_st.generation.lengths import is_sentence_blank, split_sentences

    stories = [text.replace(BLANK, reference.strip()) for text, reference in rocstories_examples(data_dir, 200)]
    sentences: list[str] = []
    total = 0
    for story in stories:
        for sentence in split_sentences(story):
            sentences.append(sentence)
            total += len(tokenizer(" " + sentence, add_special_tokens=False)["input_ids"])
        if total >= context_tokens:
            break
    ids = tokenizer(" ".join(sentences), add_special_tokens=False)["input_ids"][:context_tokens]
    half = context_tokens // 2
    while is_sentence_blank(tokenizer.decode(ids[:half]), tokenizer.decode(ids[half:])):
        half += 1  # the first blank must sit inside a sentence
    cut = min(
        range(1, len(sentences)),
        key=lambda i: abs(len(tokenizer(" ".join(sentences[:i]), add_special_tokens=False)["input_ids"]) - half),
    )
    return (
        tokenizer.decode(ids[:half]),
        tokenizer.decode(ids[half:]),
        " ".join(sentences[:cut]) + " ",
        " " + " ".join(sentences[cut:]),
    )


def phrase_blanks(tokenizer, count: int, data_dir=None, seed: int = 0) -> list[tuple[str, str]]:
    """(text with one blank of 1-4 words inside a held-out Wikipedia sentence, the words with their leading
    space), for words of at most 8 tokens."""
    import random

    from magnet_st.data.wikipedia import held_out_lines
    from magnet_st.generation import BLANK

    rng = random.Random(seed)
    blanks = []
    for line in held_out_lines(data_dir):
        words = line.split(" ")
        if len(words) < 12:
            continue
        size = rng.randint(1, 4)
        start = rng.randint(2, len(words) - size - 2)  # at least two words on each side: inside the sentence
        reference = " " + " ".join(words[start : start + size])
        if len(tokenizer(reference, add_special_tokens=False)["input_ids"]) > 8:
            continue
        blanks.append((" ".join([*words[:start], BLANK, *words[start + size :]]), reference))
        if len(blanks) == count:
            break
    return blanks


def length_error(model, blanks: list[tuple[str, str]]) -> str:
    """The automatic length's mean absolute error (the suite's check) against constant guesses, on the same blanks."""
    from magnet_st.evaluation.infilling import auto_length_check

    check = auto_length_check(model, blanks)
    tokenizer = model.decoder.tokenizer
    true = [len(tokenizer(reference, add_special_tokens=False)["input_ids"]) for _, reference in blanks]
    constants = ", ".join(f"always {c}: {statistics.mean(abs(c - t) for t in true):.2f}" for c in (1, 2, 3))
    return (
        f"automatic length inside a sentence, {check['examples']} Wikipedia blanks of 1-4 words: mean error "
        f"{check['mean_abs_error']:.2f} tokens (mean chosen {check['mean_chosen_length']:.2f}, true "
        f"{check['mean_true_length']:.2f}, Pearson {check['pearson_chosen_vs_true']:.2f}); {constants}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--context-tokens", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", default=None)
    parser.add_argument("--length-blanks", type=int, default=0, help="also measure the length error on N blanks")
    parser.add_argument("--code", action="append", default=[], help="checkout to import magnet_st from (repeatable)")
    parser.add_argument("--rounds", type=int, default=2, help="alternations when several --code are given")
    args = parser.parse_args()
    if args.length_blanks < 0:
        parser.error(f"--length-blanks must be 0 (skip) or a positive number of blanks, got {args.length_blanks}")
    if len(args.code) > 1:
        forwarded = [arg for arg in sys.argv[1:] if not arg.startswith("--code") and arg not in args.code]
        compare(args.code, args.rounds, forwarded)
        return
    if args.code:
        sys.path.insert(0, os.path.abspath(args.code[0]))
    import torch

    from magnet_st import load_model
    from magnet_st.generation import BLANK, generate, infill

    torch.set_num_threads(args.threads)

    model = load_model(args.model)
    model.eval()
    tokenizer = model.decoder.tokenizer
    left, right, sentences_left, sentences_right = build_context(tokenizer, args.context_tokens, args.data)
    text = f"{left}{BLANK}{right}"
    sentence_text = f"{sentences_left}{BLANK}{sentences_right}"
    # The prompt for `generate` has exactly as many tokens as the infill context (EOS included there).
    prompt_ids = tokenizer(left + right, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    prompt = tokenizer.decode(prompt_ids[: args.context_tokens])
    n = args.new_tokens

    generate_time = timed(lambda: generate(model, prompt, max_new_tokens=n, min_new_tokens=n), args.repeats)
    infill_time = timed(lambda: infill(model, text, length=n), args.repeats)
    auto_times = {}
    for kind, blank_text in (("inside a sentence", text), ("between sentences", sentence_text)):
        auto = infill(model, blank_text).fills[0]
        auto_time = timed(lambda blank_text=blank_text: infill(model, blank_text), args.repeats)
        known_time = timed(
            lambda blank_text=blank_text, n=auto.length: infill(model, blank_text, length=n), args.repeats
        )
        auto_times[kind] = (auto.length, auto_time, known_time)

    print(
        f"model {args.model}, context {args.context_tokens} tokens, {torch.get_num_threads()} thread(s), {cpu_name()}"
    )
    print(f"generate: {n} tokens in {generate_time:.3f} s = {1000 * generate_time / n:.1f} ms/token")
    print(f"infill:   {n} tokens in {infill_time:.3f} s = {1000 * infill_time / n:.1f} ms/token")
    print(f"ratio infill / generate per generated token: {infill_time / generate_time:.2f}x (target <= 1.2x)")
    for kind, (length, auto_time, known_time) in auto_times.items():
        print(
            f"blank {kind}: automatic length chose {length} tokens in {auto_time:.3f} s; "
            f"known length {length}: {known_time:.3f} s; ratio {auto_time / known_time:.2f}x (target <= 2x)"
        )
    if args.length_blanks:
        print(length_error(model, phrase_blanks(tokenizer, args.length_blanks, args.data)))


if __name__ == "__main__":
    main()
