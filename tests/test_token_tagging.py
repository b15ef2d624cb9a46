"""Token tagging end to end: probe, LoRA fine-tuning through the Trainer, predict, save/reload, CLI, bad input."""

import json

import pytest
import torch

from magnet_st import load_model
from magnet_st.cli import main
from magnet_st.data.conll import conll2003_split
from magnet_st.decoding import eval_mode
from magnet_st.evaluation.word_level import evaluate_word_probes, headline_alignment
from magnet_st.modules import TokenClassificationHead, WordPooling
from magnet_st.tagging import (
    TaggerConfig,
    encode_words,
    evaluate_tagger,
    finetune_lora,
    predict,
    predict_logits,
    train_probe,
)
from magnet_st.tagging.alignment import WordTokenizer, join_words

TEXT = "Peter Blackburn met EU officials in Brussels on Tuesday."


@pytest.fixture(scope="module")
def conll():
    train = conll2003_split(None, "train", 40)
    test = conll2003_split(None, "test", 20)
    return train, test


def fresh(tiny_decoder_dir):
    model = load_model(tiny_decoder_dir, max_seq_length=64)
    model.eval()
    return model


@pytest.fixture(scope="module")
def probed(tiny_decoder_dir, conll):
    model = fresh(tiny_decoder_dir)
    train, test = conll
    result = train_probe(
        model,
        [s.words for s in train],
        [s.tags["ner"] for s in train],
        eval_words=[s.words for s in test],
        eval_tags=[s.tags["ner"] for s in test],
        task="ner",
        steps=300,
        learning_rate=5e-3,
        show_progress_bar=False,
    )
    return model, result


def test_probe_fits_training_words(tiny_decoder_dir, conll):
    model = fresh(tiny_decoder_dir)
    train, _ = conll
    words, tags = [s.words for s in train], [s.tags["pos"] for s in train]
    train_probe(model, words, tags, scheme="none", steps=400, learning_rate=1e-2, show_progress_bar=False)
    majority = max(sum(t == tag for s in tags for t in s) for tag in {t for s in tags for t in s})
    total = sum(len(s) for s in tags)
    # A linear layer over 64-dim states of a random model still memorises many training words.
    assert evaluate_tagger(model, words, tags)["accuracy"] > majority / total + 0.1


def test_cached_probe_scores_match_live_prediction(probed, conll):
    model, result = probed
    _, test = conll
    live = evaluate_tagger(model, [s.words for s in test], [s.tags["ner"] for s in test])
    assert result.scores["accuracy"] == pytest.approx(live["accuracy"])
    assert result.scores["f1"] == pytest.approx(live["f1"])
    assert result.settings["alignment"] == "previous" and result.settings["steps"] == 300


def test_predict_words_entities_and_offsets(probed):
    model, _ = probed
    [result] = predict(model, TEXT)
    assert [w["word"] for w in result["words"]][:3] == ["Peter", "Blackburn", "met"]
    for word in result["words"]:
        assert TEXT[word["start"] : word["end"]] == word["word"]
        assert word["label"] in model[-1].labels and 0 < word["score"] <= 1
    labels = [w["label"] for w in result["words"]]
    for entity in result["entities"]:
        first, last = entity["words"]
        assert TEXT[entity["start"] : entity["end"]] == entity["text"]
        assert all(label.endswith(entity["label"]) for label in labels[first:last])
    # Pre-split words give the same labels as the raw text they join into.
    presplit = predict(model, [[w["word"] for w in result["words"]]])[0]
    assert [w["label"] for w in presplit["words"]] == labels


