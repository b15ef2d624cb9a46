"""Scores of a tagger with seqeval: entity-level precision/recall/F1 (IOB2 tasks) and word accuracy."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score

from magnet_st.data.conll import check_tagged
from magnet_st.decoding import eval_mode
from magnet_st.modules.token_head import TokenClassificationHead
from magnet_st.tagging.inference import predict_logits
from magnet_st.tagging.tagger import find_tagger, label_ids


def tagging_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], scheme: str = "IOB2") -> dict:
    """Scores in [0, 1]: `accuracy` always; `precision`, `recall`, `f1` over entities when `scheme` is "IOB2".

    Entity scores follow conlleval (seqeval's default mode): an entity counts when its type and exact word
    span match.
    """
    if len(gold) != len(predicted):
        raise ValueError(f"Got {len(gold)} gold sequences but {len(predicted)} predicted ones.")
    for index, (gold_tags, predicted_tags) in enumerate(zip(gold, predicted)):
        if len(gold_tags) != len(predicted_tags):
            raise ValueError(f"Sequence {index}: {len(gold_tags)} gold tags but {len(predicted_tags)} predicted.")
    gold, predicted = [list(tags) for tags in gold], [list(tags) for tags in predicted]
    scores = {"accuracy": float(accuracy_score(gold, predicted)), "words": sum(len(tags) for tags in gold)}
    if scheme == "IOB2":
        scores["precision"] = float(precision_score(gold, predicted, zero_division=0))
        scores["recall"] = float(recall_score(gold, predicted, zero_division=0))
        scores["f1"] = float(f1_score(gold, predicted, zero_division=0))
    return scores


def evaluate_cached(
    head: TokenClassificationHead, features: Sequence[torch.Tensor], tags: Sequence[Sequence[str]]
) -> dict[str, float]:
    """Scores of `head` on cached word vectors (one W x H tensor per sentence) against gold tags."""
    lengths = [len(sentence) for sentence in features]
    with eval_mode(head):
        states = torch.cat(list(features)).to(head.linear.weight.device)  # (words, H)
        predicted_ids = head.classifier(states).argmax(-1).cpu().split(lengths)
    predicted = [[head.labels[i] for i in ids.tolist()] for ids in predicted_ids]
    return tagging_scores(tags, predicted, head.scheme)


def evaluate_tagger(
    model,
    words: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]],
    *,
    batch_size: int = 16,
    attention_mode: str | None = None,
    show_progress_bar: bool = False,
) -> dict[str, float]:
    """Scores of the model's token head on labelled sentences (entity P/R/F1 for IOB2 heads, accuracy always)."""
    check_tagged(words, tags, "tags")
    _, head = find_tagger(model)
    label_ids(head, tags, "tags")  # unknown tags fail before the decoder runs
    _, logits = predict_logits(
        model,
        [list(sentence) for sentence in words],
        batch_size=batch_size,
        attention_mode=attention_mode,
        show_progress_bar=show_progress_bar,
    )
    predicted = [[head.labels[i] for i in sentence.argmax(-1).tolist()] for sentence in logits]
    return tagging_scores(tags, predicted, head.scheme)
