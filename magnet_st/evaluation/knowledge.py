"""Knowledge retention on LAMA (Google-RE, T-REx, SQuAD): precision@1 of causal greedy generation.

Protocol (a left-to-right adaptation of LAMA's cloze probe):
- Prompt: the text before the object slot (`magnet_st.data.lama` builds them from the templates).
- Decoding: the causal LM with its head, causal attention (`is_causal=True`, whatever mode the model
  was saved in), greedy, `max_new_tokens` tokens, prompts left-padded in batches.
- Hit: the continuation's first k words equal the object label's k words (k = words in the label; one
  word for almost every label), compared lower-cased with punctuation stripped from each word. One
  leading article ("the", "a", "an") of the continuation is skipped unless the label starts with one,
  since a left-to-right LM writes "a member of the FIFA" where a cloze model fills "FIFA".
- P@1 x100 per relation file; a source's score is the mean over its relations (LAMA's macro average),
  and "micro" is the share of all facts.
- Intervals: 95% bootstrap over the facts (`intervals`, keyed by source and "micro"); a resample recomputes
  each relation's P@1 from the facts drawn, so a source's macro average keeps its definition.
"""

from __future__ import annotations

import os
import string
from collections.abc import Sequence
from typing import Any

from magnet_st.data.lama import SOURCES, load_lama
from magnet_st.evaluation.bootstrap import per_example_record, record_interval
from magnet_st.generation import generate

ARTICLES = ("the", "a", "an")
_PUNCTUATION = string.punctuation + "“”‘’«»"


def normalize_words(text: str) -> list[str]:
    """Lower-cased words with surrounding punctuation stripped; words that were only punctuation dropped."""
    words = (word.strip(_PUNCTUATION).lower() for word in text.split())
    return [word for word in words if word]


def is_hit(continuation: str, label: str) -> bool:
    """Whether the generated continuation starts with the object label, word for word."""
    expected = normalize_words(label)
    words = normalize_words(continuation)
    if words and words[0] in ARTICLES and expected and expected[0] not in ARTICLES:
        words = words[1:]
    return bool(expected) and words[: len(expected)] == expected


def greedy_continuations(
    model: Any, prompts: Sequence[str], *, max_new_tokens: int = 5, batch_size: int = 32
) -> list[str]:
    """Greedy continuations of each prompt from the causal LM (causal attention, left-padded batches)."""
    return generate(
        model, list(prompts), max_new_tokens=max_new_tokens, batch_size=batch_size, do_sample=False, num_beams=1
    )


def lama_scores(facts: Sequence[dict[str, str]], continuations: Sequence[str]) -> dict[str, Any]:
    """P@1 x100 per relation, per source (macro over relations) and overall (micro over facts)."""
    if len(facts) != len(continuations):
        raise ValueError(f"{len(facts)} facts but {len(continuations)} continuations; they must match.")
    hits: dict[tuple[str, str], list[bool]] = {}
    for fact, continuation in zip(facts, continuations):
        hits.setdefault((fact["source"], fact["relation"]), []).append(is_hit(continuation, fact["label"]))
    relations = {f"{source}/{relation}": 100 * sum(h) / len(h) for (source, relation), h in hits.items()}
    sources: dict[str, float] = {}
    for source in dict.fromkeys(source for source, _ in hits):
        values = [value for key, value in relations.items() if key.startswith(f"{source}/")]
        sources[source] = sum(values) / len(values)
    every = [hit for h in hits.values() for hit in h]
    return {
        "precision_at_1": sources,
        "micro_precision_at_1": 100 * sum(every) / len(every) if every else 0.0,
        "per_relation": relations,
        "facts": {f"{source}/{relation}": len(h) for (source, relation), h in hits.items()},
    }


def lama_records(facts: Sequence[dict[str, str]], continuations: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per-fact hits: "micro" over all facts, and per source its facts grouped by relation (macro mean)."""
    hits = [is_hit(continuation, fact["label"]) for fact, continuation in zip(facts, continuations)]
    keys = [(fact["source"], fact["relation"], fact["prompt"], fact["label"]) for fact in facts]
    records = {"micro": per_example_record("mean", keys, scale=100, value=hits)}
    for source in dict.fromkeys(fact["source"] for fact in facts):
        members = [i for i, fact in enumerate(facts) if fact["source"] == source]
        relations = list(dict.fromkeys(facts[i]["relation"] for i in members))
        records[source] = per_example_record(
            "macro_mean",
            [keys[i] for i in members],
            scale=100,
            value=[hits[i] for i in members],
            group=[relations.index(facts[i]["relation"]) for i in members],
        )
    return records


def evaluate_knowledge(
    model: Any,
    data_dir: str | os.PathLike | None = None,
    *,
    sources: Sequence[str] = SOURCES,
    limit_per_relation: int | None = None,
    max_new_tokens: int = 5,
    batch_size: int = 32,
    seed: int = 0,
    examples: int = 5,
) -> dict[str, Any]:
    """LAMA precision@1 (x100) of greedy causal generation; see the module docstring for the exact protocol."""
    if not hasattr(model, "decoder"):
        raise ValueError("LAMA needs a model with an LM head (a MAGNET decoder model), not a plain encoder.")
    facts = load_lama(data_dir, sources=sources, limit_per_relation=limit_per_relation, seed=seed)
    if not facts:
        raise ValueError("No LAMA facts to evaluate (every prompt was empty or `limit_per_relation` is 0).")
    continuations = greedy_continuations(
        model, [fact["prompt"] for fact in facts], max_new_tokens=max_new_tokens, batch_size=batch_size
    )
    results = lama_scores(facts, continuations)
    records = lama_records(facts, continuations)
    results["intervals"] = {name: record_interval(record) for name, record in records.items()}
    results["per_example"] = records
    results["settings"] = {
        "decoding": "greedy, causal attention",
        "max_new_tokens": max_new_tokens,
        "limit_per_relation": limit_per_relation,
        "seed": seed,
        "sources": list(sources),
    }
    results["examples"] = [
        {**fact, "continuation": continuation} for fact, continuation in list(zip(facts, continuations))[:examples]
    ]
    return results
