"""Ordinary left-to-right generation with causal attention, through transformers' `generate`.

A MAGNET model may be saved with `config.is_causal=False` (its encoding default); `is_causal=True` is
passed to every `generate` call, which overrides it. Batches are left-padded so that every prompt ends
right before its first new token.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from magnet_st.decoding import bos_prefix, eval_mode, pad_sequences
from magnet_st.seeding import check_seed, example_seed, seeded
from magnet_st.validation import check_positive_int, check_sampling, check_texts


def _prompt_ids(decoder, prompt: str, chat_template: bool, system_prompt: str | None) -> list[int]:
    tokenizer = decoder.tokenizer
    if chat_template:
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("`chat_template=True` but the model's tokenizer has no chat template.")
        messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
            {"role": "user", "content": prompt}
        ]
        rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return tokenizer(rendered, add_special_tokens=False)["input_ids"]
    # The tokenizer's post-processor appends EOS for encoding; a prompt to continue must not end with it.
    return bos_prefix(tokenizer) + tokenizer(prompt, add_special_tokens=False)["input_ids"]


def _left_padded(decoder, prompts_ids: list[list[int]], device) -> dict[str, torch.Tensor]:
    input_ids, attention_mask = pad_sequences(prompts_ids, decoder.tokenizer.pad_token_id, side="left")  # (B, T)
    return {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device)}


def generate(
    model,
    prompts: str | Sequence[str],
    *,
    max_new_tokens: int = 64,
    chat_template: bool = False,
    system_prompt: str | None = None,
    stream: bool = False,
    seed: int | None = None,
    batch_size: int = 8,
    **generate_kwargs: Any,
) -> str | list[str] | Iterator[str]:
    """Continue each prompt left to right with causal attention (the original LM behaviour).

    Args:
        model: A `MagnetSentenceTransformer` (from `magnet_st.load_model`) or a `MagnetDecoder`.
        prompts: A prompt or a list of prompts.
        max_new_tokens: Most tokens generated per prompt.
        chat_template: Render each prompt as a user message through the tokenizer's chat template.
        system_prompt: System message when `chat_template` is set.
        stream: Return an iterator over text pieces as they are generated (one prompt only). Leaving the loop
            early (or Ctrl-C) stops the generation cleanly.
        seed: Seed of the sampler: each prompt's sample depends only on the seed and its place in `prompts`
            (not on `batch_size`); the global random state is left as it was.
        batch_size: Prompts generated together (left-padded).
        **generate_kwargs: Passed to transformers' `generate` (`do_sample`, `temperature`, `top_k`, `top_p`,
            `num_beams`, `repetition_penalty`, ...).

    Returns:
        The generated continuation (new text only) for one prompt, a list of them, or a text iterator.
    """
    decoder = getattr(model, "decoder", model)
    if not hasattr(decoder, "causal_lm"):
        raise TypeError(f"`model` must be a MAGNET model from `magnet_st.load_model`, got {type(model).__name__}.")
    single = isinstance(prompts, str)
    prompts = check_texts(prompts, "prompts")
    check_positive_int(max_new_tokens, "max_new_tokens")
    check_positive_int(batch_size, "batch_size")
    check_seed(seed)
    check_sampling(*(generate_kwargs.get(name) for name in ("temperature", "top_k", "top_p")))
    for reserved in ("input_ids", "attention_mask", "is_causal", "streamer"):
        if reserved in generate_kwargs:
            raise ValueError(f"`{reserved}` is set by `magnet_st.generate`; pass prompts as text instead.")
    if stream and not single:
        raise ValueError("`stream=True` takes one prompt (a string), not a list.")
    tokenizer = decoder.tokenizer
    causal_lm = decoder.causal_lm
    device = next(causal_lm.parameters()).device
    prompt_ids = [_prompt_ids(decoder, prompt, chat_template, system_prompt) for prompt in prompts]
    window = getattr(decoder.config.get_text_config(), "max_position_embeddings", None)
    for index, ids in enumerate(prompt_ids):
        if window is not None and len(ids) + max_new_tokens > window:
            raise ValueError(
                f"`prompts[{index}]` has {len(ids)} tokens; with max_new_tokens={max_new_tokens} it exceeds the "
                f"model's window of {window} tokens."
            )
    options = {
        "max_new_tokens": max_new_tokens,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "is_causal": True,  # overrides a saved bidirectional default
        **generate_kwargs,
    }
    if stream:
        return _stream(causal_lm, tokenizer, _left_padded(decoder, prompt_ids, device), options, seed)
    if seed is not None and options.get("do_sample", causal_lm.generation_config.do_sample):
        # transformers samples a batch from one random stream: each prompt gets its own seeded run instead,
        # so its sample does not depend on the batch size or on its neighbours.
        batches = [(example_seed(seed, index), [ids]) for index, ids in enumerate(prompt_ids)]
    else:
        batches = [(seed, prompt_ids[start : start + batch_size]) for start in range(0, len(prompt_ids), batch_size)]
    outputs: list[str] = []
    with eval_mode(causal_lm):
        for batch_seed, batch in batches:
            inputs = _left_padded(decoder, batch, device)
            with seeded(batch_seed, device=device):
                generated = causal_lm.generate(**inputs, **options)
            new_tokens = generated[:, inputs["input_ids"].shape[1] :]  # (B, new)
            outputs.extend(tokenizer.decode(row, skip_special_tokens=True) for row in new_tokens)
    return outputs[0] if single and len(outputs) == 1 else outputs


class _StopFlag(StoppingCriteria):
    """Stops `generate` at the next step once set (the consumer of a stream went away)."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


def _stream(
    causal_lm, tokenizer, inputs: dict[str, torch.Tensor], options: dict[str, Any], seed: int | None
) -> Iterator[str]:
    """Text pieces as a worker thread generates them.

    Leaving the loop early, closing or garbage-collecting the iterator, or an exception in the consumer
    (KeyboardInterrupt included) sets the stop flag and joins the worker, so no thread outlives the stream.
    """
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    stop = _StopFlag()
    criteria = StoppingCriteriaList([*options.pop("stopping_criteria", []), stop])
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with torch.no_grad():
                causal_lm.generate(**inputs, **options, streamer=streamer, stopping_criteria=criteria)
        except BaseException as error:  # surfaced in the caller's thread
            errors.append(error)
            streamer.end()

    with eval_mode(causal_lm), seeded(example_seed(seed, 0) if seed is not None else None, device=causal_lm.device):
        thread = threading.Thread(target=work, name="magnet-st-generate", daemon=True)
        thread.start()
        try:
            yield from streamer
        finally:
            stop.event.set()
            thread.join()
    if errors:
        raise errors[0]
