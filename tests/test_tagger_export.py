"""A MAGNET tagger exported as a transformers token-classification checkpoint, and plain loading of tagger folders."""

import json

import pytest
import torch
from sentence_transformers import SentenceTransformer
from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

from magnet_st import load_model
from magnet_st.cli import main
from magnet_st.data.conll import conll2003_split
from magnet_st.modules.token_head import TokenClassificationHead
from magnet_st.modules.word_pooling import word_states
from magnet_st.tagging import TaggerConfig, finetune_lora, predict, predict_logits, train_probe
from magnet_st.tagging.alignment import WordTokenizer, join_words
from magnet_st.tagging.export import export_tagger
from magnet_st.tagging.finetune import IGNORE_INDEX, WordCollator
from magnet_st.tagging.inference import encode_subtokens
from magnet_st.tagging.probe import with_continuations
from magnet_st.tagging.tagger import continuation_ids

# Tokens after the prefix: Peter | ĠBlack burn | Ġmet | ĠU . S . | Ġofficials | Ġin | Ġ 1 9 9 6
WORDS = ["Peter", "Blackburn", "met", "U.S.", "officials", "in", "1996"]
TAGS = ["B-PER", "I-PER", "O", "B-LOC", "O", "O", "O"]
TOKENS = ["Peter", "ĠBlack", "burn", "Ġmet", "ĠU", ".", "S", ".", "Ġofficials", "Ġin", "Ġ", "1", "9", "9", "6"]
LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
# Hand-written: the later sub-tokens (burn; . S .; 1 9 9 6) and what "simple" aggregation needs on them.
LATER_POSITIONS = [3, 6, 7, 8, 12, 13, 14, 15]  # in the tokenized row, after the prefix token at 0
LATER_TAGS = ["I-PER", "I-LOC", "I-LOC", "I-LOC", "O", "O", "O", "O"]
FIRST_POSITIONS = [1, 2, 4, 5, 9, 10, 11]


def entities(results):
    return [(e["label"], e["start"], e["end"]) for e in results[0]["entities"]]


def pipeline_entities(found):
    return [(e["entity_group"], e["start"], e["end"]) for e in found]


def probed(model, alignment, sentences=40, steps=150):
    train = conll2003_split(None, "train", sentences)
    train_probe(
        model,
        [s.words for s in train],
        [s.tags["ner"] for s in train],
        task="ner",
        steps=steps,
        learning_rate=5e-3,
        alignment=alignment,
        show_progress_bar=False,
    )
    return model


@pytest.fixture(scope="module")
def exported(tiny_decoder_dir, tmp_path_factory):
    model = probed(load_model(tiny_decoder_dir, max_seq_length=64), "first")
    model.eval()
    folder = tmp_path_factory.mktemp("export") / "ner"
    export_tagger(model, folder)
    return model, folder


def test_first_alignment_reads_each_words_first_token():
    states = torch.arange(12.0).reshape(1, 4, 3)  # (B, T, H)
    mask = torch.tensor([[[False, True, True, False], [False, False, False, True]]])  # (B, W, T)
    torch.testing.assert_close(word_states(states, mask, "first"), states[:, [1, 3]])


def test_export_is_a_plain_token_classification_checkpoint(exported):
    model, folder = exported
    config = json.loads((folder / "config.json").read_text())
    head = model[-1]
    assert config["architectures"] == ["LlamaForTokenClassification"]
    assert config["is_causal"] is False
    assert config["id2label"] == {str(i): label for i, label in enumerate(head.labels)}
    assert config["label2id"] == {label: i for i, label in enumerate(head.labels)}
    token_model = AutoModelForTokenClassification.from_pretrained(folder)
    torch.testing.assert_close(token_model.score.weight, head.linear.weight)
    assert not (folder / "modules.json").exists()  # transformers only, nothing magnet_st needs to read


