"""MagnetLoss: MNTP + SSCL + MSG as one sentence-transformers loss, returning the named parts.

MNTP and MSG share one forward pass of the masked-and-spanned view under the hybrid mask; SSCL runs
the text and its positive fully bidirectionally, with the instruction prompt, through the model's
own pooling. The trainer sums the returned parts and logs each one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from sentence_transformers.util import get_rank, get_world_size
from torch import nn
from torch.nn import functional as F

from magnet_st.citation import MAGNET_CITATION
from magnet_st.data.views import IGNORE_INDEX, MaskedSpanView, ViewConfig, make_masked_span_view, sentence_starts
from magnet_st.modules.decoder import MagnetDecoder
from magnet_st.train_config import DROPOUT_SCOPES

OBJECTIVES = ("mntp", "sscl", "msg")


def next_token_loss(decoder: MagnetDecoder, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the labelled tokens, each predicted from the state one position earlier.

    Only the labelled positions go through the LM head (the vocabulary projection dominates on small models).
    """
    targets = labels[:, 1:]
    selected = targets != IGNORE_INDEX
    if not selected.any():
        return hidden.sum() * 0.0  # keeps the graph for a batch without targets
    logits = decoder.lm_logits(hidden[:, :-1][selected])
    return F.cross_entropy(logits.float(), targets[selected])


def objective_weights(objectives: Iterable[str]) -> dict[str, float]:
    """Weight 1 on each named objective ("mntp", "sscl", "msg"), 0 on the others."""
    names = list(objectives)
    unknown = sorted(set(names) - set(OBJECTIVES))
    if unknown or not names:
        raise ValueError(f"Unknown objective(s) {unknown or names!r}; choose from {', '.join(OBJECTIVES)}.")
    return {name: float(name in names) for name in OBJECTIVES}


