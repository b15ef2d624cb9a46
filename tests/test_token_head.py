"""WordPooling and TokenClassificationHead: configuration checks, save/load with labels, feature names,
pass-through without word features, and a head folder saved before word pooling was its own module."""

import json

import pytest
import torch
from safetensors.torch import save_file

from magnet_st.modules.token_head import TokenClassificationHead
from magnet_st.modules.word_pooling import WordPooling

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def test_save_and_load_keep_labels_settings_and_weights(tmp_path):
    torch.manual_seed(0)
    head = TokenClassificationHead(16, LABELS, dropout=0.2, attention_mode="causal", task="ner")
    (tmp_path / "head").mkdir()
    head.save(str(tmp_path / "head"))
    loaded = TokenClassificationHead.load(str(tmp_path / "head"))
    assert loaded.labels == LABELS
    assert loaded.label_to_id["B-LOC"] == 3
    assert loaded.dropout == 0.2
    assert (loaded.attention_mode, loaded.task, loaded.scheme) == ("causal", "ner", "IOB2")
    for name, tensor in head.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name])
    (tmp_path / "pooling").mkdir()
    WordPooling("own", "eos").save(str(tmp_path / "pooling"))
    pooling = WordPooling.load(str(tmp_path / "pooling"))
    assert (pooling.alignment, pooling.prefix_token) == ("own", "eos")


def test_forward_reads_previous_positions_and_writes_logits():
    pooling = WordPooling("previous")
    head = TokenClassificationHead(2, ["O", "B-X"], dropout=0.0).eval()
    with torch.no_grad():
        head.linear.weight.copy_(torch.eye(2))
        head.linear.bias.zero_()
    tokens = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])
    mask = torch.tensor([[[False, True, False], [False, False, True]]])
    features = head(pooling({"token_embeddings": tokens, "word_token_mask": mask}))
    # Word 0 (position 1) reads position 0; word 1 (position 2) reads position 1.
    assert features["word_embeddings"].tolist() == [[[1.0, 0.0], [0.0, 1.0]]]
    assert features["word_logits"].tolist() == [[[1.0, 0.0], [0.0, 1.0]]]
    assert features["word_mask"].tolist() == [[True, True]]


def test_feature_names_are_configurable():
    pooling = WordPooling(
        "own",
        module_input_name="states",
        word_token_mask_name="members",
        module_output_name="words",
        word_mask_name="real",
    )
    head = TokenClassificationHead(2, ["O", "B-X"], dropout=0.0, module_input_name="words", module_output_name="tags")
    with torch.no_grad():
        head.linear.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        head.linear.bias.copy_(torch.tensor([0.5, 0.0]))
    states = torch.tensor([[[1.0, 3.0], [3.0, 5.0], [9.0, 9.0]]])
    members = torch.tensor([[[True, True, False]]])  # one word on positions 0-1: own mean (2, 4)
    features = head.eval()(pooling({"states": states, "members": members}))
    assert features["words"].tolist() == [[[2.0, 4.0]]]
    assert features["tags"].tolist() == [[[2.5, 8.0]]]
    assert features["real"].tolist() == [[True]]
    assert not {"word_embeddings", "word_logits", "word_mask"} & set(features)


def test_forward_without_word_features_passes_through():
    head = TokenClassificationHead(4, ["O", "B-X"])
    features = {"token_embeddings": torch.zeros(1, 3, 4)}
    assert WordPooling()(features) is features and "word_embeddings" not in features
    assert head(features) is features and "word_logits" not in features


def test_unknown_tags_are_named():
    head = TokenClassificationHead(4, LABELS)
    assert head.label_ids(["O", "B-PER"]) == [0, 1]
    with pytest.raises(ValueError, match="Tag 'B-ORG' in sentence 3 is not in the model's label set"):
        head.label_ids(["O", "B-ORG"], " in sentence 3")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(labels=[]), "labels"),
        (dict(labels=["O", "O"]), "duplicates"),
        (dict(labels=["O", "PER"]), "IOB2"),
        (dict(labels=["O"], dropout=1.5), "dropout"),
        (dict(labels=["O"], attention_mode="hybrid"), "`attention_mode` must be .* got 'hybrid'"),
        (dict(labels=["O"], scheme="BIO"), "scheme"),
    ],
)
def test_bad_settings_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TokenClassificationHead(4, **kwargs)


@pytest.mark.parametrize(
    "kwargs, message", [(dict(alignment="next"), "alignment"), (dict(prefix_token="cls"), "prefix_token")]
)
def test_bad_word_pooling_settings_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WordPooling(**kwargs)


def test_per_word_labels_need_no_iob2():
    head = TokenClassificationHead(4, ["NN", "VB"], scheme="none")
    assert head.labels == ["NN", "VB"]


def test_head_folder_with_word_pooling_settings_still_loads(tmp_path):
    # The layout written before word pooling was its own module: alignment and prefix_token in the head's config.
    config = {
        "embedding_dimension": 2,
        "labels": ["O", "B-X"],
        "alignment": "own",
        "dropout": 0.1,
        "prefix_token": "eos",
        "scheme": "IOB2",
        "attention_mode": "causal",
        "task": "ner",
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    weight, bias = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([0.5, -0.5])
    save_file({"classifier.1.weight": weight, "classifier.1.bias": bias}, str(tmp_path / "model.safetensors"))
    head = TokenClassificationHead.load(str(tmp_path))
    assert head.labels == ["O", "B-X"] and (head.attention_mode, head.task) == ("causal", "ner")
    assert head.legacy_word_pooling == {"alignment": "own", "prefix_token": "eos"}
    assert torch.equal(head.linear.weight, weight) and torch.equal(head.linear.bias, bias)
    # Saved again untouched, it keeps the pooling settings rather than losing them.
    (tmp_path / "again").mkdir()
    head.save(str(tmp_path / "again"))
    saved = json.loads((tmp_path / "again" / "config.json").read_text())
    assert (saved["alignment"], saved["prefix_token"]) == ("own", "eos")
