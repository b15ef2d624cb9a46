"""Run a MAGNET model over words: word vectors for probes, and `predict` through the model's tagger modules."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from seqeval.metrics.sequence_labeling import get_entities
from tqdm.auto import tqdm

from magnet_st.attention import AttentionMode
from magnet_st.decoding import eval_mode
from magnet_st.modules.word_pooling import WordPooling, check_alignment
from magnet_st.tagging.alignment import Segment, WordTokenizer, join_words, split_words
from magnet_st.tagging.tagger import find_tagger
from magnet_st.validation import check_positive_int

Sentence = tuple[str, list[tuple[int, int]]]  # text and the character span of each word
Features = dict[str, Any]


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


def word_batches(
    model,
    word_tokenizer: WordTokenizer,
    sentences: Sequence[Sentence],
    forward: Callable[[Features], Features],
    *,
    batch_size: int,
    show_progress_bar: bool,
) -> Iterator[tuple[list[Segment], Features]]:
    """Run `forward` over every sentence's windows in batches; yields each batch's segments and output features.

    Windows run longest first, so batches pad little.
    """
    check_positive_int(batch_size, "batch_size")
    segments = word_tokenizer.segments(sentences)
    order = sorted(range(len(segments)), key=lambda k: -(segments[k].last - segments[k].first))
    device = next(model.decoder.parameters()).device
    with eval_mode(model):
        for start in tqdm(range(0, len(order), batch_size), desc="Words", disable=not show_progress_bar):
            batch = [segments[k] for k in order[start : start + batch_size]]
            features = {key: value.to(device) for key, value in word_tokenizer.features(sentences, batch).items()}
            yield batch, forward(features)


def read_words(
    model,
    word_tokenizer: WordTokenizer,
    sentences: Sequence[Sentence],
    forward: Callable[[Features], Features],
    outputs: dict[str, Callable[[Features], torch.Tensor]],
    *,
    batch_size: int,
    show_progress_bar: bool,
) -> dict[str, list[torch.Tensor]]:
    """Run `forward` over every sentence's windows; each of `outputs` reads a (B, W, D) tensor from the features.

    Returns, per output name, one (words, D) float tensor per sentence, each word read from the window it owns.
    """
    words: dict[str, list[torch.Tensor | None]] = {name: [None] * len(sentences) for name in outputs}
    for batch, features in word_batches(
        model, word_tokenizer, sentences, forward, batch_size=batch_size, show_progress_bar=show_progress_bar
    ):
        for name, read in outputs.items():
            values = read(features).float().cpu()  # (B, W, D)
            for row, segment in enumerate(batch):
                sentence = words[name][segment.sentence]
                if sentence is None:
                    sentence = torch.zeros(len(sentences[segment.sentence][1]), values.shape[-1])
                    words[name][segment.sentence] = sentence
                local = slice(segment.own_first - segment.first, segment.own_last - segment.first)
                sentence[segment.own_first : segment.own_last] = values[row, local]
    return words


def encode_subtokens(
    model,
    inputs: Any,
    *,
    attention_mode: str = "bidirectional",
    prefix_token: str = "bos",
    batch_size: int = 16,
    show_progress_bar: bool = False,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The state of every sub-token of every word: per sentence, (states, word of each state).

    States (N x H, float) run word by word, each word's sub-tokens in order, so a word's first row is its
    "first"-alignment vector. A word whose tokens were all cut from its window gets one zero row, as
    `encode_words` gives it.
    """
    mode = AttentionMode.parse_reading(attention_mode).value
    sentences = as_sentences(inputs)
    word_tokenizer = WordTokenizer(model.decoder.tokenizer, model.decoder.max_seq_length, prefix_token)
    tokens: list[list[torch.Tensor | None]] = [[None] * len(spans) for _, spans in sentences]
    for batch, features in word_batches(
        model,
        word_tokenizer,
        sentences,
        lambda features: model.decoder(features, attention_mode=mode),
        batch_size=batch_size,
        show_progress_bar=show_progress_bar,
    ):
        states = features["token_embeddings"].float().cpu()  # (B, T, H)
        word_token_mask = features["word_token_mask"].cpu()  # (B, W, T)
        for row, segment in enumerate(batch):
            for word in range(segment.own_first, segment.own_last):
                positions = word_token_mask[row, word - segment.first].nonzero().flatten()  # the word's tokens
                tokens[segment.sentence][word] = (
                    states[row, positions] if len(positions) else states.new_zeros(1, states.shape[-1])
                )
    result = []
    for sentence in tokens:
        counts = torch.tensor([len(word) for word in sentence])
        result.append((torch.cat(sentence), torch.repeat_interleave(torch.arange(len(sentence)), counts)))
    return result


def _pooled(pooling: WordPooling) -> Callable[[Features], torch.Tensor]:
    """Reads `pooling`'s word vectors (B, W, H) from decoder features, leaving the features as they are."""
    return lambda features: pooling(dict(features))[pooling.module_output_name]


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

    The decoder runs once; "previous" and "own" pool the same pass. Used to cache a frozen encoder's
    features for linear probes.
    """
    poolings = {alignment: WordPooling(check_alignment(alignment), prefix_token) for alignment in alignments}
    mode = AttentionMode.parse_reading(attention_mode).value
    sentences = as_sentences(inputs)
    word_tokenizer = WordTokenizer(model.decoder.tokenizer, model.decoder.max_seq_length, prefix_token)
    return read_words(
        model,
        word_tokenizer,
        sentences,
        lambda features: model.decoder(features, attention_mode=mode),
        {alignment: _pooled(pooling) for alignment, pooling in poolings.items()},
        batch_size=batch_size,
        show_progress_bar=show_progress_bar,
    )


def predict_logits(
    model, inputs: Any, *, batch_size: int = 16, attention_mode: str | None = None, show_progress_bar: bool = False
) -> tuple[list[Sentence], list[torch.Tensor]]:
    """Word logits (W x labels per sentence) of the model's tagger, computed by `model.forward`."""
    pooling, head = find_tagger(model)
    mode = AttentionMode.parse_reading(attention_mode or head.attention_mode).value
    sentences = as_sentences(inputs)
    word_tokenizer = WordTokenizer(model.decoder.tokenizer, model.decoder.max_seq_length, pooling.prefix_token)
    logits = read_words(
        model,
        word_tokenizer,
        sentences,
        lambda features: model(features, attention_mode=mode),
        {"logits": lambda features: features[head.module_output_name]},
        batch_size=batch_size,
        show_progress_bar=show_progress_bar,
    )["logits"]
    return sentences, logits


def predict(
    model, inputs: Any, *, batch_size: int = 16, attention_mode: str | None = None, show_progress_bar: bool = False
) -> list[dict[str, Any]]:
    """Tag raw texts (split into words) or pre-split word lists with the model's token head.

    Returns one dict per input: `text`, `words` (each with `word`, `start`, `end`, `label`, `score`) and,
    for IOB2 heads, `entities` (each with `label`, `text`, `start`, `end`, `words` = [first, last + 1)),
    with character offsets into `text`. Long inputs are read in overlapping windows.
    """
    _, head = find_tagger(model)
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
