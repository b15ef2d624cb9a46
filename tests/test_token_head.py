"""TokenClassificationHead: configuration checks, save/load with labels, pass-through without word features."""

import pytest
import torch

from magnet_st.modules.token_head import TokenClassificationHead

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def test_save_and_load_keep_labels_settings_and_weights(tmp_path):
    torch.manual_seed(0)
    head = TokenClassificationHead(
        16, LABELS, alignment="own", dropout=0.2, prefix_token="eos", attention_mode="causal", task="ner"
    )
    head.save(str(tmp_path))
    loaded = TokenClassificationHead.load(str(tmp_path))
    assert loaded.labels == LABELS
    assert loaded.label_to_id["B-LOC"] == 3
    assert (loaded.alignment, loaded.dropout, loaded.prefix_token) == ("own", 0.2, "eos")
    assert (loaded.attention_mode, loaded.task, loaded.scheme) == ("causal", "ner", "IOB2")
    for name, tensor in head.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name])


def test_forward_reads_previous_positions_and_writes_logits():
    head = TokenClassificationHead(2, ["O", "B-X"], dropout=0.0).eval()
    with torch.no_grad():
        head.linear.weight.copy_(torch.eye(2))
        head.linear.bias.zero_()
    tokens = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])
    mask = torch.tensor([[[False, True, False], [False, False, True]]])
    features = head({"token_embeddings": tokens, "word_token_mask": mask})
    # Word 0 (position 1) reads position 0; word 1 (position 2) reads position 1.
    assert features["word_logits"].tolist() == [[[1.0, 0.0], [0.0, 1.0]]]
    assert features["word_mask"].tolist() == [[True, True]]


def test_forward_without_word_features_passes_through():
    head = TokenClassificationHead(4, ["O", "B-X"])
    features = {"token_embeddings": torch.zeros(1, 3, 4)}
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
        (dict(labels=["O"], alignment="next"), "alignment"),
        (dict(labels=["O"], dropout=1.5), "dropout"),
        (dict(labels=["O"], prefix_token="cls"), "prefix_token"),
        (dict(labels=["O"], attention_mode="hybrid"), "attention_mode"),
    ],
)
def test_bad_settings_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TokenClassificationHead(4, **kwargs)


def test_per_word_labels_need_no_iob2():
    head = TokenClassificationHead(4, ["NN", "VB"], scheme="none")
    assert head.labels == ["NN", "VB"]
