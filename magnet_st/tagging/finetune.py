"""LoRA fine-tuning of a tagger through transformers' Trainer: decoder adapters and a fresh head train together."""

from __future__ import annotations

import dataclasses
import os
import random
from collections.abc import Sequence
from typing import Any

import torch
from peft import LoraConfig
from transformers import EvalPrediction, Trainer, TrainingArguments

from magnet_st.lora import add_lora, default_lora_config, has_lora
from magnet_st.seeding import seeded
from magnet_st.tagging.alignment import Segment, WordTokenizer
from magnet_st.tagging.config import LORA_DEFAULTS, TaggerConfig
from magnet_st.tagging.inference import Sentence, as_sentences
from magnet_st.tagging.scores import tagging_scores
from magnet_st.tagging.tagger import attach_tagger, continuation_ids, find_tagger, new_tagger

IGNORE_INDEX = -100  # label of a word read from another window, and of padding words


class WordCollator:
    """Segments of labelled sentences -> decoder features plus word labels (-100 where a word is read elsewhere).

    With `continuation_ids` (label id -> label of a word's later sub-tokens, "label all tokens"), it also adds
    `token_labels` (B x T): the continuation label at every later sub-token of an owned word, -100 elsewhere.
    """

    def __init__(
        self,
        word_tokenizer: WordTokenizer,
        sentences: Sequence[Sentence],
        label_ids: Sequence[Sequence[int]],
        continuation_ids: Sequence[int] | None = None,
    ) -> None:
        self.word_tokenizer, self.sentences, self.label_ids = word_tokenizer, sentences, label_ids
        self.continuation_ids = continuation_ids

    def __call__(self, segments: Sequence[Segment]) -> dict[str, torch.Tensor]:
        features = self.word_tokenizer.features(self.sentences, segments)
        word_token_mask = features["word_token_mask"]  # (B, W, T)
        labels = torch.full(word_token_mask.shape[:2], IGNORE_INDEX, dtype=torch.long)  # (B, W)
        for row, segment in enumerate(segments):
            own = self.label_ids[segment.sentence][segment.own_first : segment.own_last]
            start = segment.own_first - segment.first
            labels[row, start : start + len(own)] = torch.tensor(own)
        features["labels"] = labels
        if self.continuation_ids is not None:
            later = word_token_mask & (word_token_mask.cumsum(-1) > 1)  # (B, W, T): a word's tokens after its first
            continuation = torch.tensor(self.continuation_ids)[labels.clamp(min=0)]  # (B, W)
            continuation[labels == IGNORE_INDEX] = IGNORE_INDEX
            # (B, T): each later sub-token takes its word's continuation label (max: -100 unless a word owns it)
            features["token_labels"] = torch.where(later, continuation[..., None], IGNORE_INDEX).amax(1)
        return features


class TaggerTrainer(Trainer):
    """transformers' Trainer over a MAGNET tagger: word-level cross-entropy through `model.forward`.

    `model` is the MagnetSentenceTransformer whose module list ends in `WordPooling` and a
    `TokenClassificationHead`. Evaluation scores words with seqeval (entity F1 / accuracy), and each
    checkpoint holds `model/`, a loadable MAGNET tagger (LoRA merged into a copy).
    """

    loss_is_scaled_for_ga = False  # the loss is a mean over words: let the Trainer divide by accumulation steps

    def __init__(self, model, args: TrainingArguments, *, attention_mode: str, **kwargs: Any) -> None:
        _, self.head = find_tagger(model)
        self.attention_mode = attention_mode
        if kwargs.get("eval_dataset") is not None:
            kwargs.setdefault("compute_metrics", self.word_scores)
        super().__init__(model=model, args=args, **kwargs)

    def compute_loss(self, model, inputs: dict[str, torch.Tensor], return_outputs: bool = False, **kwargs: Any):
        features = {key: value for key, value in inputs.items() if key not in ("labels", "token_labels")}
        outputs = model(features, attention_mode=self.attention_mode)
        logits = outputs[self.head.module_output_name]  # (B, W, labels)
        predicted, targets = logits.flatten(0, 1), inputs["labels"].flatten()
        if "token_labels" in inputs:  # later sub-tokens, labelled from their own states ("label all tokens")
            token_embeddings = outputs["token_embeddings"].to(self.head.linear.weight.dtype)  # (B, T, H)
            predicted = torch.cat([predicted, self.head.classifier(token_embeddings).flatten(0, 1)])
            targets = torch.cat([targets, inputs["token_labels"].flatten()])
        loss = torch.nn.functional.cross_entropy(predicted.float(), targets, ignore_index=IGNORE_INDEX)
        return (loss, {"loss": loss, "logits": logits}) if return_outputs else loss

    def word_scores(self, prediction: EvalPrediction) -> dict[str, float]:
        """seqeval scores of the words each evaluation window owns."""
        gold, predicted = [], []
        for gold_row, predicted_row in zip(prediction.label_ids, prediction.predictions.argmax(-1)):
            keep = gold_row != IGNORE_INDEX
            gold.append([self.head.labels[i] for i in gold_row[keep]])
            predicted.append([self.head.labels[i] for i in predicted_row[keep]])
        scores = tagging_scores(gold, predicted, self.head.scheme)
        scores.pop("words")
        return scores

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        self.model.save(os.path.join(output_dir or self.args.output_dir, "model"))


