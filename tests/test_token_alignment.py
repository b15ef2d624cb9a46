"""Words <-> sub-tokens: offsets, spaces glued to words, many-piece words, the previous-position shift, windows."""

import pytest
import torch

from magnet_st.modules.word_pooling import word_states
from magnet_st.tagging.alignment import (
    WordTokenizer,
    join_words,
    plan_segments,
    split_words,
    token_word_map,
)
from magnet_st.testing import base_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return base_tokenizer()


def test_join_words_spans_point_at_each_word():
    text, spans = join_words(["EU", "rejects", "1996-08-22"])
    assert text == "EU rejects 1996-08-22"
    assert [text[start:end] for start, end in spans] == ["EU", "rejects", "1996-08-22"]


def test_split_words_follows_conll_style():
    text = "Peter Blackburn's team, based in Brussels-Nord, won."
    words = [text[start:end] for start, end in split_words(text)]
    assert words == ["Peter", "Blackburn", "'s", "team", ",", "based", "in", "Brussels-Nord", ",", "won", "."]
    text = "I don't know... U.S. vs. U.N. -- J. Smith won 3-1, 1,000 at 12:30 in plan B."
    words = [text[start:end] for start, end in split_words(text)]
    assert words == [
        *("I", "do", "n't", "know", "...", "U.S.", "vs.", "U.N.", "--", "J.", "Smith", "won", "3-1", ","),
        *("1,000", "at", "12:30", "in", "plan", "B", "."),
    ]


def test_real_tokenizer_glued_spaces_and_many_piece_words(tokenizer):
    words = ["EU", "rejects", "1996-08-22", "Zürich"]
    text, spans = join_words(words)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    pieces = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    mapping = token_word_map(encoded["offset_mapping"], spans)
    # Every token belongs to exactly one word here, and words come out in order.
    assert all(len(words_of_token) == 1 for words_of_token in mapping)
    owners = [words_of_token[0] for words_of_token in mapping]
    assert owners == sorted(owners)
    # " rejects" carries its leading space in the offsets and still maps to "rejects".
    index = pieces.index("Ġrejects")
    assert encoded["offset_mapping"][index][0] == spans[1][0] - 1
    assert mapping[index] == [1]
    # The date is split into many pieces (a space-only token, one per digit, the dashes): all map to word 2.
    date_tokens = [i for i, owner in enumerate(owners) if owner == 2]
    assert len(date_tokens) >= 10
    assert pieces[date_tokens[0]] == "Ġ"  # the space the tokenizer emits alone belongs to the next word
    assert "".join(pieces[i] for i in date_tokens[1:]) == "1996-08-22"
    assert len([owner for owner in owners if owner == 3]) >= 2  # "Zürich" is split as well


def test_token_merging_two_words_belongs_to_both():
    # Words "New", "York" and "City"; a tokenizer that merges "New York" into one token.
    spans = [(0, 3), (4, 8), (9, 13)]
    offsets = [(0, 8), (8, 13)]
    assert token_word_map(offsets, spans) == [[0, 1], [2]]


def test_features_prefix_and_word_token_mask(tokenizer):
    word_tokenizer = WordTokenizer(tokenizer, max_length=64, prefix_token="bos")
    sentences = [join_words(["Peter", "Blackburn"]), join_words(["EU", "rejects", "1996"])]
    segments = word_tokenizer.segments(sentences)
    features = word_tokenizer.features(sentences, segments)
    assert features["input_ids"][:, 0].tolist() == [tokenizer.bos_token_id] * 2
    mask = features["word_token_mask"]
    assert mask.shape[:2] == (2, 3)
    assert not mask[:, :, 0].any()  # the prefix belongs to no word
    assert not mask[0, 2].any()  # padding word of the shorter sentence
    # Each word's tokens decode back to the word (with its leading space).
    for row, (text, spans) in enumerate(sentences):
        for word, (start, end) in enumerate(spans):
            ids = features["input_ids"][row][mask[row, word]]
            assert tokenizer.decode(ids).strip() == text[start:end]
    # Padding positions are masked out and belong to no word.
    assert (mask.any(1) <= features["attention_mask"].bool()).all()


def test_previous_alignment_shifts_one_position_left():
    # Token states equal their position, so averages are easy to read.
    states = torch.arange(8, dtype=torch.float).view(1, 8, 1)
    mask = torch.zeros(1, 2, 8, dtype=torch.bool)
    mask[0, 0, 0:2] = True  # word 0 on positions 0-1 (no prefix)
    mask[0, 1, 3:6] = True  # word 1 on positions 3-5
    own = word_states(states, mask, "own").squeeze(-1)
    previous = word_states(states, mask, "previous").squeeze(-1)
    assert own.tolist() == [[0.5, 4.0]]
    # Word 1 reads positions 2-4; word 0 has no position before 0, so it reads position 0 only.
    assert previous.tolist() == [[0.0, 3.0]]
    with pytest.raises(ValueError, match="alignment"):
        word_states(states, mask, "next")


def test_long_sentence_windows_fit_and_own_every_word_once():
    counts = [3, 1, 2, 5, 1, 1, 2, 3, 1, 4, 2, 2]
    segments = plan_segments(0, counts, max_tokens=8)
    assert len(segments) > 1
    for segment in segments:
        assert sum(counts[segment.first : segment.last]) <= 8
        assert segment.first <= segment.own_first < segment.own_last <= segment.last
    owned = [word for segment in segments for word in range(segment.own_first, segment.own_last)]
    assert owned == list(range(len(counts)))
    assert plan_segments(3, [2, 2], max_tokens=8)[0].own_last == 2


def test_empty_sentences_and_words_are_rejected():
    with pytest.raises(ValueError, match="Empty sentence"):
        join_words([])
    with pytest.raises(ValueError, match="Word 1"):
        join_words(["a", " "])
    with pytest.raises(TypeError, match="list of strings"):
        join_words("a b")
