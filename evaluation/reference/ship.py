"""Copy a trained adapter into the package as the pretrained model `magnet-smollm2-135m`.

    python evaluation/reference/ship.py WORK/adapters/step-N --trainer-state WORK/model-checkpoints/checkpoint-M \
        --command "run.py --profile cpu ..."

The adapter is stored in bfloat16 (half the size; the merged model is computed in float32), its config names
the embedded base instead of a local path, and the training log is cut at the adapter's step and records the
run's command (its overrides of config.json).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from run import SNAPSHOT_RECORD
from safetensors.torch import load_file, save_file

from magnet_st.pretrained import ADAPTER_FILE, PRETRAINED_MODELS

CONFIG = Path(__file__).with_name("config.json")


def ship(adapter: Path, trainer_state: Path | None, name: str, profile: str, command: str | None = None) -> Path:
    spec = PRETRAINED_MODELS[name]
    target = spec.folder
    target.mkdir(parents=True, exist_ok=True)
    weights = {key: value.to(torch.bfloat16) for key, value in load_file(adapter / ADAPTER_FILE).items()}
    save_file(weights, target / ADAPTER_FILE, metadata={"format": "pt"})
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = spec.base
    (target / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")
    steps = int(adapter.name.split("-")[1]) if adapter.name.startswith("step-") else None
    settings = json.loads(CONFIG.read_text())
    log = {"base": spec.base, "steps": steps, "profile": profile, "settings": settings}
    if command:  # the run's overrides of the settings, as given to run.py
        log["command"] = command
    snapshot = adapter / SNAPSHOT_RECORD
    if snapshot.is_file():  # the run's own TrainConfig and precision, kept beside the adapter by run.py
        record = json.loads(snapshot.read_text())
        # The run's folders as run.py lays them out under WORK: the training machine's paths stay out of the package.
        folders = {key: f"WORK/{Path(record['config'][key]).name}" for key in ("data", "output_dir")}
        log["config"], log["precision"] = {**record["config"], **folders}, record["precision"]
    if trainer_state is not None:
        state = json.loads((trainer_state / "trainer_state.json").read_text())
        log["log_history"] = [e for e in state["log_history"] if steps is None or e.get("step", 0) <= steps]
    (target / "training_log.json").write_text(json.dumps(log, indent=2) + "\n")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("adapter", type=Path, help="an adapter folder written by run.py (adapters/step-N or final)")
    parser.add_argument("--trainer-state", type=Path, default=None, help="a checkpoint folder with trainer_state.json")
    parser.add_argument("--name", default="magnet-smollm2-135m", choices=sorted(PRETRAINED_MODELS))
    parser.add_argument("--profile", default="cpu", help="the run.py profile the adapter was trained with")
    parser.add_argument("--command", default=None, help="the run.py command that trained the adapter, for the log")
    args = parser.parse_args(argv)
    print(ship(args.adapter, args.trainer_state, args.name, args.profile, args.command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