def test_exported_logits_match_the_taggers_word_logits(exported):
    # Independent reference: the tagger's own word logits, each word read at its first token.
    model, folder = exported
    text = "Peter Blackburn met EU officials in Brussels on Tuesday ."
    _, (word_logits,) = predict_logits(model, text)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    encoded = tokenizer(text, return_tensors="pt", return_offsets_mapping=True)
    assert encoded["input_ids"][0, 0] == tokenizer.bos_token_id  # the tagger's prefix token, no EOS
    assert encoded["input_ids"][0, -1] != tokenizer.eos_token_id
    offsets = encoded.pop("offset_mapping")[0].tolist()
    with torch.no_grad():
        logits = AutoModelForTokenClassification.from_pretrained(folder)(**encoded).logits[0]
    starts = [index for index, (start, _) in enumerate(offsets) if start == 0 or text[start - 1] == " "][1:]
    assert len(starts) == word_logits.shape[0]
    torch.testing.assert_close(logits[starts], word_logits, atol=1e-4, rtol=1e-4)


def test_pipeline_first_equals_predict(exported):
    model, folder = exported
    tagger = pipeline("token-classification", model=str(folder), aggregation_strategy="first")
    for sentence in conll2003_split(None, "test", 10):
        text = " ".join(sentence.words)
        assert pipeline_entities(tagger(text)) == entities(predict(model, text))


def test_continuation_labels_follow_the_label_all_tokens_convention():
    head = TokenClassificationHead(8, ["O", "B-LOC", "I-LOC", "B-MISC", "B-PER", "I-PER", "I-MISC"])
    named = dict(zip(head.labels, (head.labels[i] for i in continuation_ids(head))))
    assert named == {
        "O": "O", "B-LOC": "I-LOC", "I-LOC": "I-LOC", "B-MISC": "I-MISC", "B-PER": "I-PER", "I-PER": "I-PER",
        "I-MISC": "I-MISC",
    }  # fmt: skip
    pos = TokenClassificationHead(8, ["B-X", "NN", "VB"], scheme="none")  # per-word labels keep their own
    assert continuation_ids(pos) == [0, 1, 2]


def test_probe_targets_of_later_sub_tokens_are_i_or_o(tiny_model):
    tokenizer = tiny_model.decoder.tokenizer
    ids = [tokenizer.bos_token_id, *tokenizer(" ".join(WORDS), add_special_tokens=False)["input_ids"]]
    assert tokenizer.convert_ids_to_tokens(ids[1:]) == TOKENS
    head = TokenClassificationHead(64, LABELS)
    features, targets = with_continuations(head, encode_subtokens(tiny_model, [WORDS]), [TAGS])
    assert targets == [TAGS + LATER_TAGS]
    # Independent reference: the decoder's own bidirectional states at those positions.
    decoder = tiny_model.decoder.model.get_decoder()
    with torch.no_grad():
        states = decoder(input_ids=torch.tensor([ids]), is_causal=False).last_hidden_state[0]
    torch.testing.assert_close(features[0], states[FIRST_POSITIONS + LATER_POSITIONS], atol=1e-5, rtol=1e-5)


def test_lora_collator_labels_later_sub_tokens(tiny_model):
    head = TokenClassificationHead(64, LABELS)
    word_tokenizer = WordTokenizer(tiny_model.decoder.tokenizer, 64)
    sentences = [join_words(WORDS)]
    collator = WordCollator(word_tokenizer, sentences, [head.label_ids(TAGS)], continuation_ids(head))
    features = collator(word_tokenizer.segments(sentences))
    expected = torch.full((len(TOKENS) + 1,), IGNORE_INDEX)
    expected[LATER_POSITIONS] = torch.tensor(head.label_ids(LATER_TAGS))
    assert torch.equal(features["token_labels"][0], expected)
    plain = WordCollator(word_tokenizer, sentences, [head.label_ids(TAGS)])(word_tokenizer.segments(sentences))
    assert "token_labels" not in plain