def test_model_forward_runs_word_pooling_and_head(probed):
    model, _ = probed
    assert [type(module) for module in model][-2:] == [WordPooling, TokenClassificationHead]
    sentences = [join_words(["Peter", "met", "Anna"]), join_words(["EU", "rejects", "German", "call", "."])]
    word_tokenizer = WordTokenizer(model.decoder.tokenizer, model.decoder.max_seq_length)
    features = word_tokenizer.features(sentences, word_tokenizer.segments(sentences))
    with eval_mode(model):
        logits = model(dict(features), attention_mode="bidirectional")["word_logits"]
        states = model.decoder(dict(features), attention_mode="bidirectional")["token_embeddings"]
    head = model[-1]
    for row, (_, spans) in enumerate(sentences):
        for word in range(len(spans)):
            positions = features["word_token_mask"][row, word].nonzero().flatten().tolist()
            # Alignment "previous": the states one position before each of the word's tokens, averaged.
            vector = torch.stack([states[row, position - 1] for position in positions]).mean(0)
            expected = head.linear.weight @ vector + head.linear.bias
            torch.testing.assert_close(logits[row, word], expected, atol=1e-5, rtol=1e-4)


def test_folder_with_word_pooling_settings_in_the_head_still_predicts(probed, tmp_path):
    model, _ = probed
    texts = [TEXT, "EU rejects German call."]
    expected = predict(model, texts)
    folder = tmp_path / "old-layout"
    model.save(str(folder))
    # Rewrite the folder into the earlier layout: no WordPooling entry, its settings in the head's config.
    modules = json.loads((folder / "modules.json").read_text())
    tagger_modules = json.loads((folder / "magnet_modules.json").read_text())  # the tagger's own modules
    pooling_entry, head_entry = tagger_modules[-2], tagger_modules[-1]
    pooling_config = json.loads((folder / pooling_entry["path"] / "config.json").read_text())
    head_config = json.loads((folder / head_entry["path"] / "config.json").read_text())
    old_keys = ("embedding_dimension", "labels", "dropout", "scheme", "attention_mode", "task")
    old_config = {key: head_config[key] for key in old_keys}
    old_config.update(alignment=pooling_config["alignment"], prefix_token=pooling_config["prefix_token"])
    (folder / head_entry["path"] / "config.json").write_text(json.dumps(old_config))
    head_entry["idx"] = pooling_entry["idx"]
    (folder / "magnet_modules.json").unlink()  # the earlier layout listed every module in modules.json
    (folder / "modules.json").write_text(json.dumps([*modules, head_entry]))
    reloaded = load_model(str(folder))
    assert not any(isinstance(module, WordPooling) for module in reloaded)
    assert predict(reloaded, texts) == expected
    # Its word pooling now sits in the module list, so the next save writes the current layout.
    assert isinstance(reloaded[-2], WordPooling) and reloaded[-2].alignment == "previous"
    reloaded.save(str(tmp_path / "new-layout"))
    assert predict(load_model(str(tmp_path / "new-layout")), texts) == expected


def test_probe_takes_a_config_or_keywords_alike(tiny_decoder_dir):
    words, tags = [["Peter", "lives", "in", "Paris", "."]], [["B-PER", "O", "O", "B-LOC", "O"]]
    by_config, by_keywords = fresh(tiny_decoder_dir), fresh(tiny_decoder_dir)
    config = TaggerConfig(task="ner", alignment="own", prefix_token="eos", steps=3, show_progress_bar=False)
    torch.manual_seed(0)
    first = train_probe(by_config, words, tags, config=config)
    torch.manual_seed(0)
    second = train_probe(
        by_keywords, words, tags, task="ner", alignment="own", prefix_token="eos", steps=3, show_progress_bar=False
    )
    assert first.settings == second.settings
    assert (first.settings["alignment"], first.settings["steps"], first.settings["learning_rate"]) == ("own", 3, 5e-4)
    assert (by_config[-2].alignment, by_config[-2].prefix_token) == ("own", "eos")
    for name, tensor in by_config[-1].state_dict().items():
        assert torch.equal(tensor, by_keywords[-1].state_dict()[name])


def test_word_states_do_not_depend_on_batch_padding(probed):
    model, _ = probed
    short = ["EU", "rejects", "German", "call"]
    alone = encode_words(model, [short])["previous"][0]
    padded = encode_words(model, [short, short * 6])["previous"][0]
    torch.testing.assert_close(alone, padded, atol=1e-5, rtol=1e-4)


