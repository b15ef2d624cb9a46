"""Run a MAGNET decoder over words: word states for probes, and `predict` with a token head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from seqeval.metrics.sequence_labeling import get_entities
from tqdm.auto import tqdm

from magnet_st.tagging.alignment import WordTokenizer, check_alignment, join_words, split_words

Sentence = tuple[str, list[tuple[int, int]]]  # text and the character span of each word


def find_head(model):
    """The model's TokenClassificationHead, or a clear error when it has none."""
    from magnet_st.modules.token_head import TokenClassificationHead

    for module in model:
        if isinstance(module, TokenClassificationHead):
            return module
    raise ValueError(
        "This model has no token classification head; train one with magnet_st.tagging.train_probe or "
        "magnet_st.tagging.finetune_lora first."
    )


def as_sentences(inputs: Any, argument: str = "inputs") -> list[Sentence]:
    """Raw texts (split into words) or pre-split word lists -> (text, word spans)."""
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, Sequence) or len(inputs) == 0:
        raise ValueError(f"`{argument}` must be a text, a list of texts or a list of word lists, and not empty.")
    sentences = []
    for index, item in enumerate(inputs):
        if isinstance(item, str):
            spans = split_words(item)
            if not spans:
                raise ValueError(f"`{argument}[{index}]` is empty (no words): every sentence needs some content.")
            sentences.append((item, spans))
        else:
            sentences.append(join_words(item, index))
    return sentences


def _run_segments(model, word_tokenizer, sentences, segments, batch_size, attention_mode, show_progress_bar, consume):
    """Run the decoder over segments (longest first, to pad little) and hand each batch to `consume`."""
    decoder = model.decoder
    order = sorted(range(len(segments)), key=lambda k: -(segments[k].last - segments[k].first))
    device = next(decoder.parameters()).device
    for start in tqdm(range(0, len(order), batch_size), desc="Word states", disable=not show_progress_bar):
        batch = [segments[k] for k in order[start : start + batch_size]]
        features = word_tokenizer.features(sentences, batch)
        features = {key: value.to(device) for key, value in features.items()}
        features = decoder.forward(features, attention_mode=attention_mode)
        consume(batch, features)


@torch.inference_mode()
def encode_words(
    model,
    inputs: Any,
    *,
    alignments: Sequence[str] = ("previous",),
    attention_mode: str = "bidirectional",
    prefix_token: str = "bos",
    batch_size: int = 16,
    show_progress_bar: bool = False,
) -> dict[str, list[torch.Tensor]]:
    """Word representations (one W x H float tensor per sentence) for each requested alignment.

    The decoder runs once; "previous" and "own" read the same pass. Used to cache a frozen encoder's
    features for linear probes.
    """
    from magnet_st.tagging.alignment import word_states

    for alignment in alignments:
        check_alignment(alignment)
    sentences = as_sentences(inputs)
    word_tokenizer = WordTokenizer(model.decoder.tokenizer, model.decoder.max_seq_length, prefix_token)
    segments = word_tokenizer.segments(sentences)
    hidden = model.decoder.get_embedding_dimension()
    outputs = {alignment: [torch.zeros(len(spans), hidden) for _, spans in sentences] for alignment in alignments}

    def consume(batch, features):
        for alignment in alignments:
            states = word_states(features["token_embeddings"], features["word_token_mask"], alignment).float().cpu()
            for row, segment in enumerate(batch):
                local = slice(segment.own_first - segment.first, segment.own_last - segment.first)
                outputs[alignment][segment.sentence][segment.own_first : segment.own_last] = states[row, local]

    was_training = model.training
    model.eval()
    try:
        _run_segments(
            model, word_tokenizer, sentences, segments, batch_size, attention_mode, show_progress_bar, consume
        )
    finally:
        model.train(was_training)
    return outputs


@torch.inference_mode()
def predict_logits(
    model, inputs: Any, *, batch_size: int = 16, attention_mode: str | None = None, show_progress_bar: bool = False
) -> tuple[list[Sentence], list[torch.Tensor]]:
    """Word logits (W x labels per sentence) of the model's token head."""
    head = find_head(model)
    sentences = as_sentences(inputs)
    word_tokenizer = WordTokenizer(model.decoder.tokenizer, model.decoder.max_seq_length, head.prefix_token)
    segments = word_tokenizer.segments(sentences)
    logits = [torch.zeros(len(spans), len(head.labels)) for _, spans in sentences]

    def consume(batch, features):
        scores = head(features)["word_logits"].float().cpu()
        for row, segment in enumerate(batch):
            local = slice(segment.own_first - segment.first, segment.own_last - segment.first)
            logits[segment.sentence][segment.own_first : segment.own_last] = scores[row, local]

    was_training = model.training
    model.eval()
    try:
        mode = attention_mode or head.attention_mode
        _run_segments(model, word_tokenizer, sentences, segments, batch_size, mode, show_progress_bar, consume)
    finally:
        model.train(was_training)
    return sentences, logits


def predict(
    model, inputs: Any, *, batch_size: int = 16, attention_mode: str | None = None, show_progress_bar: bool = False
) -> list[dict[str, Any]]:
    """Tag raw texts (split into words) or pre-split word lists with the model's token head.

    Returns one dict per input: `text`, `words` (each with `word`, `start`, `end`, `label`, `score`) and,
    for IOB2 heads, `entities` (each with `label`, `text`, `start`, `end`, `words` = [first, last + 1)),
    with character offsets into `text`. Long inputs are read in overlapping windows.
    """
    head = find_head(model)
    sentences, logits = predict_logits(
        model, inputs, batch_size=batch_size, attention_mode=attention_mode, show_progress_bar=show_progress_bar
    )
    results = []
    for (text, spans), sentence_logits in zip(sentences, logits):
        probabilities = sentence_logits.softmax(-1)
        scores, ids = probabilities.max(-1)
        labels = [head.labels[i] for i in ids.tolist()]
        words = [
            {"word": text[start:end], "start": start, "end": end, "label": label, "score": round(score, 4)}
            for (start, end), label, score in zip(spans, labels, scores.tolist())
        ]
        result = {"text": text, "words": words}
        if head.scheme == "IOB2":
            result["entities"] = [
                {
                    "label": kind,
                    "text": text[spans[first][0] : spans[last][1]],
                    "start": spans[first][0],
                    "end": spans[last][1],
                    "words": [first, last + 1],
                }
                for kind, first, last in get_entities(labels)
            ]
        results.append(result)
    return results
