"""The evaluation suite: every claim of the paper, for one or several models, in one reproducible run.

The parts it runs are declared in `magnet_st.evaluation.parts`; each also runs alone through its own
function. Every data file the selected parts read is checked before the first part runs.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import platform
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from magnet_st.data.paths import data_dir as resolve_data_dir
from magnet_st.encoding_variants import encoding_settings
from magnet_st.evaluation.compare import save_per_example
from magnet_st.evaluation.parts import PARTS, check_data_files, get_part, run_part
from magnet_st.evaluation.results import PartOutcome, jsonable
from magnet_st.evaluation.sizes import SIZES
from magnet_st.evaluation.specs import ModelSpec, load_spec
from magnet_st.folders import results_folder


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
    """What one `magnet-st eval` run does; stored in results.json so the run can be repeated.

    `resume=True` keeps the parts an earlier run of the same settings recorded in `out_dir/results.json`
    and runs only the missing ones.
    """

    models: list[str]
    suite: str = "smoke"
    parts: list[str] = field(default_factory=lambda: list(PARTS))
    data_dir: str | None = None
    out_dir: str = "eval-results"
    seed: int = 0
    sts_variants: bool = False
    max_seq_length: int | None = None
    resume: bool = False

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

    out = results_folder(config.out_dir, "out_dir (--out)")
    data_root = resolve_data_dir(config.data_dir)
    specs = [ModelSpec.parse(text) for text in config.models]
    labels = [spec.label for spec in specs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"Two models share a label in {labels}; give each model once.")
    lm_models = any(spec.kind != "encoder" for spec in specs)
    check_data_files([part for part in config.parts if lm_models or not get_part(part).needs_lm_head], data_root)
    sizes = copy.deepcopy(sizes or SIZES[config.suite])
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
    finished = _finished_parts(out / "results.json", results) if config.resume else {}
    for spec in specs:
        entry = finished.get(spec.label, {"parts": {}})
        missing = [part for part in config.parts if part not in entry["parts"]]
        results["models"].append(entry)
        if not missing:
            continue
        random.seed(config.seed)
        torch.manual_seed(config.seed)
        model = load_spec(spec, scratch=out, max_seq_length=config.max_seq_length)
        entry.update({**asdict(spec), "encoding": jsonable(encoding_settings(model)), "parts": entry["parts"]})
        for part in missing:
            torch.manual_seed(config.seed)
            outcome = run_part(
                part,
                model,
                spec,
                data_root,
                sizes.get(part, {}),
                seed=config.seed,
                mteb_folder=out / "mteb" / _folder_name(spec.label),
                sts_variants=config.sts_variants,
            )
            entry["parts"][part] = outcome.to_dict()
            save_per_example(out, spec.label, outcome.per_example or {})  # beside results.json, for comparisons
            _write_json(out / "results.json", results)  # after each part: a later failure keeps it
        del model
    write_markdown(results, out / "results.md")
    results["plots"] = [str(path.name) for path in write_plots(results, out)]
    _write_json(out / "results.json", results)
    return results


# Settings that must match for a resumed run to reuse an earlier run's parts.
RESUME_KEYS = ("suite", "data_dir", "sizes")
RESUME_CONFIG_KEYS = ("seed", "sts_variants", "max_seq_length")


def _finished_parts(path: Path, results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The model entries (by label) of an earlier run at `path` whose settings match `results`; {} without one."""
    if not path.is_file():
        return {}
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"Cannot resume from {str(path)!r}: it is not valid JSON ({error}).") from None
    _check_parts(earlier, path)
    differing = [key for key in RESUME_KEYS if earlier.get(key) != jsonable(results[key])]
    differing += [
        f"config.{key}" for key in RESUME_CONFIG_KEYS if earlier.get("config", {}).get(key) != results["config"][key]
    ]
    if differing:
        raise ValueError(
            f"Cannot resume from {str(path)!r}: it was run with other settings ({', '.join(differing)}); "
            "rerun without --resume or choose another --out."
        )
    return {model["label"]: model for model in earlier["models"]}


def merge_results(folders: list[str | os.PathLike], out_dir: str | os.PathLike) -> dict[str, Any]:
    """One table from several runs of the same suite (e.g. one process per model, run side by side).

    A model evaluated in several runs keeps the parts of each; a part run again replaces the earlier
    result (a later folder wins), so one part can be rerun after a change.
    """
    from magnet_st.evaluation.report import write_markdown, write_plots

    out = results_folder(out_dir, "out_dir (--out)")
    if len({Path(folder).resolve() for folder in folders}) != len(folders):
        raise ValueError(f"A folder is given twice in {[str(folder) for folder in folders]}.")
    runs = []
    for folder in folders:
        path = Path(folder) / "results.json"
        if not path.is_file():
            raise FileNotFoundError(f"Missing results file {str(path)!r} (run `magnet-st eval ... --out {folder}`).")
        runs.append(json.loads(path.read_text(encoding="utf-8")))
        _check_parts(runs[-1], path)
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
    out.mkdir(parents=True, exist_ok=True)
    write_markdown(merged, out / "results.md")
    merged["plots"] = [str(path.name) for path in write_plots(merged, out)]
    _write_json(out / "results.json", merged)
    return merged


def _check_parts(results: dict[str, Any], path: Path) -> None:
    """Every part entry of a results file must read into its part's result type."""
    for model in results["models"]:
        for part, entry in model["parts"].items():
            try:
                PartOutcome.from_dict(entry, get_part(part).result_type)
            except (TypeError, ValueError) as error:
                raise ValueError(f"{str(path)!r}, model {model['label']!r}, part {part!r}: {error}") from None


def _folder_name(label: str) -> str:
    return "".join(character if character.isalnum() or character in "._-" else "_" for character in label)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(jsonable(data), indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)