def test_attention_mode_reaches_the_decoder(probed):
    model, _ = probed
    first = ["Peter", "met", "Anna"]
    second = ["Peter", "met", "Bob"]
    for mode, same in (("causal", True), ("bidirectional", False)):
        a = encode_words(model, [first], alignments=("own",), attention_mode=mode)["own"][0][0]
        b = encode_words(model, [second], alignments=("own",), attention_mode=mode)["own"][0][0]
        # Causally, the first word cannot see the last one.
        assert torch.allclose(a, b, atol=1e-6) == same


def test_long_input_is_read_in_windows(probed):
    from magnet_st.tagging.alignment import WordTokenizer, split_words

    model, _ = probed
    text = "The European Commission said on Thursday it disagreed with German advice. " * 12
    spans = split_words(text)
    assert len(spans) > model.decoder.max_seq_length
    [result] = predict(model, text)
    assert len(result["words"]) == len(spans)
    # Each word is read from one window; its state equals that of the window's text run on its own.
    segments = WordTokenizer(model.decoder.tokenizer, model.decoder.max_seq_length).segments([(text, spans)])
    assert len(segments) >= 3
    states = encode_words(model, text)["previous"][0]
    for segment in segments[:3]:
        start = spans[segment.first - 1][1] if segment.first else 0
        window = encode_words(model, text[start : spans[segment.last - 1][1]])["previous"][0]
        own = slice(segment.own_first - segment.first, segment.own_last - segment.first)
        torch.testing.assert_close(states[segment.own_first : segment.own_last], window[own], atol=1e-5, rtol=1e-4)


def test_save_and_reload_predict_identically(probed, tmp_path):
    model, _ = probed
    model.save(str(tmp_path / "tagger"))
    reloaded = load_model(str(tmp_path / "tagger"))
    assert reloaded[-1].labels == model[-1].labels
    assert predict(reloaded, [TEXT, "EU rejects German call."]) == predict(model, [TEXT, "EU rejects German call."])
    # The tagger still embeds sentences.
    assert reloaded.encode(["EU rejects German call."]).shape == (1, 64)


def test_lora_finetuning_checkpoints_reload_identically(tiny_decoder_dir, conll, tmp_path):
    model = fresh(tiny_decoder_dir)
    train, test = conll
    before = encode_words(model, [TEXT.split()])["previous"][0]
    result = finetune_lora(
        model,
        [s.words for s in train],
        [s.tags["ner"] for s in train],
        tmp_path / "run",
        eval_words=[s.words for s in test],
        eval_tags=[s.tags["ner"] for s in test],
        task="ner",
        max_steps=6,
        eval_steps=3,
        learning_rate=1e-2,
        show_progress_bar=False,
    )
    assert {"eval_f1", "eval_accuracy", "eval_precision", "eval_recall"} <= set(result["eval"])
    assert any("eval_f1" in entry for entry in result["log_history"])
    after = encode_words(model, [TEXT.split()])["previous"][0]
    assert not torch.allclose(before, after)  # the LoRA weights trained
    checkpoint = tmp_path / "run" / "checkpoint-6" / "model"
    assert (tmp_path / "run" / "checkpoint-3" / "model").is_dir()
    reloaded = load_model(str(checkpoint))
    # The saved copy has LoRA merged into the weights: same labels and entities, scores equal up to rounding.
    live, saved = (
        predict(model, [TEXT, "EU rejects German call."]),
        predict(reloaded, [TEXT, "EU rejects German call."]),
    )
    assert [[w["label"] for w in r["words"]] for r in live] == [[w["label"] for w in r["words"]] for r in saved]
    assert [r["entities"] for r in live] == [r["entities"] for r in saved]
    _, live_logits = predict_logits(model, TEXT)
    _, saved_logits = predict_logits(reloaded, TEXT)
    torch.testing.assert_close(live_logits[0], saved_logits[0], atol=1e-4, rtol=1e-4)