def test_label_all_tokens_lora_finetune_trains_and_exports(tiny_decoder_dir, tmp_path):
    train = conll2003_split(None, "train", 8)
    model = load_model(tiny_decoder_dir, max_seq_length=64)
    result = finetune_lora(
        model,
        [s.words for s in train],
        [s.tags["ner"] for s in train],
        tmp_path / "run",
        alignment="first",
        task="ner",
        max_steps=2,
        show_progress_bar=False,
    )
    assert result["train"]["train_loss"] > 0
    export_tagger(model, tmp_path / "hf")
    assert AutoModelForTokenClassification.from_pretrained(tmp_path / "hf").config.num_labels == len(model[-1].labels)


def test_label_all_tokens_is_the_default_for_first_only():
    assert TaggerConfig(alignment="first").labels_all_tokens
    assert not TaggerConfig(alignment="first", label_all_tokens=False).labels_all_tokens
    assert not TaggerConfig(alignment="previous").labels_all_tokens
    with pytest.raises(ValueError, match="`label_all_tokens` needs alignment='first'"):
        TaggerConfig(alignment="own", label_all_tokens=True)
    # Unset, it follows the alignment a later `build` sets.
    assert not TaggerConfig.build(TaggerConfig(alignment="first"), {"alignment": "previous"}).labels_all_tokens


def test_exporting_other_alignments_fails_clearly(tiny_decoder_dir, tmp_path):
    model = probed(load_model(tiny_decoder_dir, max_seq_length=64), "previous", sentences=8, steps=5)
    with pytest.raises(ValueError, match="alignment='previous'.*alignment='first'"):
        export_tagger(model, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="no token classification head"):
        export_tagger(load_model(tiny_decoder_dir, max_seq_length=64), tmp_path / "out")


def test_saved_tagger_loads_in_plain_sentence_transformers(exported, tmp_path):
    model, _ = exported
    model.save(str(tmp_path / "tagger"))
    modules = json.loads((tmp_path / "tagger" / "modules.json").read_text())
    assert all(entry["type"].startswith("sentence_transformers.") for entry in modules)
    plain = SentenceTransformer(str(tmp_path / "tagger"), device="cpu")  # no trust_remote_code
    texts = ["The cat sat on the mat.", "EU rejects German call."]
    torch.testing.assert_close(
        torch.as_tensor(plain.encode(texts)), torch.as_tensor(model.encode(texts)), atol=1e-5, rtol=1e-5
    )
    reloaded = load_model(str(tmp_path / "tagger"))
    reloaded.eval()
    text = "Peter Blackburn met EU officials in Brussels."
    assert predict(reloaded, text) == predict(model, text)


def test_cli_export_tagger(exported, tmp_path, capsys):
    model, _ = exported
    model.save(str(tmp_path / "tagger"))
    assert main(["export-tagger", str(tmp_path / "tagger"), str(tmp_path / "hf")]) == 0
    assert str(tmp_path / "hf") in capsys.readouterr().out
    assert AutoModelForTokenClassification.from_pretrained(tmp_path / "hf").config.num_labels == len(model[-1].labels)


@pytest.mark.real_model
def test_real_pipeline_equals_predict(real_model, tmp_path):
    from magnet_st.model import MagnetSentenceTransformer

    # alignment="first" trains with label_all_tokens: later sub-tokens learn I-X / O, as "simple" reads them.
    model = probed(MagnetSentenceTransformer(modules=[real_model.decoder]), "first", sentences=300, steps=300)
    export_tagger(model, tmp_path / "ner")
    texts = [" ".join(s.words) for s in conll2003_split(None, "test", 20)]
    expected = [entities(predict(model, text)) for text in texts]
    first = pipeline("token-classification", model=str(tmp_path / "ner"), aggregation_strategy="first")
    assert sum(pipeline_entities(first(text)) == want for text, want in zip(texts, expected)) >= 19
    # "simple" labels every sub-token from its own state; label_all_tokens taught later sub-tokens I-X / O, but a
    # linear probe on the unadapted base is too noisy per token for full equality (README, "NER with transformers").
    simple = pipeline("token-classification", model=str(tmp_path / "ner"), aggregation_strategy="simple")
    assert sum(pipeline_entities(simple(text)) == want for text, want in zip(texts, expected)) >= 9
