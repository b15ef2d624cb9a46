"""CoNLL-2003 word-level linear probes (NER, chunking, POS), the paper's token-representation claim.

The encoder is frozen: word states of the train subset, a validation subset and the test split are
computed once (one decoder pass serves every task and both alignments), then a dropout + linear head
trains per task on the cache (LLM2Vec's protocol: lr 5e-4, batches of 32 sentences, `steps` steps).
Each task's headline alignment is the one that scores higher on the validation sentences, so a model's
best reading is chosen without looking at the test split.

Each task score carries a 95% bootstrap interval over the test sentences, from per-sentence counts:
entity true/false positives and false negatives (seqeval's conlleval counting) for NER and chunking,
correct words for POS.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import torch

from magnet_st.attention import AttentionMode
from magnet_st.data.conll import conll2003_split
from magnet_st.decoding import eval_mode
from magnet_st.evaluation.bootstrap import per_example_record, record_interval

# task -> (CoNLL-2003 column, label scheme, headline metric)
WORD_TASKS = {"ner": ("ner", "IOB2", "f1"), "chunk": ("chunk", "IOB2", "f1"), "pos": ("pos", "none", "accuracy")}
# Each attention's natural alignment first (the headline on a validation tie, or with headline="natural"): a
# causal LM reads a word at its own tokens; a MAGNET / LLM2Vec model trained with MNTP predicts a token from the
# state before it.
NATURAL_ALIGNMENTS = {"causal": ("own", "previous"), "bidirectional": ("previous", "own")}
HEADLINES = ("validation", "natural")  # how each task's headline alignment is chosen


def evaluate_word_probes(
    model,
    data_dir: str | os.PathLike | None = None,
    *,
    tasks: Sequence[str] = ("ner", "chunk", "pos"),
    attention_mode: str = "bidirectional",
    alignments: Sequence[str] | None = None,
    max_train_sentences: int | None = 2000,
    max_test_sentences: int | None = None,
    headline: str = "validation",
    max_valid_sentences: int | None = 500,
    steps: int = 4000,
    learning_rate: float = 5e-4,
    batch_size: int = 32,
    encode_batch_size: int = 16,
    seed: int = 0,
    show_progress_bar: bool = True,
) -> dict[str, Any]:
    """Linear-probe scores on the CoNLL-2003 test split.

    Returns `{task: score}` at each task's headline alignment (entity F1 x100 for "ner" and "chunk", word
    accuracy x100 for "pos"), `details` (every metric and its 95% interval per alignment and task, metrics in
    [0, 1], with the validation score) and `settings` (all choices, sizes and timings; `headline_alignments`
    is `{task: alignment}`). Use `attention_mode="causal"` for an unadapted base and "bidirectional" for
    adapted (LLM2Vec / MAGNET) models. `alignments` defaults to both, the attention's natural one first
    (`NATURAL_ALIGNMENTS`). `headline="validation"` makes the alignment scoring higher on the first
    `max_valid_sentences` of CoNLL's validation split the headline (the first one on a tie); "natural" takes
    the first alignment. Per-example records of the other alignment are keyed "task/alignment", so paired
    comparisons can pit one model's reading against another's.
    """
    from magnet_st.modules.token_head import TokenClassificationHead
    from magnet_st.tagging.inference import encode_words
    from magnet_st.tagging.probe import train_probe_on_features
    from magnet_st.tagging.scores import tagging_scores
    from magnet_st.tagging.tagger import label_set

    tasks = list(tasks)
    unknown = [task for task in tasks if task not in WORD_TASKS]
    if not tasks or unknown:
        raise ValueError(f"`tasks` must be a non-empty subset of {tuple(WORD_TASKS)}, got {tasks!r}.")
    mode = AttentionMode.parse_reading(attention_mode)
    if isinstance(alignments, str):
        raise ValueError(f"`alignments` must be a list of alignments such as ['{alignments}'], got the string.")
    alignments = NATURAL_ALIGNMENTS[mode.value] if alignments is None else tuple(alignments)
    if (
        not alignments
        or len(set(alignments)) != len(alignments)
        or any(alignment not in ("previous", "own") for alignment in alignments)
    ):
        raise ValueError(f"`alignments` must name one or both of 'previous', 'own' once, got {alignments!r}.")
    if headline not in HEADLINES:
        raise ValueError(f"`headline` must be one of {HEADLINES}, got {headline!r}.")
    validate = headline == "validation" and len(alignments) > 1
    train = conll2003_split(data_dir, "train", max_train_sentences)
    valid = conll2003_split(data_dir, "valid", max_valid_sentences) if validate else []
    test = conll2003_split(data_dir, "test", max_test_sentences)

    started = time.perf_counter()
    encode = dict(
        alignments=tuple(alignments),
        attention_mode=mode.value,
        batch_size=encode_batch_size,
        show_progress_bar=show_progress_bar,
    )
    train_features = encode_words(model, [sentence.words for sentence in train], **encode)
    test_features = encode_words(model, [sentence.words for sentence in test], **encode)
    valid_features = encode_words(model, [sentence.words for sentence in valid], **encode) if validate else {}
    encode_seconds = time.perf_counter() - started

    details: dict[str, dict[str, dict[str, float]]] = {alignment: {} for alignment in alignments}
    records: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    for alignment in alignments:
        for task in tasks:
            column, scheme, metric = WORD_TASKS[task]
            train_tags = [sentence.tags[column] for sentence in train]
            test_tags = [sentence.tags[column] for sentence in test]
            valid_tags = [sentence.tags[column] for sentence in valid]
            # Labels from train and test, so a test-only tag is a (scored) miss, not an error.
            labels = label_set(train_tags + test_tags, scheme)
            torch.manual_seed(seed)
            head = TokenClassificationHead(
                model.decoder.get_embedding_dimension(),
                labels,
                scheme=scheme,
                attention_mode=mode.value,
                task=task,
            )
            train_probe_on_features(
                head,
                train_features[alignment],
                train_tags,
                steps=steps,
                learning_rate=learning_rate,
                batch_size=batch_size,
                seed=seed,
                show_progress_bar=show_progress_bar,
            )
            predicted = predicted_tags(head, test_features[alignment])
            record = sentence_record(test_tags, predicted, scheme, [sentence.words for sentence in test])
            details[alignment][task] = {
                **tagging_scores(test_tags, predicted, scheme),
                "interval": record_interval(record),
            }
            if validate:
                scores = tagging_scores(valid_tags, predicted_tags(head, valid_features[alignment]), scheme)
                details[alignment][task]["validation"] = scores[metric]
            records[f"{task}/{alignment}"] = record
    probe_seconds = time.perf_counter() - started

    chosen = {task: headline_alignment(details, task, alignments) for task in tasks}
    for task, alignment in chosen.items():
        records[task] = records.pop(f"{task}/{alignment}")
    result: dict[str, Any] = {task: round(100 * details[chosen[task]][task][WORD_TASKS[task][2]], 2) for task in tasks}
    result["details"] = details
    result["intervals"] = {task: details[chosen[task]][task]["interval"] for task in tasks}
    result["per_example"] = records
    result["settings"] = dict(
        model=getattr(model.decoder, "base_model", None),
        attention_mode=mode.value,
        alignments=list(alignments),
        headline=headline if validate else "natural",
        headline_alignments=chosen,
        valid_sentences=len(valid),
        prefix_token="bos",
        train_sentences=len(train),
        test_sentences=len(test),
        steps=steps,
        learning_rate=learning_rate,
        batch_size_sentences=batch_size,
        dropout=0.1,
        seed=seed,
        metric={task: WORD_TASKS[task][2] for task in tasks},
        encode_seconds=round(encode_seconds, 1),
        probe_seconds=round(probe_seconds, 1),
        torch_threads=torch.get_num_threads(),
    )
    return result


def headline_alignment(details: dict[str, dict[str, dict[str, float]]], task: str, alignments: Sequence[str]) -> str:
    """The alignment scoring highest on validation for `task`; the first one on a tie or without validation."""
    validation = [details[alignment][task].get("validation") for alignment in alignments]
    if None in validation:
        return alignments[0]
    return alignments[validation.index(max(validation))]


def predicted_tags(head, features: Sequence[torch.Tensor]) -> list[list[str]]:
    """The probe's tag for every word of every sentence (features: one W x H tensor per sentence)."""
    lengths = [len(sentence) for sentence in features]
    with eval_mode(head):
        states = torch.cat(list(features)).to(head.linear.weight.device)  # (words, H)
        predicted_ids = head.classifier(states).argmax(-1).cpu().split(lengths)
    return [[head.labels[i] for i in ids.tolist()] for ids in predicted_ids]


def sentence_record(
    gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], scheme: str, keys: Sequence[Any]
) -> dict[str, Any]:
    """Per-sentence counts: entity tp/fp/fn (IOB2, micro F1) or correct/total words (accuracy), x100."""
    if scheme != "IOB2":
        correct = [sum(g == p for g, p in zip(gold_tags, tags)) for gold_tags, tags in zip(gold, predicted)]
        return per_example_record("ratio", keys, scale=100, numerator=correct, total=[len(tags) for tags in gold])
    from seqeval.metrics.sequence_labeling import get_entities

    tp, fp, fn = [], [], []
    for gold_tags, tags in zip(gold, predicted):
        expected, found = set(get_entities(list(gold_tags))), set(get_entities(list(tags)))
        tp.append(len(expected & found))
        fp.append(len(found - expected))
        fn.append(len(expected - found))
    return per_example_record("f1", keys, scale=100, tp=tp, fp=fp, fn=fn)
