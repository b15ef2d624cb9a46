"""seqeval scores on hand-checked examples."""

import pytest

from magnet_st.tagging import tagging_scores


def test_entity_scores_hand_checked():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]
    # Gold entities: PER(0-1), LOC(3), ORG; predicted: PER(0-1), ORG(3), ORG -> 2 of 3 right either way.
    scores = tagging_scores(gold, predicted)
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 / 3)
    assert scores["accuracy"] == pytest.approx(5 / 6)
    assert scores["words"] == 6


def test_partial_span_is_not_an_entity_hit():
    scores = tagging_scores([["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]])
    assert scores["f1"] == 0.0 and scores["precision"] == 0.0
    assert scores["accuracy"] == pytest.approx(2 / 3)


def test_unequal_precision_and_recall():
    # One correct LOC plus one spurious MISC: precision 1/2, recall 1/1.
    scores = tagging_scores([["B-LOC", "O"]], [["B-LOC", "B-MISC"]])
    assert (scores["precision"], scores["recall"]) == (pytest.approx(0.5), pytest.approx(1.0))
    assert scores["f1"] == pytest.approx(2 / 3)


def test_pos_gets_accuracy_only():
    scores = tagging_scores([["NN", "VB"]], [["NN", "NN"]], scheme="none")
    assert scores == {"accuracy": 0.5, "words": 2}


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="Sequence 0"):
        tagging_scores([["O", "O"]], [["O"]])
