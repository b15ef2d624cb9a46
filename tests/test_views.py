"""The masked-and-spanned view: roles, targets and their invariants."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from magnet_st.data.views import IGNORE_INDEX, ViewConfig, make_masked_span_view, sample_spans

SPECIAL = {0, 1, 2}


def random_batch(lengths: list[int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.randint(10, 500, (len(lengths), width), generator=generator)
    mask = torch.zeros(len(lengths), width, dtype=torch.long)
    for row, length in enumerate(lengths):
        mask[row, :length] = 1
        ids[row, length - 1] = 2  # EOS
        ids[row, length:] = 2  # padding
    return ids, mask


def view_of(lengths, seed, **options):
    ids, mask = random_batch(lengths, seed)
    config = ViewConfig(seed=seed, **options)
    view = make_masked_span_view(
        ids,
        mask,
        config=config,
        mask_token_id=7,
        vocab_size=500,
        special_ids=SPECIAL,
        generator=torch.Generator().manual_seed(seed),
    )
    return ids, mask, view


@settings(max_examples=80, deadline=None)
@given(lengths=st.lists(st.integers(2, 120), min_size=1, max_size=4), seed=st.integers(0, 10_000))
def test_spans_and_masked_positions_never_overlap(lengths, seed):
    ids, mask, view = view_of(lengths, seed)
    mntp = view.mntp_labels != IGNORE_INDEX
    msg = view.msg_labels != IGNORE_INDEX
    assert not (mntp & view.span_mask).any()  # MNTP targets are context tokens
    assert not ((mntp | msg | view.span_mask) & ~mask.bool()).any()  # padding is nobody's target
    assert not mntp[:, 0].any() and not msg[:, 0].any()  # position 0 has no previous state
    after_span = torch.zeros_like(view.span_mask)
    after_span[:, 1:] = view.span_mask[:, :-1] & ~view.span_mask[:, 1:]
    assert not (mntp & after_span).any()  # the first context token after a span is no target
    assert torch.equal(view.mntp_labels[mntp], ids[mntp])  # labels are the original tokens
    assert torch.equal(view.msg_labels[msg], ids[msg])
    assert torch.equal(view.input_ids[view.span_mask], ids[view.span_mask])  # spans keep their tokens
    assert torch.equal(view.input_ids[~mntp], ids[~mntp])  # only MNTP targets are corrupted
    assert msg.sum() >= 1  # every text trains MSG on something
    assert not (mntp & torch.isin(ids, torch.tensor(sorted(SPECIAL)))).any()


def test_rates_match_the_defaults_on_long_texts():
    ids, mask, view = view_of([100] * 200, seed=3)
    span_fraction = view.span_mask.float().mean().item()
    mntp = view.mntp_labels != IGNORE_INDEX
    replaced = (view.input_ids[mntp] == 7).float().mean().item()
    pure = view.span_mask.all(dim=1).float().mean().item()
    assert 0.05 <= pure <= 0.17  # 10% pure-LM examples
    assert 0.15 < span_fraction < 0.40  # 15-30% spans, plus the pure-LM rows
    assert 0.72 < replaced < 0.88  # 80% of MNTP targets become the mask token
    eligible_rows = ~view.span_mask.all(dim=1)
    context = (~view.span_mask & mask.bool())[eligible_rows].sum().item()
    assert 0.12 < mntp[eligible_rows].sum().item() / context < 0.22  # ~20% of eligible context


def test_long_spans_are_8_to_32_tokens():
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        for start, end in sample_spans(200, ViewConfig(), generator):
            assert 8 <= end - start <= 32


def test_same_seed_same_view():
    _, _, first = view_of([30, 12, 50], seed=11)
    _, _, again = view_of([30, 12, 50], seed=11)
    assert torch.equal(first.input_ids, again.input_ids) and torch.equal(first.span_mask, again.span_mask)


def test_text_too_short_for_a_span_is_named():
    with pytest.raises(ValueError, match="Text 1 of the batch has 1 token"):
        view_of([5, 1], seed=0)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"mask_rate": 1.5}, "`mask_rate` must be in"),
        ({"span_fraction": (0.4, 0.2)}, "`span_fraction`"),
        ({"max_spans": -1}, "`max_spans`"),
        ({"mask_token_rate": 0.9, "random_token_rate": 0.2}, "at most 1"),
    ],
)
def test_bad_view_options(options, message):
    with pytest.raises(ValueError, match=message):
        ViewConfig(**options)


def test_sentence_spans_cover_one_whole_later_sentence():
    # Rows with sentence starts at known positions; an independent check of the span against them.
    lengths = [20, 20, 9]
    ids, mask = random_batch(lengths, seed=3)
    starts = torch.zeros_like(ids, dtype=torch.bool)
    starts[0, [6, 13]] = True  # sentences [0, 6), [6, 13), [13, 20)
    starts[1, 10] = True  # sentences [0, 10), [10, 20)
    seen = set()
    for seed in range(40):
        view = make_masked_span_view(
            ids,
            mask,
            config=ViewConfig(sentence_span_rate=1.0, pure_lm_rate=0.0),
            mask_token_id=7,
            vocab_size=500,
            special_ids=SPECIAL,
            generator=torch.Generator().manual_seed(seed),
            sentence_start_mask=starts,
        )
        spans = [tuple(view.span_mask[row].nonzero().flatten().tolist()) for row in range(2)]
        assert spans[0] in (tuple(range(6, 13)), tuple(range(13, 20)))
        assert spans[1] == tuple(range(10, 20))
        seen.add(spans[0])
        assert view.span_mask[2].sum() >= 1  # a one-sentence text falls back to token spans
    assert len(seen) == 2  # both later sentences get drawn


def test_sentence_span_rate_zero_keeps_token_spans():
    ids, mask = random_batch([30], seed=1)
    starts = torch.zeros_like(ids, dtype=torch.bool)
    starts[0, 12] = True
    common = dict(mask_token_id=7, vocab_size=500, special_ids=SPECIAL)
    with_starts = make_masked_span_view(
        ids,
        mask,
        config=ViewConfig(sentence_span_rate=0.0),
        generator=torch.Generator().manual_seed(5),
        sentence_start_mask=starts,
        **common,
    )
    without = make_masked_span_view(
        ids, mask, config=ViewConfig(sentence_span_rate=0.0), generator=torch.Generator().manual_seed(5), **common
    )
    assert torch.equal(with_starts.span_mask, without.span_mask)
