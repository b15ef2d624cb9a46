"""Linear probe on a frozen encoder: word vectors are computed once, then the head trains on the cache.

The probe follows LLM2Vec's word-level protocol, which MAGNET reuses: dropout 0.1, one linear layer,
AdamW at lr 5e-4, up to 4000 steps of 32 sentences.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from magnet_st.modules.token_head import TokenClassificationHead
from magnet_st.seeding import seeded
from magnet_st.tagging.config import PROBE_DEFAULTS, TaggerConfig
from magnet_st.tagging.inference import encode_subtokens, encode_words
from magnet_st.tagging.scores import evaluate_cached
from magnet_st.tagging.tagger import attach_tagger, continuation_ids, label_ids, new_tagger


@dataclass
class ProbeResult:
    """Outcome of `train_probe`: scores on the evaluation set (if any), the settings and the loss curve."""

    scores: dict[str, float] | None
    settings: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)


def _save_checkpoint(head: TokenClassificationHead, output_dir: Path, step: int, history: list, is_best: bool) -> None:
    """Save the head as `checkpoint-STEP/` (and `best/` when it scores best so far), with the history."""
    for name in (f"checkpoint-{step}", "best") if is_best else (f"checkpoint-{step}",):
        (output_dir / name).mkdir(parents=True, exist_ok=True)
        head.save(str(output_dir / name))
    (output_dir / "history.json").write_text(json.dumps(history, indent=2))


def train_probe_on_features(
    head: TokenClassificationHead,
    features: Sequence[torch.Tensor],
    tags: Sequence[Sequence[str]],
    *,
    eval_features: Sequence[torch.Tensor] | None = None,
    eval_tags: Sequence[Sequence[str]] | None = None,
    config: TaggerConfig | None = None,
    output_dir: str | os.PathLike | None = None,
    **options: Any,
) -> list[dict[str, float]]:
    """Train the head's dropout + linear layer on cached word vectors; returns the history (loss, eval scores).

    Each step draws `batch_size` sentences. Training settings come from `config` and `options` (fields of
    `TaggerConfig`: `steps`, `learning_rate`, `batch_size`, `eval_steps`, `seed`, `show_progress_bar`).
    With `output_dir`, the head is checkpointed at every evaluation (`checkpoint-STEP/`) and the best one
    (by F1, or accuracy without IOB2) is kept as `best/`.
    """
    config = TaggerConfig.build(config, options).with_defaults(PROBE_DEFAULTS)
    if len(features) != len(tags):
        raise ValueError(f"Got {len(features)} feature sequences but {len(tags)} tag sequences.")
    ids = label_ids(head, tags, "tags")
    for index, (sentence, sentence_ids) in enumerate(zip(features, ids)):
        if len(sentence) != len(sentence_ids):
            raise ValueError(f"Sentence {index}: {len(sentence)} word states but {len(sentence_ids)} tags.")
    generator = torch.Generator().manual_seed(config.seed)
    with seeded(config.seed, device=head.linear.weight.device):  # dropout draws from the seed alone
        device = head.linear.weight.device
        optimizer = torch.optim.AdamW(head.parameters(), lr=config.learning_rate)
        history, best = [], -math.inf
        metric = "f1" if head.scheme == "IOB2" else "accuracy"
        head.train()
        progress = tqdm(range(1, config.steps + 1), desc="Probe", disable=not config.show_progress_bar)
        for step in progress:
            picked = torch.randint(len(features), (config.batch_size,), generator=generator).tolist()
            states = torch.cat([features[i] for i in picked]).to(device)  # (words, H)
            targets = torch.tensor([label for i in picked for label in ids[i]], device=device)  # (words,)
            loss = torch.nn.functional.cross_entropy(head.classifier(states), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step % 50 == 0 or step == config.steps:
                progress.set_postfix(loss=f"{loss.item():.4f}")
            if eval_features is not None and (step % config.eval_interval == 0 or step == config.steps):
                scores = evaluate_cached(head, eval_features, eval_tags)
                history.append({"step": step, "loss": loss.item(), **scores})
                if output_dir is not None:
                    _save_checkpoint(head, Path(output_dir), step, history, scores[metric] > best)
                best = max(best, scores[metric])
    head.eval()
    return history


def with_continuations(
    head: TokenClassificationHead,
    subtokens: Sequence[tuple[torch.Tensor, torch.Tensor]],
    tags: Sequence[Sequence[str]],
) -> tuple[list[torch.Tensor], list[list[str]]]:
    """Training rows for "label all tokens": each word's first-sub-token state with its tag, then its later
    sub-tokens' states with the continuation tag (I-X inside an entity, see `continuation_ids`).

    `subtokens` holds per sentence the states and word index of every sub-token (`encode_subtokens`).
    """
    continuation = continuation_ids(head)
    features, targets = [], []
    for (states, word_index), sentence_tags in zip(subtokens, tags):  # states (N, H), word_index (N,)
        first = torch.ones_like(word_index, dtype=torch.bool)
        first[1:] = word_index[1:] != word_index[:-1]
        ids = head.label_ids(list(sentence_tags))
        later = [head.labels[continuation[ids[word]]] for word in word_index[~first].tolist()]
        features.append(torch.cat([states[first], states[~first]]))
        targets.append([*sentence_tags, *later])
    return features, targets


def train_probe(
    model,
    words: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]],
    *,
    eval_words: Sequence[Sequence[str]] | None = None,
    eval_tags: Sequence[Sequence[str]] | None = None,
    config: TaggerConfig | None = None,
    encode_batch_size: int = 16,
    output_dir: str | os.PathLike | None = None,
    **options: Any,
) -> ProbeResult:
    """Linear probe on the frozen encoder: word vectors are computed once, then the head trains on them.

    Settings come from `config` and `options` (any `TaggerConfig` field, e.g. `task="ner"`, `steps=4000`).
    The trained word pooling and head are attached to `model` (replacing an earlier tagger), so
    `model.save()` keeps them and `magnet_st.tagging.predict` uses them. `attention_mode="causal"` probes
    an unadapted base model as is.
    """
    config = TaggerConfig.build(config, options).with_defaults(PROBE_DEFAULTS)
    pooling, head, _, _ = new_tagger(model, config, words, tags, eval_words, eval_tags)  # bad tags fail fast
    encode = dict(
        attention_mode=config.attention_mode,
        prefix_token=config.prefix_token,
        batch_size=encode_batch_size,
        show_progress_bar=config.show_progress_bar,
    )
    word_vectors = functools.partial(encode_words, alignments=(config.alignment,), **encode)
    train_words = [list(sentence) for sentence in words]
    if config.labels_all_tokens:  # first sub-tokens with the word tags, later ones with continuation tags
        features, train_tags = with_continuations(head, encode_subtokens(model, train_words, **encode), tags)
    else:
        features, train_tags = word_vectors(model, train_words)[config.alignment], tags
    eval_features = None
    if eval_words is not None:
        eval_features = word_vectors(model, [list(sentence) for sentence in eval_words])[config.alignment]
    history = train_probe_on_features(
        head,
        features,
        train_tags,
        eval_features=eval_features,
        eval_tags=eval_tags,
        config=config,
        output_dir=output_dir,
    )
    attach_tagger(model, pooling, head)
    scores = {key: value for key, value in history[-1].items() if key != "step"} if history else None
    settings = dict(
        mode="linear_probe",
        task=config.task,
        alignment=config.alignment,
        label_all_tokens=config.labels_all_tokens,
        attention_mode=config.attention_mode,
        prefix_token=config.prefix_token,
        dropout=config.dropout,
        steps=config.steps,
        learning_rate=config.learning_rate,
        batch_size=config.batch_size,
        train_sentences=len(words),
        eval_sentences=len(eval_words) if eval_words is not None else 0,
        seed=config.seed,
    )
    return ProbeResult(scores=scores, settings=settings, history=history)
