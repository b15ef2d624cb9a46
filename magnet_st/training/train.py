"""`train`: adapt a decoder with a recipe through sentence-transformers' own trainer."""

from __future__ import annotations

import json
import logging
import os
import shutil
from contextlib import nullcontext
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

from sentence_transformers import SentenceTransformerTrainingArguments
from transformers import set_seed
from transformers.modeling_layers import GradientCheckpointingLayer

from magnet_st.data.texts import drop_short_texts, load_texts
from magnet_st.folders import check_model_target, expand_folder
from magnet_st.lora import add_lora, default_lora_config, has_lora, merge_lora
from magnet_st.lora_dropout import fuse_lora_dropout
from magnet_st.losses import MagnetLoss
from magnet_st.model import MagnetSentenceTransformer, load_model
from magnet_st.precision import cpu_has_native_bf16, training_precision
from magnet_st.train_config import TrainConfig
from magnet_st.training.checkpoints import newest_complete_checkpoint
from magnet_st.training.lock import RunLock
from magnet_st.training.memory import return_freed_memory_eagerly
from magnet_st.training.recipes import get_recipe
from magnet_st.training.trainer import MagnetTrainer

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)
MIN_TOKENS = 3  # one context token, one span token, and room for a target
PRECISION_RECORD = "precision.json"  # in the checkpoint folder: what "auto" chose when the run began


def _check_folders(config: TrainConfig) -> None:
    output = expand_folder(config.output_dir, "output_dir")
    has_checkpoints = config.checkpoint_dir().is_dir() and any(config.checkpoint_dir().glob("checkpoint-*"))
    if config.resume and newest_complete_checkpoint(config.checkpoint_dir())[0] is None:
        raise FileNotFoundError(f"`resume` found no complete checkpoint in {str(config.checkpoint_dir())!r}.")
    if output.exists() and any(output.iterdir()) and not (config.overwrite or config.resume):
        raise FileExistsError(
            f"Output folder {str(output)!r} exists and is not empty; pass --overwrite to write the model into it (its model files are replaced, other files stay)."
        )
    if config.resume:
        check_model_target(output, config.overwrite)  # refused now, not after the training
    if has_checkpoints and not (config.resume or config.overwrite):
        raise FileExistsError(
            f"{str(config.checkpoint_dir())!r} holds checkpoints of an unfinished run: pass --resume to continue it "
            "or --overwrite to start over."
        )


def run_precision(config: TrainConfig, device: torch.device) -> str:
    """The run's precision; a resumed "auto" run keeps the one it began with, even on another machine.

    "auto" times bf16 on the CPU it runs on, so a run resumed elsewhere (or on a busier machine) could switch
    precision halfway. The choice is recorded beside the checkpoints and read back on resume, except that
    bf16 is never kept on a CPU that would emulate it.
    """
    record = config.checkpoint_dir() / PRECISION_RECORD
    chosen = None
    if config.precision == "auto" and config.resume and record.is_file():
        try:
            chosen = json.loads(record.read_text())["precision"]
        except (ValueError, KeyError):
            logger.warning("Unreadable %s: the resumed run chooses its precision again.", record)
        if chosen == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
            logger.warning("This run began in bf16, but this CPU has no native bf16: it goes on in fp32.")
            chosen = "fp32"
    if chosen not in ("bf16", "fp32"):
        chosen = training_precision(device, config.precision)
    record.parent.mkdir(parents=True, exist_ok=True)
    temporary = record.with_suffix(".json.tmp")  # a crash while writing leaves the earlier record whole
    temporary.write_text(json.dumps({"precision": chosen, "requested": config.precision}) + "\n")
    temporary.replace(record)
    return chosen


