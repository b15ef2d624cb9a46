"""Typed results of the evaluation parts, one dataclass per part, in the shape results.json stores.

A score cell holding one score carries its 95% bootstrap interval as `interval: [low, high]` (on the score's
scale); a cell or result holding several scores carries `intervals: {score name: [low, high]}`.

Each part's function returns a plain dict (its JSON form); `from_dict` reads it into the part's result
type, checking every key, and `to_dict` writes the same dict back. The report reads cells by field.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar


class Record:
    """A dataclass that converts to and from its JSON dict.

    `json_names` maps fields whose JSON key differs from the field name; `nested` maps fields holding one
    record to its type, `nested_maps` fields holding a dict of records. Fields with a None default are
    optional: left out of the dict when None.
    """

    json_names: ClassVar[dict[str, str]] = {}
    nested: ClassVar[dict[str, type[Record]]] = {}
    nested_maps: ClassVar[dict[str, type[Record]]] = {}

    def to_dict(self) -> dict[str, Any]:
        data = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None and field.default is None:
                continue
            if field.name in self.nested:
                value = value.to_dict()
            elif field.name in self.nested_maps:
                value = {key: item.to_dict() for key, item in value.items()}
            data[self.json_names.get(field.name, field.name)] = value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        if not isinstance(data, dict):
            raise TypeError(f"{cls.__name__} is read from a dict, got {type(data).__name__}.")
        keys = {cls.json_names.get(field.name, field.name): field for field in fields(cls)}
        unknown = set(data) - set(keys)
        if unknown:
            raise ValueError(f"{cls.__name__} has no fields {sorted(unknown)} (known: {sorted(keys)}).")
        missing = [key for key, field in keys.items() if key not in data and field.default is not None]
        if missing:
            raise ValueError(f"{cls.__name__} lacks {missing}.")
        values = {}
        for key, field in keys.items():
            value = data.get(key)
            if value is not None and field.name in cls.nested:
                value = cls.nested[field.name].from_dict(value)
            elif value is not None and field.name in cls.nested_maps:
                value = {name: cls.nested_maps[field.name].from_dict(item) for name, item in value.items()}
            values[field.name] = value
        return cls(**values)


# -- sentence: STS and classification through mteb ------------------------------------------------------
@dataclass
class StsScore(Record):
    """Spearman x100 of cosine similarities against the gold scores of one STS set."""

    spearman: float
    pairs: int
    interval: list[float] | None = None


@dataclass
class ClassificationScore(Record):
    """Accuracy x100 of mteb's logistic-regression protocol on one classification set."""

    accuracy: float
    test_examples: int
    samples_per_label: int
    n_experiments: int


@dataclass
class SentenceResult(Record):
    """The sentence part: STS sets, classification sets and STS under other encodings (`variants`)."""

    encoding: dict[str, Any]
    sts: dict[str, StsScore]
    classification: dict[str, ClassificationScore]
    variants: dict[str, dict[str, float]]
    sts_average: float | None = None
    nested_maps: ClassVar = {"sts": StsScore, "classification": ClassificationScore}


# -- word: CoNLL-2003 linear probes -------------------------------------------------------------------
@dataclass
class WordProbeResult(Record):
    """Probe scores x100 per task (NER / chunk F1, POS accuracy), with every metric and setting.

    In JSON the task scores sit at the top level next to `details` and `settings`.
    """

    scores: dict[str, float]
    details: dict[str, Any]
    settings: dict[str, Any]
    intervals: dict[str, list[float] | None] | None = None

    def to_dict(self) -> dict[str, Any]:
        extra = {"intervals": self.intervals} if self.intervals is not None else {}
        return {**self.scores, "details": self.details, "settings": self.settings, **extra}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WordProbeResult:
        if not isinstance(data, dict) or "details" not in data or "settings" not in data:
            raise ValueError("WordProbeResult is read from a dict with task scores, `details` and `settings`.")
        named = ("details", "settings", "intervals")
        scores = {key: value for key, value in data.items() if key not in named}
        return cls(scores=scores, details=data["details"], settings=data["settings"], intervals=data.get("intervals"))


