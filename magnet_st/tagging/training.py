"""Training a token head: a linear probe on a frozen encoder (cached features) or LoRA fine-tuning (transformers Trainer).

The probe follows LLM2Vec's word-level protocol, which MAGNET reuses: dropout 0.1, one linear layer,
AdamW at lr 5e-4, up to 4000 steps of 32 sentences. The encoder is frozen, so word states are computed
once and the head trains on the cache.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig
from tqdm.auto import tqdm

from magnet_st.data.conll import check_tagged
from magnet_st.lora import add_lora, default_lora_config, has_lora
from magnet_st.tagging.alignment import WordTokenizer, check_alignment
from magnet_st.tagging.inference import as_sentences, encode_words, find_head
from magnet_st.tagging.metrics import tagging_scores


def label_set(tags: Sequence[Sequence[str]], scheme: str = "IOB2") -> list[str]:
    """Sorted labels seen in `tags`; for IOB2, "O" first and B-/I- of every type, so unseen I- tags still exist."""
    seen = {tag for sentence in tags for tag in sentence}
    if scheme != "IOB2":
        return sorted(seen)
    bad = sorted(tag for tag in seen if tag != "O" and tag[:2] not in ("B-", "I-"))
    if bad:
        raise ValueError(f"Tags {bad[:5]} are not IOB2 ('O', 'B-X', 'I-X'); pass scheme='none' for per-word tags.")
    types = sorted({tag[2:] for tag in seen if tag != "O"})
    return ["O"] + [f"{prefix}-{kind}" for kind in types for prefix in ("B", "I")]


def _label_ids(head, tags: Sequence[Sequence[str]], argument: str) -> list[list[int]]:
    return [head.label_ids(list(sentence), f" in `{argument}` sentence {index}") for index, sentence in enumerate(tags)]


def _new_head(model, words, tags, eval_words, eval_tags, *, labels, scheme, alignment, **head_options):
    """Check the data, build a head for it, and turn the tags into label ids (unknown tags fail here, early)."""
    from magnet_st.modules.token_head import TokenClassificationHead

    check_tagged(words, tags, "tags")
    if eval_words is not None:
        check_tagged(eval_words, eval_tags, "eval_tags")
    check_alignment(alignment)
    labels = list(labels) if labels is not None else label_set(tags, scheme)
    head = TokenClassificationHead(
        model.decoder.get_embedding_dimension(), labels, alignment=alignment, scheme=scheme, **head_options
    )
    head = head.to(next(model.decoder.parameters()).device)
    train_ids = _label_ids(head, tags, "tags")
    eval_ids = _label_ids(head, eval_tags, "eval_tags") if eval_tags is not None else None
    return head, train_ids, eval_ids


def attach_head(model, head) -> None:
    """Put `head` on the model, replacing an earlier token head."""
    from magnet_st.modules.token_head import TokenClassificationHead

    for index, module in enumerate(model):
        if isinstance(module, TokenClassificationHead):
            model[index] = head
            return
    model.append(head)


@dataclass
class ProbeResult:
    """Outcome of `train_probe`: scores on the evaluation set (if any), the settings and the loss curve."""

    scores: dict[str, float] | None
    settings: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)


def _flatten(features: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[int]]:
    lengths = [len(sentence) for sentence in features]
    return torch.cat(list(features)), lengths


@torch.no_grad()
def evaluate_cached(head, features: Sequence[torch.Tensor], tags: Sequence[Sequence[str]]) -> dict[str, float]:
    """Scores of `head` on cached word states against gold tags."""
    was_training = head.training
    head.eval()
    states, lengths = _flatten(features)
    predicted_ids = head.classifier(states.to(head.linear.weight.device)).argmax(-1).cpu().split(lengths)
    head.train(was_training)
    predicted = [[head.labels[i] for i in ids.tolist()] for ids in predicted_ids]
    return tagging_scores(tags, predicted, head.scheme)


def train_probe_on_features(
    head,
    features: Sequence[torch.Tensor],
    tags: Sequence[Sequence[str]],
    *,
    eval_features: Sequence[torch.Tensor] | None = None,
    eval_tags: Sequence[Sequence[str]] | None = None,
    steps: int = 4000,
    learning_rate: float = 5e-4,
    batch_size: int = 32,
    eval_every: int = 1000,
    output_dir: str | os.PathLike | None = None,
    seed: int = 0,
    show_progress_bar: bool = True,
) -> list[dict[str, float]]:
    """Train the head's dropout + linear layer on cached word states; returns the history (loss, eval scores).

    Each step draws `batch_size` sentences. With `output_dir`, the head is checkpointed at every
    evaluation (`checkpoint-STEP/`) and the best one (by F1, or accuracy without IOB2) is kept as `best/`.
    """
    if len(features) != len(tags):
        raise ValueError(f"Got {len(features)} feature sequences but {len(tags)} tag sequences.")
    label_ids = _label_ids(head, tags, "tags")
    for index, (sentence, ids) in enumerate(zip(features, label_ids)):
        if len(sentence) != len(ids):
            raise ValueError(f"Sentence {index}: {len(sentence)} word states but {len(ids)} tags.")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    device = head.linear.weight.device
    optimizer = torch.optim.AdamW(head.parameters(), lr=learning_rate)
    history, best = [], -math.inf
    metric = "f1" if head.scheme == "IOB2" else "accuracy"
    head.train()
    progress = tqdm(range(1, steps + 1), desc="Probe", disable=not show_progress_bar)
    for step in progress:
        picked = torch.randint(len(features), (batch_size,), generator=generator).tolist()
        states = torch.cat([features[i] for i in picked]).to(device)
        targets = torch.tensor([label for i in picked for label in label_ids[i]], device=device)
        loss = torch.nn.functional.cross_entropy(head.classifier(states), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 50 == 0 or step == steps:
            progress.set_postfix(loss=f"{loss.item():.4f}")
        if eval_features is not None and (step % eval_every == 0 or step == steps):
            scores = evaluate_cached(head, eval_features, eval_tags)
            history.append({"step": step, "loss": loss.item(), **scores})
            if output_dir is not None:
                checkpoint = Path(output_dir) / f"checkpoint-{step}"
                checkpoint.mkdir(parents=True, exist_ok=True)
                head.save(str(checkpoint))
                if scores[metric] > best:
                    best = scores[metric]
                    (Path(output_dir) / "best").mkdir(parents=True, exist_ok=True)
                    head.save(str(Path(output_dir) / "best"))
                (Path(output_dir) / "history.json").write_text(json.dumps(history, indent=2))
    head.eval()
    return history


def train_probe(
    model,
    words: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]],
    *,
    eval_words: Sequence[Sequence[str]] | None = None,
    eval_tags: Sequence[Sequence[str]] | None = None,
    task: str | None = None,
    scheme: str = "IOB2",
    labels: Sequence[str] | None = None,
    alignment: str = "previous",
    attention_mode: str = "bidirectional",
    prefix_token: str = "bos",
    dropout: float = 0.1,
    steps: int = 4000,
    learning_rate: float = 5e-4,
    batch_size: int = 32,
    encode_batch_size: int = 16,
    output_dir: str | os.PathLike | None = None,
    seed: int = 0,
    show_progress_bar: bool = True,
) -> ProbeResult:
    """Linear probe on the frozen encoder: word states are computed once, then the head trains on them.

    The trained head is attached to `model` (replacing an earlier one), so `model.save()` keeps it and
    `magnet_st.tagging.predict` uses it. `attention_mode="causal"` probes an unadapted base model as is.
    """
    head, _, _ = _new_head(  # before the slow encoding, so bad tags fail fast
        model,
        words,
        tags,
        eval_words,
        eval_tags,
        labels=labels,
        scheme=scheme,
        alignment=alignment,
        dropout=dropout,
        prefix_token=prefix_token,
        attention_mode=attention_mode,
        task=task,
    )
    encode = dict(
        alignments=(alignment,),
        attention_mode=attention_mode,
        prefix_token=prefix_token,
        batch_size=encode_batch_size,
        show_progress_bar=show_progress_bar,
    )
    features = encode_words(model, [list(sentence) for sentence in words], **encode)[alignment]
    eval_features = None
    if eval_words is not None:
        eval_features = encode_words(model, [list(sentence) for sentence in eval_words], **encode)[alignment]
    history = train_probe_on_features(
        head,
        features,
        tags,
        eval_features=eval_features,
        eval_tags=eval_tags,
        steps=steps,
        learning_rate=learning_rate,
        batch_size=batch_size,
        eval_every=max(1, steps // 4),
        output_dir=output_dir,
        seed=seed,
        show_progress_bar=show_progress_bar,
    )
    attach_head(model, head)
    scores = {key: value for key, value in history[-1].items() if key != "step"} if history else None
    settings = dict(
        mode="linear_probe",
        task=task,
        alignment=alignment,
        attention_mode=attention_mode,
        prefix_token=prefix_token,
        dropout=dropout,
        steps=steps,
        learning_rate=learning_rate,
        batch_size=batch_size,
        train_sentences=len(words),
        eval_sentences=len(eval_words) if eval_words is not None else 0,
        seed=seed,
    )
    return ProbeResult(scores=scores, settings=settings, history=history)


# -- LoRA fine-tuning through transformers' Trainer ---------------------------------------------------


class _TaggerForTraining(torch.nn.Module):
    """Decoder + head as one module for the Trainer: returns the word-level cross-entropy and logits."""

    def __init__(self, decoder, head, attention_mode: str) -> None:
        super().__init__()
        self.decoder, self.head, self.attention_mode = decoder, head, attention_mode

    def forward(self, input_ids, attention_mask, word_token_mask, labels=None):
        features = {"input_ids": input_ids, "attention_mask": attention_mask, "word_token_mask": word_token_mask}
        features = self.head(self.decoder.forward(features, attention_mode=self.attention_mode))
        logits = features["word_logits"]
        output = {"logits": logits}
        if labels is not None:
            output["loss"] = torch.nn.functional.cross_entropy(
                logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100
            )
        return output


class _WordCollator:
    """Segments of labelled sentences -> decoder features plus word labels (-100 where a word is read elsewhere)."""

    def __init__(self, word_tokenizer: WordTokenizer, sentences, label_ids) -> None:
        self.word_tokenizer, self.sentences, self.label_ids = word_tokenizer, sentences, label_ids

    def __call__(self, segments):
        features = self.word_tokenizer.features(self.sentences, segments)
        labels = torch.full(features["word_token_mask"].shape[:2], -100, dtype=torch.long)
        for row, segment in enumerate(segments):
            own = self.label_ids[segment.sentence][segment.own_first : segment.own_last]
            start = segment.own_first - segment.first
            labels[row, start : start + len(own)] = torch.tensor(own)
        features["labels"] = labels
        return features


def _trainer_class():
    from transformers import Trainer

    class TaggingTrainer(Trainer):
        """Saves each checkpoint as a loadable MAGNET tagger (LoRA merged into a copy) under `model/`."""

        tagger = None

        def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
            output_dir = output_dir or self.args.output_dir
            self.tagger.save(os.path.join(output_dir, "model"))

    return TaggingTrainer


def finetune_lora(
    model,
    words: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]],
    output_dir: str | os.PathLike,
    *,
    eval_words: Sequence[Sequence[str]] | None = None,
    eval_tags: Sequence[Sequence[str]] | None = None,
    task: str | None = None,
    scheme: str = "IOB2",
    labels: Sequence[str] | None = None,
    alignment: str = "previous",
    attention_mode: str = "bidirectional",
    prefix_token: str = "bos",
    dropout: float = 0.1,
    lora: LoraConfig | None = None,
    max_steps: int = 500,
    learning_rate: float = 2e-4,
    batch_size: int = 8,
    eval_steps: int | None = None,
    save_steps: int | None = None,
    seed: int = 0,
    show_progress_bar: bool = True,
    **training_args: Any,
) -> dict[str, Any]:
    """Fine-tune the decoder with LoRA and a fresh token head through transformers' `Trainer`.

    Progress bars, periodic evaluation (entity F1 / accuracy via seqeval) and checkpoints come from the
    Trainer; each checkpoint folder holds `model/`, a MAGNET model with the LoRA weights merged. The
    adapter stays attached to the live `model` (saving merges it into a copy). Extra keyword arguments go
    to `TrainingArguments`. Returns the train metrics and the last evaluation scores.
    """
    from transformers import EvalPrediction, TrainingArguments

    head, train_ids, eval_ids = _new_head(
        model,
        words,
        tags,
        eval_words,
        eval_tags,
        labels=labels,
        scheme=scheme,
        alignment=alignment,
        dropout=dropout,
        prefix_token=prefix_token,
        attention_mode=attention_mode,
        task=task,
    )
    labels = head.labels

    decoder = model.decoder
    if not has_lora(model):
        add_lora(model, lora or default_lora_config())
    attach_head(model, head)

    word_tokenizer = WordTokenizer(decoder.tokenizer, decoder.max_seq_length, prefix_token)
    train_sentences = as_sentences([list(sentence) for sentence in words], "words")
    train_segments = word_tokenizer.segments(train_sentences)
    eval_dataset, collate_eval = None, None
    if eval_words is not None:
        eval_sentences = as_sentences([list(sentence) for sentence in eval_words], "eval_words")
        eval_dataset = word_tokenizer.segments(eval_sentences)
        collate_eval = _WordCollator(word_tokenizer, eval_sentences, eval_ids)

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        logits, label_rows = prediction.predictions, prediction.label_ids
        predicted_rows = logits.argmax(-1)
        gold, predicted = [], []
        for gold_row, predicted_row in zip(label_rows, predicted_rows):
            keep = gold_row != -100
            gold.append([labels[i] for i in gold_row[keep]])
            predicted.append([labels[i] for i in predicted_row[keep]])
        scores = tagging_scores(gold, predicted, scheme)
        scores.pop("words")
        return scores

    interval = eval_steps or max(1, max_steps // 4)
    args = TrainingArguments(
        output_dir=str(output_dir),
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        learning_rate=learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=min(100, max_steps // 10),
        logging_steps=max(1, min(50, interval)),
        eval_strategy="steps" if eval_dataset is not None else "no",
        eval_steps=interval,
        save_strategy="steps",
        save_steps=save_steps or interval,
        save_total_limit=2,
        remove_unused_columns=False,
        report_to=[],
        seed=seed,
        disable_tqdm=not show_progress_bar,
        use_cpu=not torch.cuda.is_available(),
        **training_args,
    )
    random.seed(seed)
    trainer_class = _trainer_class()
    trainer = trainer_class(
        model=_TaggerForTraining(decoder, head, attention_mode),
        args=args,
        train_dataset=train_segments,
        eval_dataset=eval_dataset,
        data_collator=_WordCollator(word_tokenizer, train_sentences, train_ids),
        compute_metrics=compute_metrics if eval_dataset is not None else None,
    )
    trainer.tagger = model
    if collate_eval is not None:
        # Evaluation batches need the evaluation sentences; the Trainer has one collator, so swap it around eval.
        original_evaluate = trainer.evaluate

        def evaluate(*args: Any, **kwargs: Any):
            train_collator, trainer.data_collator = trainer.data_collator, collate_eval
            try:
                return original_evaluate(*args, **kwargs)
            finally:
                trainer.data_collator = train_collator

        trainer.evaluate = evaluate
    train_output = trainer.train()
    model.eval()
    result = {"train": train_output.metrics, "log_history": trainer.state.log_history}
    if eval_dataset is not None:
        result["eval"] = trainer.evaluate()
    return result


def evaluate_tagger(
    model,
    words: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]],
    *,
    batch_size: int = 16,
    attention_mode: str | None = None,
    show_progress_bar: bool = False,
) -> dict[str, float]:
    """Scores of the model's token head on labelled sentences (entity P/R/F1 for IOB2 heads, accuracy always)."""
    from magnet_st.tagging.inference import predict_logits

    check_tagged(words, tags, "tags")
    head = find_head(model)
    _label_ids(head, tags, "tags")
    _, logits = predict_logits(
        model,
        [list(sentence) for sentence in words],
        batch_size=batch_size,
        attention_mode=attention_mode,
        show_progress_bar=show_progress_bar,
    )
    predicted = [[head.labels[i] for i in sentence.argmax(-1).tolist()] for sentence in logits]
    return tagging_scores(tags, predicted, head.scheme)