class MagnetLoss(nn.Module):
    """The MAGNET objective l1*MNTP + l2*SSCL + l3*MSG (MAGNET.md), for `SentenceTransformerTrainer`.

    The first text column is the text x; a second column, when present, is its paraphrase positive x+
    (otherwise x itself under another dropout sample, as in SimCSE).

    Args:
        model: A MAGNET model from `magnet_st.load_model`.
        mntp_weight, sscl_weight, msg_weight: l1, l2, l3 (0 switches an objective off).
        views: How masks and spans are sampled (`ViewConfig`).
        scale: Inverse temperature of the contrastive loss (20 = temperature 0.05).
        prompt: Instruction for the contrastive pass; defaults to the model's default prompt.
        dropout: Attention dropout of the contrastive pass: the source of SimCSE's noise, as decoders like
            Llama have no other dropout (0.3 as LLM2Vec's SimCSE stage; None leaves the decoder's own).
        dropout_scope: "contrastive" applies `dropout` to the contrastive pass only, so the MNTP/MSG pass (and
            its plain-LM examples) trains without the noise it will not see at inference; "all" applies it to
            every pass.
        gather_across_devices: Gather contrastive negatives from every process (default: when distributed).
    """

    def __init__(
        self,
        model,
        *,
        mntp_weight: float = 1.0,
        sscl_weight: float = 1.0,
        msg_weight: float = 1.0,
        views: ViewConfig | None = None,
        scale: float = 20.0,
        prompt: str | None = None,
        dropout: float | None = 0.3,
        dropout_scope: str = "contrastive",
        gather_across_devices: bool | None = None,
    ) -> None:
        super().__init__()
        if dropout_scope not in DROPOUT_SCOPES:
            raise ValueError(f"`dropout_scope` must be one of {DROPOUT_SCOPES}, got {dropout_scope!r}.")
        if not isinstance(model[0], MagnetDecoder):
            raise TypeError(
                "`model` must be a MAGNET model from magnet_st.load_model (its first module a MagnetDecoder)."
            )
        self.model = model
        self.views = views or ViewConfig()
        self.set_weights(mntp=mntp_weight, sscl=sscl_weight, msg=msg_weight)
        self.prompt = prompt if prompt is not None else model.prompts.get(model.default_prompt_name or "", "")
        self.gather_across_devices = gather_across_devices
        self.contrastive = MultipleNegativesRankingLoss(
            model, scale=scale, gather_across_devices=bool(gather_across_devices)
        )
        decoder = model[0]
        self.mask_token_id = self._mask_token_id(decoder)
        self.special_ids = set(decoder.tokenizer.all_special_ids)
        self.generator = torch.Generator()
        self.reseed(0)
        self.ends_sentence, self.starts_word = self._sentence_tables(decoder)
        self.attention_modules = [
            module
            for module in decoder.causal_lm.modules()
            if isinstance(getattr(module, "attention_dropout", None), float)
        ]
        own = self.attention_modules[0].attention_dropout if self.attention_modules else 0.0
        self.contrastive_dropout = own if dropout is None else dropout
        self.span_pass_dropout = self.contrastive_dropout if dropout_scope == "all" else own if dropout is None else 0.0
        self.current_dropout = own

    @staticmethod
    def _sentence_tables(decoder: MagnetDecoder) -> tuple[torch.Tensor, torch.Tensor]:
        """(V,) bool tables: tokens that end a sentence, and tokens that begin a new word (leading space)."""
        tokenizer = decoder.tokenizer
        pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        texts = [tokenizer.convert_tokens_to_string([piece]) if piece else "" for piece in pieces]
        ends = torch.tensor([text.rstrip().rstrip("\"')").endswith((".", "!", "?")) for text in texts])
        starts = torch.tensor([text[:1].isspace() for text in texts])
        return ends, starts

    def _set_attention_dropout(self, probability: float) -> None:
        self.current_dropout = probability
        for module in self.attention_modules:
            module.attention_dropout = probability

    @contextlib.contextmanager
    def _attention_dropout(self, probability: float) -> Iterator[None]:
        saved = self.current_dropout
        self._set_attention_dropout(probability)
        try:
            yield
        finally:
            self._set_attention_dropout(saved)

    def checkpoint_context(self) -> tuple[contextlib.AbstractContextManager, contextlib.AbstractContextManager]:
        """`context_fn` for activation checkpointing: a layer is recomputed under the dropout its forward used.

        The two passes of a step use different dropout, and both are recomputed in the backward, after the
        last forward changed it.
        """
        return contextlib.nullcontext(), self._attention_dropout(self.current_dropout)

    def _mask_token_id(self, decoder: MagnetDecoder) -> int:
        ids = decoder.tokenizer(self.views.mask_token, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise ValueError(
                f"`mask_token` {self.views.mask_token!r} is {len(ids)} tokens for this tokenizer; it must be one."
            )
        return ids[0]

    def reseed(self, step: int) -> None:
        """Views as a function of (seed, process, step): reproducible, different per process, exact on resume."""
        self.generator.manual_seed(self.views.seed + 7919 * get_rank() + 1_000_003 * step)

    @classmethod
    def for_objectives(cls, model, objectives: Iterable[str], **kwargs: Any) -> MagnetLoss:
        """A loss with weight 1 on each named objective ("mntp", "sscl", "msg") and 0 on the others."""
        weights = {f"{name}_weight": weight for name, weight in objective_weights(objectives).items()}
        return cls(model, **weights, **kwargs)

    def set_weights(self, *, mntp: float | None = None, sscl: float | None = None, msg: float | None = None) -> None:
        """Change the loss weights (a two-stage schedule calls this between stages)."""
        current = getattr(self, "weights", {name: 0.0 for name in OBJECTIVES})
        weights = {**current, **{k: v for k, v in (("mntp", mntp), ("sscl", sscl), ("msg", msg)) if v is not None}}
        for name, value in weights.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"`{name}_weight` must be a number >= 0, got {value!r}.")
        if not any(weights.values()):
            raise ValueError("All loss weights are zero: set at least one of mntp_weight, sscl_weight, msg_weight > 0.")
        if weights["mntp"] and self.views.mask_rate == 0:
            raise ValueError("`mntp_weight` > 0 needs masked tokens: set views.mask_rate > 0.")
        if weights["msg"] and not self.views.uses_spans:
            raise ValueError("`msg_weight` > 0 needs spans: set views.max_spans > 0 or views.pure_lm_rate > 0.")
        self.weights = weights

    def forward(
        self, sentence_features: Iterable[dict[str, Any]], labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        sentence_features = list(sentence_features)
        losses: dict[str, torch.Tensor] = {}
        if self.weights["mntp"] or self.weights["msg"]:
            view = self.sample_view(sentence_features[0])
            mntp, msg = self.masked_span_losses(view)
            if self.weights["mntp"]:
                losses["mntp"] = self.weights["mntp"] * mntp
            if self.weights["msg"]:
                losses["msg"] = self.weights["msg"] * msg
        if self.weights["sscl"]:
            losses["sscl"] = self.weights["sscl"] * self.contrastive_loss(sentence_features)
        return losses

    @property
    def sentence_model(self):
        """The MAGNET model itself; the trainer may have wrapped `self.model` (DDP) for the forward passes."""
        return getattr(self.model, "module", self.model)

    # -- MNTP and MSG: one hybrid pass -------------------------------------------------------------
    def sample_view(self, features: dict[str, Any]) -> MaskedSpanView:
        decoder = self.sentence_model[0]
        view_config = self.views
        if not self.weights["mntp"] and view_config.mask_rate:
            view_config = ViewConfig(**{**view_config.to_dict(), "mask_rate": 0.0})
        if not self.weights["msg"] and view_config.uses_spans:
            view_config = ViewConfig(**{**view_config.to_dict(), "max_spans": 0, "pure_lm_rate": 0.0})
        return make_masked_span_view(
            features["input_ids"],
            features["attention_mask"],
            config=view_config,
            mask_token_id=self.mask_token_id,
            vocab_size=decoder.config.get_text_config().vocab_size,
            special_ids=self.special_ids,
            generator=self.generator,
            sentence_start_mask=(
                sentence_starts(features["input_ids"].cpu(), self.ends_sentence, self.starts_word)
                if view_config.sentence_span_rate
                else None
            ),
        )

    def masked_span_losses(self, view: MaskedSpanView) -> tuple[torch.Tensor, torch.Tensor]:
        """(MNTP, MSG) cross-entropies of one view, from a single hybrid forward pass."""
        features = {"input_ids": view.input_ids, "attention_mask": view.attention_mask, "span_mask": view.span_mask}
        self._set_attention_dropout(self.span_pass_dropout)
        # Through the (possibly wrapped) model, so distributed gradient sync sees this pass.
        hidden = self.model(features, attention_mode="hybrid")["token_embeddings"]
        decoder = self.sentence_model[0]
        return next_token_loss(decoder, hidden, view.mntp_labels), next_token_loss(decoder, hidden, view.msg_labels)

    # -- SSCL --------------------------------------------------------------------------------------
    def contrastive_loss(self, sentence_features: list[dict[str, Any]]) -> torch.Tensor:
        anchor_texts = sentence_features[0].get("texts")
        if anchor_texts is None:
            raise ValueError("SSCL needs the raw texts in the features; tokenize with the model's own `preprocess`.")
        positive_texts = sentence_features[1]["texts"] if len(sentence_features) > 1 else anchor_texts
        if len(anchor_texts) * get_world_size() < 2:
            raise ValueError(
                "The contrastive objective (SSCL) needs at least 2 texts per batch: the other texts are its negatives."
            )
        # Decided per call: the process group may start after the loss is built.
        gather = self.gather_across_devices
        self.contrastive.gather_across_devices = get_world_size() > 1 if gather is None else gather
        # One pass over anchors and positives together; with the same texts, dropout makes them differ.
        embeddings = self.embed(list(anchor_texts) + list(positive_texts))
        anchors, positives = embeddings[: len(anchor_texts)], embeddings[len(anchor_texts) :]
        return self.contrastive.compute_loss_from_embeddings([anchors, positives], None)

    def embed(self, texts: list[str]) -> torch.Tensor:
        features = self.sentence_model.preprocess(texts, prompt=self.prompt or None)
        device = self.sentence_model.device
        self._set_attention_dropout(self.contrastive_dropout)
        features = {
            key: value.to(device) if isinstance(value, torch.Tensor) else value for key, value in features.items()
        }
        return self.model(features, attention_mode="bidirectional")["sentence_embedding"]

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "weights": self.weights,
            "views": self.views.to_dict(),
            "scale": self.contrastive.scale,
            "prompt": self.prompt,
        }

    @property
    def citation(self) -> str:
        return MAGNET_CITATION


class MNTPLoss(MagnetLoss):
    """Masked next-token prediction alone (LLM2Vec's bidirectional MNTP): no spans, all context."""

    def __init__(self, model, *, views: ViewConfig | None = None, **kwargs: Any) -> None:
        views = views or ViewConfig(max_spans=0, pure_lm_rate=0.0)
        super().__init__(model, mntp_weight=1.0, sscl_weight=0.0, msg_weight=0.0, views=views, **kwargs)


class MSGLoss(MagnetLoss):
    """Missing-span generation alone: spans in place, context uncorrupted."""

    def __init__(self, model, *, views: ViewConfig | None = None, **kwargs: Any) -> None:
        views = views or ViewConfig(mask_rate=0.0)
        super().__init__(model, mntp_weight=0.0, sscl_weight=0.0, msg_weight=1.0, views=views, **kwargs)


class SSCLLoss(MagnetLoss):
    """Self-supervised contrastive learning alone (unsupervised SimCSE with the model's pooling and prompt)."""

    def __init__(self, model, **kwargs: Any) -> None:
        super().__init__(model, mntp_weight=0.0, sscl_weight=1.0, msg_weight=0.0, **kwargs)
