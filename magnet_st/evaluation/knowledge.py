"""Knowledge retention on LAMA (Google-RE, T-REx, SQuAD): precision@1 of causal greedy generation.

Protocol (a left-to-right adaptation of LAMA's cloze probe):
- Prompt: the text before the object slot. T-REx and Google-RE use the relation template with [X]
  replaced by the subject and cut at [Y] ("Allan Peiper was born in"); SQuAD uses its masked sentence
  cut at [MASK]. Facts whose slot opens the text (nothing to condition on) are skipped.
- Google-RE templates: place_of_birth and place_of_death use relations.jsonl's P19 / P20 templates;
  relations.jsonl has none for date_of_birth, so LAMA's own Google-RE template "[X] (born [Y])." is used.
- Decoding: the causal LM with its head, causal attention (`is_causal=True`, whatever mode the model
  was saved in), greedy, `max_new_tokens` tokens, prompts left-padded in batches.
- Hit: the continuation's first k words equal the object label's k words (k = words in the label; one
  word for almost every label), compared lower-cased with punctuation stripped from each word. One
  leading article ("the", "a", "an") of the continuation is skipped unless the label starts with one,
  since a left-to-right LM writes "a member of the FIFA" where a cloze model fills "FIFA".
- P@1 x100 per relation file; a source's score is the mean over its relations (LAMA's macro average),
  and "micro" is the share of all facts.
"""

from __future__ import annotations

import json
import os
import random
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from magnet_st.evaluation.data import dataset_file

SOURCES = ("google_re", "trex", "squad")
GOOGLE_RE_FILES = {"date_of_birth": None, "place_of_birth": "P19", "place_of_death": "P20"}
DATE_OF_BIRTH_TEMPLATE = "[X] (born [Y])."
TREX_RELATIONS = ("P19", "P20", "P106", "P108", "P364", "P413", "P463", "P740")
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


def prompt_before_slot(text: str, slot: str) -> str | None:
    """Text before the slot marker, trailing spaces removed; None when the slot is missing or opens the text."""
    if slot not in text:
        return None
    prompt = text.split(slot, 1)[0].rstrip()
    return prompt or None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as file:
        return [json.loads(line) for line in file if line.strip()]


def _templates(data_dir: str | os.PathLike | None) -> dict[str, str]:
    path = dataset_file(data_dir, "lama", "relations.jsonl")
    return {row["relation"]: row["template"] for row in _read_jsonl(path)}


def load_lama(
    data_dir: str | os.PathLike | None = None,
    *,
    sources: Sequence[str] = SOURCES,
    limit_per_relation: int | None = None,
    seed: int = 0,
) -> list[dict[str, str]]:
    """LAMA facts as dicts with source, relation, prompt and label (a seeded subset per relation file)."""
    unknown = set(sources) - set(SOURCES)
    if unknown:
        raise ValueError(f"`sources` must be among {list(SOURCES)}, got {sorted(unknown)}.")
    templates = _templates(data_dir) if {"google_re", "trex"} & set(sources) else {}
    facts: list[dict[str, str]] = []

    def add(source: str, relation: str, rows: list[dict[str, Any]], prompt_of) -> None:
        if limit_per_relation is not None and len(rows) > limit_per_relation:
            rows = random.Random(f"{seed}-{relation}").sample(rows, limit_per_relation)
        for row in rows:
            prompt = prompt_of(row)
            if prompt is not None and str(row.get("obj_label", "")).strip():
                facts.append({"source": source, "relation": relation, "prompt": prompt, "label": row["obj_label"]})

    def template_prompt(template: str):
        return lambda row: prompt_before_slot(template.replace("[X]", row["sub_label"]), "[Y]")

    if "google_re" in sources:
        for name, relation_id in GOOGLE_RE_FILES.items():
            template = DATE_OF_BIRTH_TEMPLATE if relation_id is None else templates[relation_id]
            rows = _read_jsonl(dataset_file(data_dir, "lama", "Google_RE", f"{name}_test.jsonl"))
            add("google_re", name, rows, template_prompt(template))
    if "trex" in sources:
        for relation_id in TREX_RELATIONS:
            if relation_id not in templates:
                raise ValueError(f"relations.jsonl has no template for T-REx relation {relation_id}.")
            rows = _read_jsonl(dataset_file(data_dir, "lama", "TREx", f"{relation_id}.jsonl"))
            add("trex", relation_id, rows, template_prompt(templates[relation_id]))
    if "squad" in sources:
        rows = _read_jsonl(dataset_file(data_dir, "lama", "Squad", "test.jsonl"))
        add("squad", "squad", rows, lambda row: prompt_before_slot(row["masked_sentences"][0], "[MASK]"))
    return facts


def _prompt_ids(tokenizer, prompts: Sequence[str]) -> list[list[int]]:
    # No EOS after the prompt (the tokenizer's post-processor appends one); keep BOS where the model uses it.
    encoded = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
    probe = tokenizer("a")["input_ids"]
    bos = tokenizer.bos_token_id
    if bos is not None and probe and probe[0] == bos:
        encoded = [[bos, *ids] for ids in encoded]
    return encoded


@torch.no_grad()
def greedy_continuations(
    model: Any, prompts: Sequence[str], *, max_new_tokens: int = 5, batch_size: int = 32
) -> list[str]:
    """Greedy continuations of each prompt from the causal LM (causal attention, left-padded batches)."""
    decoder = model.decoder
    causal_lm, tokenizer = decoder.causal_lm, decoder.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(causal_lm.parameters()).device
    was_training = causal_lm.training
    causal_lm.eval()
    outputs: list[str] = []
    try:
        all_ids = _prompt_ids(tokenizer, prompts)
        for start in range(0, len(all_ids), batch_size):
            batch = all_ids[start : start + batch_size]
            width = max(len(ids) for ids in batch)
            input_ids = torch.tensor([[pad_id] * (width - len(ids)) + ids for ids in batch], device=device)
            attention_mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch], device=device)
            generated = causal_lm.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                num_beams=1,
                is_causal=True,
                pad_token_id=pad_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            outputs.extend(tokenizer.batch_decode(generated[:, width:], skip_special_tokens=True))
    finally:
        causal_lm.train(was_training)
    return outputs


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
