"""Word-level scores with seqeval: entity-level precision/recall/F1 (IOB2 tasks) and word accuracy."""

from __future__ import annotations

from collections.abc import Sequence

from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score


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
