"""LAMA facts (Google-RE, T-REx, SQuAD) as left-to-right prompts: the text before the object slot.

T-REx and Google-RE use the relation template with [X] replaced by the subject and cut at [Y] ("Allan
Peiper was born in"); SQuAD uses its masked sentence cut at [MASK]. Facts whose slot opens the text
(nothing to condition on) are skipped. Google-RE's place_of_birth and place_of_death use relations.jsonl's
P19 / P20 templates; relations.jsonl has none for date_of_birth, so LAMA's own Google-RE template
"[X] (born [Y])." is used.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from magnet_st.data.paths import dataset_file

SOURCES = ("google_re", "trex", "squad")
GOOGLE_RE_FILES = {"date_of_birth": None, "place_of_birth": "P19", "place_of_death": "P20"}
DATE_OF_BIRTH_TEMPLATE = "[X] (born [Y])."
TREX_RELATIONS = ("P19", "P20", "P106", "P108", "P364", "P413", "P463", "P740")
LAMA_RELATIONS = ("lama", "relations.jsonl")
SQUAD_FILE = ("lama", "Squad", "test.jsonl")


def _google_re_file(name: str) -> tuple[str, ...]:
    return ("lama", "Google_RE", f"{name}_test.jsonl")


def _trex_file(relation_id: str) -> tuple[str, ...]:
    return ("lama", "TREx", f"{relation_id}.jsonl")


def lama_files(sources: Sequence[str] = SOURCES) -> list[tuple[str, ...]]:
    """Path parts (under the data root) of every file `load_lama` reads for `sources`."""
    files = [LAMA_RELATIONS] if {"google_re", "trex"} & set(sources) else []
    if "google_re" in sources:
        files += [_google_re_file(name) for name in GOOGLE_RE_FILES]
    if "trex" in sources:
        files += [_trex_file(relation_id) for relation_id in TREX_RELATIONS]
    if "squad" in sources:
        files.append(SQUAD_FILE)
    return files


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
    path = dataset_file(data_dir, *LAMA_RELATIONS)
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
            rows = _read_jsonl(dataset_file(data_dir, *_google_re_file(name)))
            add("google_re", name, rows, template_prompt(template))
    if "trex" in sources:
        for relation_id in TREX_RELATIONS:
            if relation_id not in templates:
                raise ValueError(f"relations.jsonl has no template for T-REx relation {relation_id}.")
            rows = _read_jsonl(dataset_file(data_dir, *_trex_file(relation_id)))
            add("trex", relation_id, rows, template_prompt(templates[relation_id]))
    if "squad" in sources:
        rows = _read_jsonl(dataset_file(data_dir, *SQUAD_FILE))
        add("squad", "squad", rows, lambda row: prompt_before_slot(row["masked_sentences"][0], "[MASK]"))
    return facts
