"""The declared parts of the evaluation suite: what runs each one, what it returns, which files it reads.

    sentence    STS Spearman x100 and Banking77 / SST-2 accuracy through mteb   (evaluation.sentence)
    word        CoNLL-2003 linear probes: NER, chunking, POS                    (evaluation.word_level)
    infilling   span perplexity, both contexts vs left only                     (evaluation.infilling)
    generation  rep-4 / rep-sen of greedy and nucleus continuations             (evaluation.generation)
    knowledge   LAMA precision@1 of greedy causal generation                    (evaluation.knowledge)

A part's function is imported when it runs, so a part whose module is not installed is recorded as
"not available"; parts that need an LM head are "n/a" for plain encoders such as all-MiniLM-L6-v2.
"""

from __future__ import annotations

import importlib
import inspect
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from magnet_st.data.classification import CLASSIFICATION_FILES
from magnet_st.data.lama import lama_files
from magnet_st.data.paths import dataset_file
from magnet_st.data.rocstories import ROCSTORIES_TEST
from magnet_st.data.sts import STS_FILES
from magnet_st.data.wikipedia import WIKI_FILE
from magnet_st.evaluation.results import (
    GenerationResult,
    InfillingResult,
    KnowledgeResult,
    PartOutcome,
    Record,
    SentenceResult,
    WordProbeResult,
    jsonable,
)

STS_VARIANTS = (("causal", "mean"), ("causal", "lasttoken"), ("bidirectional", "mean"), ("bidirectional", "lasttoken"))
# Settings that describe one call or this machine, not the part: left out of the recorded settings.
UNRECORDED_SETTINGS = ("output_folder",)


@dataclass(frozen=True)
class EvaluationPart:
    """One part of the suite.

    `runs` names several calls of the function whose results together make the part's result (keyed by
    name), each with its own settings; empty means one call whose result is the part's result.
    `suite_options` are the run options the suite itself supplies (mteb's output folder, STS variants, the
    attention words are read with).
    """

    name: str
    module: str
    function: str
    result_type: type[Record]
    data_files: tuple[tuple[str, ...], ...]
    needs_lm_head: bool = True
    runs: tuple[tuple[str, dict[str, Any]], ...] = ()
    suite_options: tuple[str, ...] = ()

    def load_function(self) -> Callable[..., dict[str, Any]] | None:
        """The part's function, or None when its module is not installed."""
        try:
            module = importlib.import_module(self.module)
        except ModuleNotFoundError as error:
            if error.name == self.module:
                return None
            raise
        return getattr(module, self.function, None)


EVALUATION_PARTS = (
    EvaluationPart(
        "sentence",
        "magnet_st.evaluation.sentence",
        "evaluate_sentence",
        SentenceResult,
        (STS_FILES["stsb"], *(file for files in CLASSIFICATION_FILES.values() for file in files)),
        needs_lm_head=False,
        suite_options=("output_folder", "variants"),
    ),
    EvaluationPart(
        "word",
        "magnet_st.evaluation.word_level",
        "evaluate_word_probes",
        WordProbeResult,
        (("conll2003", "train.txt"), ("conll2003", "test.txt")),
        suite_options=("attention_mode",),
    ),
    EvaluationPart(
        "infilling",
        "magnet_st.evaluation.infilling",
        "evaluate_infilling",
        InfillingResult,
        (ROCSTORIES_TEST, WIKI_FILE),
        runs=tuple(
            (f"{dataset}/{context}", {"dataset": dataset, "context": context})
            for dataset in ("rocstories", "wikipedia")
            for context in ("both", "left")
        ),
    ),
    EvaluationPart(
        "generation",
        "magnet_st.evaluation.generation",
        "evaluate_repetition",
        GenerationResult,
        (WIKI_FILE,),
        runs=(("greedy", {"sampling": False}), ("nucleus", {"sampling": True})),
    ),
    EvaluationPart("knowledge", "magnet_st.evaluation.knowledge", "evaluate_knowledge", KnowledgeResult, lama_files()),
)
PARTS = tuple(part.name for part in EVALUATION_PARTS)
RESULT_TYPES = {part.name: part.result_type for part in EVALUATION_PARTS}


def get_part(name: str) -> EvaluationPart:
    for part in EVALUATION_PARTS:
        if part.name == name:
            return part
    raise ValueError(f"`part` must be one of {list(PARTS)}, got {name!r}.")


def check_data_files(parts: Iterable[str], data_dir: str | os.PathLike | None) -> None:
    """Raise a FileNotFoundError naming the first missing data file that one of `parts` reads."""
    for name in parts:
        for file in get_part(name).data_files:
            dataset_file(data_dir, *file)


def _call(function, model, data_dir, settings: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Call a part with the settings its signature takes; report the ones it does not take."""
    parameters = inspect.signature(function).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    used = {key: value for key, value in settings.items() if takes_any or key in parameters}
    ignored = sorted(set(settings) - set(used))
    return function(model, data_dir, **used), {"settings": used, "ignored_settings": ignored}


def word_reading(model: Any) -> str | None:
    """The attention a model's words are read with: its own (causal for an unadapted base), never hybrid."""
    attention = getattr(getattr(model, "decoder", None), "attention_mode", None)
    return "bidirectional" if attention == "hybrid" else attention


def run_part(
    name: str,
    model: Any,
    spec: Any,
    data_dir: str | os.PathLike | None,
    settings: dict[str, Any],
    *,
    seed: int,
    mteb_folder: str | os.PathLike | None = None,
    sts_variants: bool = False,
) -> PartOutcome:
    """Run one part for one model (a `ModelSpec` says whether it is a plain encoder)."""
    part = get_part(name)
    if spec.kind == "encoder" and part.needs_lm_head:
        return PartOutcome("n/a", reason="plain encoder without an LM head")
    function = part.load_function()
    if function is None:
        return PartOutcome("not available", reason=f"the {name} evaluation module is not installed")
    supplied = {
        "output_folder": mteb_folder,
        "variants": list(STS_VARIANTS) if sts_variants and spec.kind == "magnet" else [],
        "attention_mode": word_reading(model),
    }
    settings = dict(settings, seed=seed, **{option: supplied[option] for option in part.suite_options})
    started = time.perf_counter()
    results: dict[str, Any] = {}
    per_example: dict[str, Any] = {}
    for key, run_settings in part.runs or (("", {}),):
        results[key], used = _call(function, model, data_dir, {**settings, **run_settings})
        for score, record in results[key].pop("per_example", {}).items():  # kept beside results.json
            per_example["/".join(filter(None, (name, key, score)))] = record
    for key in (*UNRECORDED_SETTINGS, *(key for _, run_settings in part.runs for key in run_settings)):
        used["settings"].pop(key, None)  # per-call values are in the result keys
    return PartOutcome(
        "ok",
        seconds=round(time.perf_counter() - started, 1),
        settings=used["settings"],
        ignored_settings=used["ignored_settings"],
        result=part.result_type.from_dict(jsonable(results if part.runs else results[""])),
        per_example=per_example or None,
    )
