"""A MAGNET tagger exported as a transformers token-classification checkpoint, and plain loading of tagger folders."""

import json

import pytest
import torch
from sentence_transformers import SentenceTransformer
from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

from magnet_st import load_model
from magnet_st.cli import main
from magnet_st.data.conll import conll2003_split
from magnet_st.modules.word_pooling import word_states
from magnet_st.tagging import predict, predict_logits, train_probe
from magnet_st.tagging.export import export_tagger


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

    model = probed(MagnetSentenceTransformer(modules=[real_model.decoder]), "first", sentences=100, steps=300)
    export_tagger(model, tmp_path / "ner")
    texts = [" ".join(s.words) for s in conll2003_split(None, "test", 20)]
    expected = [entities(predict(model, text)) for text in texts]
    first = pipeline("token-classification", model=str(tmp_path / "ner"), aggregation_strategy="first")
    # "first" reads each word at its first token, as the tagger does; its word split is a heuristic.
    assert sum(pipeline_entities(first(text)) == want for text, want in zip(texts, expected)) >= 18
    # "simple" labels every sub-token from its own state, on which the head never trained: no equality claimed
    # (README, "NER with transformers").