def _split_options(options: dict[str, Any], max_steps: int | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Keyword arguments -> (TaggerConfig fields, TrainingArguments); `max_steps` is the Trainer's name for `steps`."""
    fields = {field.name for field in dataclasses.fields(TaggerConfig)}
    tagger = {key: value for key, value in options.items() if key in fields}
    if max_steps is not None:
        if "steps" in tagger:
            raise ValueError("Pass `max_steps` or `steps`, not both.")
        tagger["steps"] = max_steps
    return tagger, {key: value for key, value in options.items() if key not in fields}


def finetune_lora(
    model,
    words: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]],
    output_dir: str | os.PathLike,
    *,
    eval_words: Sequence[Sequence[str]] | None = None,
    eval_tags: Sequence[Sequence[str]] | None = None,
    config: TaggerConfig | None = None,
    lora: LoraConfig | None = None,
    max_steps: int | None = None,
    save_steps: int | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Fine-tune the decoder with LoRA and a fresh token head through transformers' `Trainer`.

    Settings come from `config` and `options` (any `TaggerConfig` field; `max_steps` sets `steps`); other
    keyword arguments go to `TrainingArguments`. Progress bars, periodic evaluation (entity F1 / accuracy
    via seqeval) and checkpoints come from the Trainer; each checkpoint folder holds `model/`, a MAGNET
    model with the LoRA weights merged. The adapter stays attached to the live `model` (saving merges it
    into a copy). Returns the train metrics and the last evaluation scores.
    """
    tagger_options, training_args = _split_options(options, max_steps)
    config = TaggerConfig.build(config, tagger_options).with_defaults(LORA_DEFAULTS)
    pooling, head, train_ids, eval_ids = new_tagger(model, config, words, tags, eval_words, eval_tags)
    if not has_lora(model):
        with seeded(config.seed):  # LoRA's random init comes from the seed, not from whatever ran before
            add_lora(model, lora or default_lora_config())
    attach_tagger(model, pooling, head)

    # Train and evaluation sentences share one list, so one collator serves both datasets.
    sentences = as_sentences([list(sentence) for sentence in words], "words")
    if eval_words is not None:
        sentences += as_sentences([list(sentence) for sentence in eval_words], "eval_words")
    word_tokenizer = WordTokenizer(model.decoder.tokenizer, model.decoder.max_seq_length, config.prefix_token)
    segments = word_tokenizer.segments(sentences)
    train_segments = [segment for segment in segments if segment.sentence < len(words)]
    eval_segments = [segment for segment in segments if segment.sentence >= len(words)] or None

    args = TrainingArguments(
        output_dir=str(output_dir),
        max_steps=config.steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=min(100, config.steps // 10),
        logging_steps=max(1, min(50, config.eval_interval)),
        eval_strategy="steps" if eval_segments is not None else "no",
        eval_steps=config.eval_interval,
        save_strategy="steps",
        save_steps=save_steps or config.eval_interval,
        save_total_limit=2,
        remove_unused_columns=False,
        label_names=["labels"],
        report_to=[],
        seed=config.seed,
        disable_tqdm=not config.show_progress_bar,
        use_cpu=not torch.cuda.is_available(),
        **training_args,
    )
    random.seed(config.seed)
    trainer = TaggerTrainer(
        model,
        args,
        attention_mode=config.attention_mode,
        train_dataset=train_segments,
        eval_dataset=eval_segments,
        data_collator=WordCollator(
            word_tokenizer,
            sentences,
            train_ids + (eval_ids or []),
            continuation_ids(head) if config.labels_all_tokens else None,
        ),
    )
    train_output = trainer.train()
    model.eval()
    result = {"train": train_output.metrics, "log_history": trainer.state.log_history}
    if eval_segments is not None:
        result["eval"] = trainer.evaluate()
    return result