def test_bad_input_is_reported(probed, tmp_path):
    model, _ = probed
    with pytest.raises(ValueError, match="empty"):
        predict(model, "")
    with pytest.raises(ValueError, match="empty"):
        predict(model, "   ")
    with pytest.raises(ValueError, match="Empty sentence"):
        predict(model, [["EU"], []])
    with pytest.raises(ValueError, match="Sentence 0 has 2 words but 1 tags"):
        train_probe(model, [["EU", "rejects"]], [["B-ORG"]], steps=1, show_progress_bar=False)
    with pytest.raises(ValueError, match="Tag 'B-FOO' in `tags` sentence 0 is not in the model's label set"):
        train_probe(model, [["EU"]], [["B-FOO"]], labels=["O", "B-ORG", "I-ORG"], steps=1)
    with pytest.raises(ValueError, match="`max_steps` or `steps`"):
        finetune_lora(model, [["EU"]], [["B-ORG"]], tmp_path / "run", max_steps=2, steps=2)
    with pytest.raises(ValueError, match="`attention_mode` must be .* got 'hybrid'"):
        train_probe(model, [["EU"]], [["B-ORG"]], attention_mode="hybrid")
    with pytest.raises(ValueError, match="Tag 'B-FOO'"):
        evaluate_tagger(model, [["EU"]], [["B-FOO"]])
    with pytest.raises(ValueError, match="no token classification head"):
        predict(load_model_without_head(model), TEXT)


def load_model_without_head(model):
    from magnet_st.model import MagnetSentenceTransformer

    return MagnetSentenceTransformer(modules=[model.decoder, model[1]])


def test_word_probe_evaluation_returns_scores_and_settings(tiny_decoder_dir):
    model = fresh(tiny_decoder_dir)
    result = evaluate_word_probes(
        model,
        attention_mode="causal",
        alignments=("previous", "own"),
        max_train_sentences=20,
        max_test_sentences=10,
        steps=20,
        show_progress_bar=False,
    )
    assert set(result) >= {"ner", "chunk", "pos", "details", "settings"}
    assert result["ner"] == round(100 * result["details"]["previous"]["ner"]["f1"], 2)
    assert result["pos"] == round(100 * result["details"]["previous"]["pos"]["accuracy"], 2)
    assert result["settings"]["test_sentences"] == 10 and result["settings"]["attention_mode"] == "causal"
    with pytest.raises(ValueError, match="tasks"):
        evaluate_word_probes(model, tasks=("sentiment",))
    for bad in (("last",), ("own", "own"), "own"):
        with pytest.raises(ValueError, match="`alignments` must"):
            evaluate_word_probes(model, alignments=bad)


def test_word_probes_default_to_both_alignments_natural_one_first(tiny_decoder_dir):
    model = fresh(tiny_decoder_dir)
    sizes = dict(
        tasks=("pos",),
        max_train_sentences=10,
        max_test_sentences=5,
        steps=5,
        headline="natural",
        show_progress_bar=False,
    )
    causal = evaluate_word_probes(model, attention_mode="causal", **sizes)
    assert causal["settings"]["alignments"] == ["own", "previous"]
    assert causal["pos"] == round(100 * causal["details"]["own"]["pos"]["accuracy"], 2)
    assert set(causal["per_example"]) == {"pos", "pos/previous"}
    bidirectional = evaluate_word_probes(model, attention_mode="bidirectional", **sizes)
    assert bidirectional["settings"]["alignments"] == ["previous", "own"]
    assert set(bidirectional["per_example"]) == {"pos", "pos/own"}


def test_the_headline_alignment_is_the_best_on_validation_and_the_first_on_a_tie():
    details = {
        "previous": {"ner": {"validation": 0.61}, "pos": {"validation": 0.90}, "chunk": {"validation": 0.7}},
        "own": {"ner": {"validation": 0.64}, "pos": {"validation": 0.88}, "chunk": {"validation": 0.7}},
    }
    alignments = ("previous", "own")
    assert headline_alignment(details, "ner", alignments) == "own"
    assert headline_alignment(details, "pos", alignments) == "previous"
    assert headline_alignment(details, "chunk", alignments) == "previous"  # tie: the natural one
    assert headline_alignment(details, "chunk", ("own", "previous")) == "own"
    del details["own"]["ner"]["validation"]
    assert headline_alignment(details, "ner", alignments) == "previous"  # not validated: the natural one


