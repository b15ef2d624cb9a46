"""A tagger in a model's module list: `WordPooling` then a `TokenClassificationHead`, built, attached and found."""

from __future__ import annotations

from collections.abc import Sequence

from magnet_st.data.conll import check_tagged
from magnet_st.modules.token_head import TokenClassificationHead
from magnet_st.modules.word_pooling import WordPooling
from magnet_st.seeding import seeded
from magnet_st.tagging.config import TaggerConfig


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


def label_ids(head: TokenClassificationHead, tags: Sequence[Sequence[str]], argument: str) -> list[list[int]]:
    """Label ids of every sentence's tags; an unknown tag fails with its argument and sentence."""
    return [head.label_ids(list(sentence), f" in `{argument}` sentence {index}") for index, sentence in enumerate(tags)]


def continuation_ids(head: TokenClassificationHead) -> list[int]:
    """For each label id, the label id of a word's later sub-tokens under "label all tokens".

    Inside an IOB2 entity that is I-X, for a word tagged B-X or I-X, so transformers' "simple" aggregation
    joins the sub-tokens into the word's entity; O and per-word labels (POS) carry over unchanged, as in
    transformers' token-classification examples (a B-X without an I-X label also keeps its own).
    """
    continuation = list(range(len(head.labels)))
    if head.scheme == "IOB2":
        for index, label in enumerate(head.labels):
            if label.startswith("B-"):
                continuation[index] = head.label_to_id.get(f"I-{label[2:]}", index)
    return continuation


def new_tagger(
    model,
    config: TaggerConfig,
    words: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]],
    eval_words: Sequence[Sequence[str]] | None = None,
    eval_tags: Sequence[Sequence[str]] | None = None,
) -> tuple[WordPooling, TokenClassificationHead, list[list[int]], list[list[int]] | None]:
    """Check the data, build word pooling and a fresh head for it, and turn tags into label ids.

    Unknown tags fail here, before any slow encoding or training. The head's initialisation is seeded with
    `config.seed`.
    """
    check_tagged(words, tags, "tags")
    if eval_words is not None:
        check_tagged(eval_words, eval_tags, "eval_tags")
    labels = config.labels if config.labels is not None else label_set(tags, config.scheme)
    with seeded(config.seed):  # the head's initial weights come from the seed, not from whatever ran before
        head = TokenClassificationHead(
            model.decoder.get_embedding_dimension(),
            labels,
            dropout=config.dropout,
            scheme=config.scheme,
            attention_mode=config.attention_mode,
            task=config.task,
        )
    head = head.to(next(model.decoder.parameters()).device)
    train_ids = label_ids(head, tags, "tags")
    eval_ids = label_ids(head, eval_tags, "eval_tags") if eval_tags is not None else None
    return WordPooling(config.alignment, config.prefix_token), head, train_ids, eval_ids


def attach_tagger(model, pooling: WordPooling, head: TokenClassificationHead) -> None:
    """Put `pooling` and `head` at the end of the model's modules, replacing an earlier tagger."""
    for index in reversed(range(len(model))):
        if isinstance(model[index], (WordPooling, TokenClassificationHead)):
            del model[index]
    model.append(pooling)
    model.append(head)


def find_tagger(model) -> tuple[WordPooling, TokenClassificationHead]:
    """The model's word pooling and token head, or a clear error when it has no head.

    A head loaded from a folder saved before word pooling became its own module carries the pooling
    settings; the matching `WordPooling` is inserted before it here, so `model.forward` produces word
    logits and the next save writes the current layout.
    """
    heads = [index for index, module in enumerate(model) if isinstance(module, TokenClassificationHead)]
    if not heads:
        raise ValueError(
            "This model has no token classification head; train one with magnet_st.tagging.train_probe or "
            "magnet_st.tagging.finetune_lora first."
        )
    index = heads[-1]
    head = model[index]
    pooling = next((model[k] for k in reversed(range(index)) if isinstance(model[k], WordPooling)), None)
    if pooling is None:
        if head.legacy_word_pooling is None:
            raise ValueError("The model's token head has no WordPooling module before it to give it word vectors.")
        pooling = WordPooling(**head.legacy_word_pooling)
        model.insert(index, pooling)
        head.legacy_word_pooling = None
    return pooling, head