def build_trainer(config: TrainConfig, callbacks: list | None = None) -> MagnetTrainer:
    """Model, data, loss and trainer for `config` (the run is `trainer.train()`)."""
    _check_folders(config)
    recipe = get_recipe(config.recipe).with_objectives(config.objectives)
    recipe = recipe.with_weights(config.mntp_weight, config.sscl_weight, config.msg_weight)
    if config.sentence_span_rate is not None and not recipe.views.max_spans:
        raise ValueError(f"`sentence_span_rate` needs a recipe whose views have spans; {config.recipe!r} has none.")
    dataset = load_texts(
        config.data,
        text_column=config.text_column,
        positive_column=config.positive_column,
        max_texts=config.max_texts,
        drop_cut_last_line=config.drop_cut_last_line,
    )
    model = load_model(config.base, pooling=recipe.pooling)
    # Texts are cut to `max_seq_length` for training only; the saved model keeps the base's encoding length.
    export_max_seq_length = model.decoder.max_seq_length
    model.decoder.max_seq_length = config.max_seq_length
    dataset = drop_short_texts(dataset, model.decoder.tokenizer, MIN_TOKENS)
    if config.lora:
        set_seed(config.seed)  # LoRA's random init: the same run twice gives the same model
        add_lora(model, default_lora_config(r=config.lora_r, dropout=config.lora_dropout))
        if model.device.type == "cpu":  # a GPU keeps peft's one-kernel dropout: memory is not its limit
            fuse_lora_dropout(model.decoder.model)
    if config.return_freed_memory:
        return_freed_memory_eagerly()
    first = recipe.weights_at(0.0)
    views = recipe.views
    if config.sentence_span_rate is not None:
        views = replace(views, sentence_span_rate=config.sentence_span_rate)
    loss = MagnetLoss(
        model,
        mntp_weight=first.mntp,
        sscl_weight=first.sscl,
        msg_weight=first.msg,
        views=views,
        dropout_scope=config.dropout_scope,
    )
    if config.gradient_checkpointing:
        model.decoder.causal_lm.activation_checkpointing_enable(
            {"use_reentrant": False, "context_fn": loss.checkpoint_context}
        )
        if config.checkpoint_every > 1:  # the other layers keep their activations: less recompute
            layers = [m for m in model.decoder.causal_lm.modules() if isinstance(m, GradientCheckpointingLayer)]
            for index, layer in enumerate(layers):
                layer.gradient_checkpointing = index % config.checkpoint_every == 0
        if config.lora:
            model.decoder.causal_lm.enable_input_require_grads()
    if any(stage.sscl for stage in recipe.stages) and config.batch_size < 2:
        raise ValueError("`batch_size` must be at least 2 when the recipe uses the contrastive objective.")
    if len(dataset) < config.batch_size:
        raise ValueError(f"{len(dataset)} usable texts are fewer than one batch of {config.batch_size}.")
    args = SentenceTransformerTrainingArguments(
        output_dir=str(config.checkpoint_dir()),
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=int(config.warmup_ratio * config.max_steps),
        logging_steps=config.logging_steps,
        save_steps=config.save_steps,
        save_total_limit=2,
        seed=config.seed,
        data_seed=config.seed,
        bf16=run_precision(config, model.device) == "bf16",
        use_cpu=model.device.type == "cpu",  # the Trainer refuses bf16 on a CPU unless told it is one
        dataloader_pin_memory=model.device.type == "cuda",  # pinning helps only copies to a GPU
        dataloader_drop_last=True,  # a batch of one has no contrastive negatives
        report_to="none",
        disable_tqdm=False,
    )
    return MagnetTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        loss=loss,
        recipe=recipe,
        export_max_seq_length=export_max_seq_length,
        callbacks=callbacks,
    )


def train(config: TrainConfig, callbacks: list | None = None) -> MagnetSentenceTransformer:
    """Run a training and save the adapted model (LoRA merged) to `config.output_dir`.

    The output folder is locked for the run (`training.lock.RunLock`): a second run on it is refused.
    """
    first_process = int(os.environ.get("RANK", "0")) == 0  # torchrun: the other processes neither lock nor save
    with RunLock(config.output_dir) if first_process else nullcontext():
        if config.overwrite and not config.resume and first_process:
            shutil.rmtree(config.checkpoint_dir(), ignore_errors=True)
        trainer = build_trainer(config, callbacks)
        trainer.train(resume_from_checkpoint=True if config.resume else None)
        # Mixed precision wraps forward in autocast; unwrapping gives back the full-precision model that is saved.
        model: MagnetSentenceTransformer = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
        if has_lora(model):
            merge_lora(model)  # the exported model is a plain decoder; checkpoints kept the adapter
        model.decoder.max_seq_length = trainer.export_max_seq_length
        if trainer.is_world_process_zero():
            _save_output(config, trainer, model)
    return model


def _save_output(config: TrainConfig, trainer: MagnetTrainer, model: MagnetSentenceTransformer) -> None:
    model.save(config.output_dir, overwrite=config.overwrite)
    log = {
        "config": asdict(config),
        "recipe": trainer.recipe.name,
        "precision": "bf16" if trainer.args.bf16 else "fp32",  # what "auto" chose on this machine
        "steps": trainer.state.global_step,  # a time budget may end the run before config.max_steps
        "log_history": trainer.state.log_history,
    }
    (Path(config.output_dir) / "training_log.json").write_text(json.dumps(log, indent=2, default=str))
    if not config.keep_checkpoints:
        shutil.rmtree(config.checkpoint_dir(), ignore_errors=True)


def loss_curves(log_history: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """Per-objective (step, value) series from a trainer log history.

    The trainer keeps logging an objective that a schedule switched off as exactly 0; those points are dropped.
    """
    curves: dict[str, list[tuple[int, float]]] = {}
    for entry in log_history:
        for name in ("loss", "mntp", "sscl", "msg"):
            if name in entry and "step" in entry and not (name != "loss" and entry[name] == 0.0):
                curves.setdefault(name, []).append((entry["step"], float(entry[name])))
    return curves


def smoothed(values: list[float], weight: float = 0.6) -> list[float]:
    """Exponential moving average with a bias correction (as TensorBoard smooths), so it starts at the data."""
    average, result = 0.0, []
    for count, value in enumerate(values, start=1):
        average = weight * average + (1 - weight) * value
        result.append(average / (1 - weight**count))
    return result


def plot_loss_curves(log_history: list[dict], path: str | Path, title: str = "MAGNET training") -> Path:
    """Write a PNG of the per-objective loss curves: raw logged points faint, an EMA-smoothed line over them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = loss_curves(log_history)
    figure, axis = plt.subplots(figsize=(7, 4))
    for name, points in curves.items():
        if name == "loss":
            continue
        steps, values = zip(*points)
        (line,) = axis.plot(steps, smoothed(list(values)), label=f"{name.upper()} (smoothed)")
        axis.plot(steps, values, "o", markersize=3, alpha=0.3, color=line.get_color())
    axis.set_xlabel("step")
    axis.set_ylabel("loss")
    axis.set_title(title)
    axis.legend()
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
