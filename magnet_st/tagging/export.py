"""Export a MAGNET tagger as a plain transformers token-classification checkpoint.

The folder holds the family's `*ForTokenClassification` model (built with `AutoModelForTokenClassification`,
so every decoder family works), `id2label` / `label2id`, `is_causal: false` for a bidirectional tagger, the
head's weights in its classifier layer, and a tokenizer that puts the tagger's prefix token before every text
(and no EOS after it). `AutoModelForTokenClassification.from_pretrained(folder)` and
`pipeline("token-classification", model=folder)` load it with no `trust_remote_code` and no magnet_st.

Only the "first" alignment can be exported. A token-classification model labels every token from that
token's own state: `aggregation_strategy="first"` reads a word at its first sub-token, as `predict` does, and
"simple" labels every sub-token and joins I-X tokens to the entity before them. A "first" tagger trained
with `label_all_tokens` (its default) has learnt I-X / O on later sub-tokens, so "simple" gives the same
entities as `predict` where the head labels every later sub-token consistently with the first (README).
MAGNET's "previous" alignment reads a word from the state *before* its first token (the previous word's last
token), and "own" averages the word's states; neither is a per-token read, so exporting them raises an error
that says how to train a "first" tagger instead.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import torch
from tokenizers import processors
from transformers import AutoModelForTokenClassification, PreTrainedModel, PreTrainedTokenizerBase

from magnet_st.attention import AttentionMode
from magnet_st.modules.token_head import TokenClassificationHead
from magnet_st.persistence import atomic_folder, exportable_model
from magnet_st.tagging.alignment import prefix_token_id
from magnet_st.tagging.tagger import find_tagger

EXPORTABLE_ALIGNMENT = "first"
# Names the families give their token-classification layer (Llama, Mistral, Qwen2, Gemma: `score`).
CLASSIFIER_NAMES = ("score", "classifier")


def token_classification_model(decoder, head: TokenClassificationHead) -> PreTrainedModel:
    """The decoder's family `*ForTokenClassification`, with the decoder's weights and the head's linear layer."""
    causal_lm = exportable_model(decoder.model)  # LoRA merged into a copy
    if hasattr(causal_lm, "get_base_model"):
        causal_lm = causal_lm.get_base_model()
    config = copy.deepcopy(causal_lm.config)
    config.architectures = None
    config.num_labels = len(head.labels)
    config.id2label = dict(enumerate(head.labels))
    config.label2id = {label: index for index, label in enumerate(head.labels)}
    config.is_causal = head.attention_mode == AttentionMode.CAUSAL.value
    config.use_cache = False
    model = AutoModelForTokenClassification.from_config(config, dtype=causal_lm.dtype)
    backbone = getattr(model, model.base_model_prefix)
    missing, unexpected = backbone.load_state_dict(causal_lm.get_decoder().state_dict(), strict=False)
    if missing or unexpected:
        raise ValueError(f"The decoder's weights do not fit {type(model).__name__}: missing {missing[:3]}, ...")
    classifier = next((getattr(model, name) for name in CLASSIFIER_NAMES if hasattr(model, name)), None)
    if not isinstance(classifier, torch.nn.Linear):
        raise ValueError(f"{type(model).__name__} has no linear token-classification layer named {CLASSIFIER_NAMES}.")
    with torch.no_grad():
        classifier.weight.copy_(head.linear.weight)
        if classifier.bias is not None:
            classifier.bias.copy_(head.linear.bias)
    model.config.architectures = [type(model).__name__]
    return model.eval()


def tagging_tokenizer(tokenizer: PreTrainedTokenizerBase, prefix_token: str) -> PreTrainedTokenizerBase:
    """A copy of `tokenizer` that adds only the tagger's prefix token (marked special, so pipelines skip it).

    Byte-level tokenizers glue a space to the next word; their offsets are trimmed, so entity offsets
    start at the word, as `magnet_st.tagging.predict` gives them.
    """
    tokenizer = copy.deepcopy(tokenizer)
    backend = tokenizer.backend_tokenizer
    prefix_id = prefix_token_id(tokenizer, prefix_token)
    steps = []
    if "ByteLevel" in json.dumps(json.loads(backend.to_str()).get("pre_tokenizer")):
        steps.append(processors.ByteLevel(trim_offsets=True))
    if prefix_id is None:
        steps.append(processors.TemplateProcessing(single="$A", pair="$A $B:1"))
    else:
        prefix = tokenizer.convert_ids_to_tokens(prefix_id)
        steps.append(
            processors.TemplateProcessing(
                single=f"{prefix} $A", pair=f"{prefix} $A $B:1", special_tokens=[(prefix, prefix_id)]
            )
        )
    backend.post_processor = processors.Sequence(steps)
    return tokenizer


def check_exportable(alignment: str) -> None:
    if alignment != EXPORTABLE_ALIGNMENT:
        raise ValueError(
            f"This tagger reads words with alignment={alignment!r}, which a transformers token-classification "
            "model cannot express: it labels each token from that token's own state, and the pipeline reads a "
            "word from its first sub-token. Train the tagger with alignment='first' (e.g. "
            "`train_probe(model, words, tags, alignment='first')`) and export that."
        )


def export_tagger(model, output_path: str | os.PathLike) -> Path:
    """Write `model`'s tagger (a saved tagger folder or a loaded model) as a transformers token-classification folder.

    The folder loads with `AutoModelForTokenClassification.from_pretrained` and
    `pipeline("token-classification", model=folder, aggregation_strategy="simple")`. Returns the folder.
    """
    if isinstance(model, (str, os.PathLike)):
        from magnet_st import load_model

        model = load_model(str(model))
    pooling, head = find_tagger(model)
    check_exportable(pooling.alignment)
    decoder = model.decoder
    token_model = token_classification_model(decoder, head)
    tokenizer = tagging_tokenizer(decoder.tokenizer, pooling.prefix_token)
    with atomic_folder(output_path) as staging:
        token_model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    return Path(output_path)