def test_word_probes_choose_each_headline_on_validation_sentences(tiny_decoder_dir, monkeypatch):
    import magnet_st.evaluation.word_level as word_level

    read = []
    real_split = word_level.conll2003_split

    def recording_split(root, split, max_sentences=None):
        read.append((split, max_sentences))
        return real_split(root, split, max_sentences)

    monkeypatch.setattr(word_level, "conll2003_split", recording_split)
    model = fresh(tiny_decoder_dir)
    sizes = dict(max_train_sentences=20, max_test_sentences=10, max_valid_sentences=12, steps=20)
    result = evaluate_word_probes(model, attention_mode="bidirectional", show_progress_bar=False, **sizes)
    assert ("valid", 12) in read and result["settings"]["valid_sentences"] == 12
    chosen = result["settings"]["headline_alignments"]
    assert result["settings"]["headline"] == "validation" and set(chosen) == {"ner", "chunk", "pos"}
    for task, metric in (("ner", "f1"), ("chunk", "f1"), ("pos", "accuracy")):
        validation = {alignment: result["details"][alignment][task]["validation"] for alignment in ("previous", "own")}
        assert all(0 <= value <= 1 for value in validation.values())
        best = max(validation.values())
        assert validation[chosen[task]] == best and (chosen[task] == "previous" or validation["previous"] < best)
        # The headline score, interval and record are the chosen alignment's test results; the other is kept aside.
        assert result[task] == round(100 * result["details"][chosen[task]][task][metric], 2)
        assert result["intervals"][task] == result["details"][chosen[task]][task]["interval"]
        other = "own" if chosen[task] == "previous" else "previous"
        assert set(result["per_example"]) >= {task, f"{task}/{other}"}
        assert f"{task}/{chosen[task]}" not in result["per_example"]
    read.clear()
    single = evaluate_word_probes(model, alignments=("own",), tasks=("pos",), show_progress_bar=False, **sizes)
    assert [split for split, _ in read] == ["train", "test"]  # one alignment: nothing to choose, no validation read
    assert single["settings"]["headline_alignments"] == {"pos": "own"} and single["settings"]["headline"] == "natural"
    with pytest.raises(ValueError, match="`headline` must be one of"):
        evaluate_word_probes(model, headline="test", **sizes)


def test_cli_tag(probed, tmp_path, capsys):
    model, _ = probed
    model.save(str(tmp_path / "tagger"))
    assert main(["tag", str(tmp_path / "tagger"), TEXT, "EU rejects German call."]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["text"] for line in lines] == [TEXT, "EU rejects German call."]
    assert lines[0] == predict(model, TEXT)[0]
    load_model_without_head(model).save(str(tmp_path / "plain"))
    assert main(["tag", str(tmp_path / "plain"), TEXT]) == 2
    assert "no token classification head" in capsys.readouterr().err
    assert main(["tag", str(tmp_path / "tagger"), " "]) == 2


def test_a_plain_save_over_a_tagger_save_leaves_no_tagger_behind(probed, tiny_decoder_dir, tmp_path):
    model, _ = probed
    target = tmp_path / "model"
    model.save(str(target))
    assert (target / "magnet_modules.json").is_file()
    (target / "notes.txt").write_text("mine")
    fresh(tiny_decoder_dir).save(str(target))  # the same folder, now a plain sentence encoder
    assert not (target / "magnet_modules.json").exists()
    assert (target / "notes.txt").read_text() == "mine"
    reloaded = load_model(str(target))
    assert not isinstance(reloaded[-1], type(model[-1]))  # no head left from the tagger