# -- infilling: span perplexity and automatic length --------------------------------------------------
@dataclass
class AutoLengthScore(Record):
    """Automatic infill lengths against the reference lengths, and the best constant guess's error."""

    examples: int
    max_auto_length: int
    mean_abs_error: float
    within_3_tokens: float
    constant_median_guess_mean_abs_error: float
    pearson_chosen_vs_true: float
    mean_chosen_length: float
    mean_true_length: float


@dataclass
class InfillScore(Record):
    """Span perplexity on one data set with both contexts (hybrid attention) or the left one (causal)."""

    dataset: str
    context: str
    attention: str
    examples: int
    span_tokens: int
    perplexity: float
    seed: int
    seconds: float
    auto_length: AutoLengthScore | None = None
    interval: list[float] | None = None
    spans_per_sentence: int | None = None
    nested: ClassVar = {"auto_length": AutoLengthScore}


@dataclass
class InfillingResult(Record):
    """One `InfillScore` per data set and context; in JSON keyed "<dataset>/<context>"."""

    runs: dict[str, InfillScore]

    def to_dict(self) -> dict[str, Any]:
        return {key: score.to_dict() for key, score in self.runs.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InfillingResult:
        if not isinstance(data, dict):
            raise TypeError(f"InfillingResult is read from a dict, got {type(data).__name__}.")
        return cls(runs={key: InfillScore.from_dict(score) for key, score in data.items()})

    def score(self, dataset: str, context: str) -> InfillScore | None:
        return self.runs.get(f"{dataset}/{context}")


# -- generation: repetition of continuations ----------------------------------------------------------
@dataclass
class RepetitionScore(Record):
    """rep-n and rep-sen of continuations of held-out prefixes, with one decoding setting."""

    prefixes: int
    prefix_tokens: int
    max_new_tokens: int
    decoding: str
    seed: int
    rep_2: float
    rep_3: float
    rep_4: float
    rep_sen: float
    mean_new_tokens: float
    seconds: float
    example: str
    intervals: dict[str, list[float] | None] | None = None
    json_names: ClassVar = {"rep_2": "rep-2", "rep_3": "rep-3", "rep_4": "rep-4", "rep_sen": "rep-sen"}


@dataclass
class GenerationResult(Record):
    """Repetition under greedy decoding and under nucleus sampling."""

    greedy: RepetitionScore | None = None
    nucleus: RepetitionScore | None = None
    nested: ClassVar = {"greedy": RepetitionScore, "nucleus": RepetitionScore}


# -- knowledge: LAMA ----------------------------------------------------------------------------------
@dataclass
class KnowledgeResult(Record):
    """LAMA precision@1 x100 per source (macro over relations), overall, and per relation."""

    precision_at_1: dict[str, float]
    micro_precision_at_1: float
    per_relation: dict[str, float]
    facts: dict[str, int]
    settings: dict[str, Any]
    examples: list[dict[str, str]]
    intervals: dict[str, list[float] | None] | None = None


# -- one part's entry in results.json -----------------------------------------------------------------
@dataclass
class PartOutcome:
    """How one part went for one model: "ok" with its result, or "n/a" / "not available" with a reason.

    `per_example` (records keyed "run/score", see `magnet_st.evaluation.bootstrap`) is kept beside
    results.json, in per_example.json; `to_dict` leaves it out.
    """

    status: str
    reason: str | None = None
    seconds: float | None = None
    settings: dict[str, Any] | None = None
    ignored_settings: list[str] | None = None
    result: Record | None = None
    per_example: dict[str, dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {key: getattr(self, key) for key in ("status", "reason", "seconds", "settings", "ignored_settings")}
        if self.result is not None:
            data["result"] = self.result.to_dict()
        return {key: value for key, value in data.items() if value is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any], result_type: type[Record]) -> PartOutcome:
        if not isinstance(data, dict) or "status" not in data:
            raise ValueError(f"A part's entry must be a dict with a `status`, got {data!r:.80}.")
        unknown = set(data) - {"status", "reason", "seconds", "settings", "ignored_settings", "result"}
        if unknown:
            raise ValueError(f"A part's entry has unknown keys {sorted(unknown)}.")
        result = data.get("result")
        return cls(**{**data, "result": result_type.from_dict(result) if result is not None else None})


def jsonable(value: Any) -> Any:
    """`value` with tuples as lists, dict keys as strings and numpy / torch scalars as Python numbers."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
