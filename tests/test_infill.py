import json

import pytest
import torch

from magnet_st.generation import infill
from magnet_st.generation.layout import build_layout
from magnet_st.generation.lengths import (
    SCORED_AFTER,
    completion_scores,
    is_sentence_blank,
    sentence_blank_length,
    target_logprobs,
)


def full_recompute_logits(model, text, result):
    """Reference: one hybrid forward over context + kept span tokens (no cache), logits before each span token."""
    decoder = model.decoder
    layout = build_layout(decoder, text, [fill.length for fill in result.fills])
    tokens = dict(zip(layout.context_positions, layout.context_ids))
    span_positions = []
    for start, fill in zip(layout.gap_starts, result.fills):
        for offset, token in enumerate(fill.token_ids):
            tokens[start + offset] = token
            span_positions.append(start + offset)
    positions = sorted(tokens)
    features = {
        "input_ids": torch.tensor([[tokens[p] for p in positions]]),
        "attention_mask": torch.ones(1, len(positions), dtype=torch.long),
        "span_mask": torch.tensor([[p in span_positions for p in positions]]),
        "position_ids": torch.tensor([positions]),
    }
    device = next(decoder.parameters()).device
    features = {name: value.to(device) for name, value in features.items()}
    with torch.no_grad():
        hidden = decoder(features, attention_mode="hybrid")["token_embeddings"][0]
        logits = decoder.lm_logits(hidden)
    index_of = {p: i for i, p in enumerate(positions)}
    # The state of the token at position p-1 predicts the token at p.
    return torch.stack([logits[index_of[p - 1]] for p in span_positions])


def cached_logits(result):
    return torch.cat([fill.logits for fill in result.fills])


@pytest.mark.parametrize(
    "text, length",
    [
        ("The cat [BLANK] on the mat.", 4),
        ("[BLANK] is the capital of France.", 3),  # blank at the very start
        ("Once upon a time [BLANK]", 5),  # blank at the very end: plain generation after the context
        ("A [BLANK] b and [BLANK] c d e.", [2, 3]),  # several blanks, the second sees the first
        ("A [BLANK] b and [BLANK] c d e.", None),  # automatic lengths
    ],
)
def test_cached_infill_matches_full_recompute(tiny_model, text, length):
    result = infill(tiny_model, text, length=length, max_auto_length=5, output_logits=True)
    reference = full_recompute_logits(tiny_model, text, result)
    cached = cached_logits(result)
    assert cached.shape == reference.shape
    assert torch.allclose(cached, reference.float(), atol=1e-4), (cached - reference).abs().max()


def test_cached_infill_matches_full_recompute_sampled_eager(tiny_decoder_dir):
    from magnet_st import load_model

    model = load_model(tiny_decoder_dir, max_seq_length=128, model_kwargs={"attn_implementation": "eager"})
    text = "One [BLANK] two three [BLANK] four."
    result = infill(model, text, length=[3, 2], do_sample=True, seed=3, output_logits=True)
    reference = full_recompute_logits(model, text, result)
    assert torch.allclose(cached_logits(result), reference.float(), atol=1e-4)


def test_fixed_length_is_respected_and_text_is_rebuilt(tiny_model):
    result = infill(tiny_model, "The cat [BLANK] on the mat.", length=4)
    fill = result.fills[0]
    assert fill.length == 4 and not fill.auto_length
    assert result.text == "The cat" + fill.text + " on the mat."
    assert fill.score == pytest.approx(fill.logprob / 4)


def count_backbone_calls(model):
    calls = []
    hook = model.decoder.backbone.register_forward_hook(
        lambda module, args, kwargs, output: calls.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True
    )
    return calls, hook


def test_context_is_encoded_once_per_text(tiny_model):
    texts = ["A [BLANK] b c.", "Longer text here with [BLANK] and also [BLANK] at the end."]
    calls, hook = count_backbone_calls(tiny_model)
    try:
        infill(tiny_model, texts, length=[[4], [3, 4]], do_sample=True, seed=0, num_candidates=3)
    finally:
        hook.remove()
    prefill = [shape for shape in calls if shape[1] > 1]
    decode = [shape for shape in calls if shape[1] == 1]
    # One context pass for both texts together (batch 2, not 2 x 3 candidates, not once per token).
    assert len(prefill) == 1 and prefill[0][0] == 2
    # Every other call feeds one token per row; at most 4 tokens for each of at most 2 blanks.
    assert all(shape == (6, 1) for shape in decode)
    assert len(decode) <= 8


def test_known_length_decode_steps(tiny_model):
    calls, hook = count_backbone_calls(tiny_model)
    try:
        infill(tiny_model, "The cat [BLANK] on the mat.", length=5)
    finally:
        hook.remove()
    # One context pass, then 4 steps: the first token comes from the context pass, the last is never fed.
    assert len(calls) == 5 and calls[0][1] > 1 and all(shape == (1, 1) for shape in calls[1:])


def test_batch_of_different_lengths_matches_one_by_one(tiny_model):
    texts = [
        "Short [BLANK] one.",
        "A much longer text, with more words in it, has a [BLANK] in the middle of it.",
        "[BLANK] x",
    ]
    lengths = [[3], [4], [2]]
    batched = infill(tiny_model, texts, length=lengths, output_logits=True)
    for text, length, together in zip(texts, lengths, batched):
        alone = infill(tiny_model, text, length=length, output_logits=True)
        assert alone.text == together.text
        assert torch.allclose(cached_logits(alone), cached_logits(together), atol=1e-4)


def test_greedy_is_deterministic_and_sampling_reproducible(tiny_model):
    text = "Once [BLANK] upon a time."
    assert infill(tiny_model, text, length=6).text == infill(tiny_model, text, length=6).text
    first = infill(tiny_model, text, length=6, do_sample=True, seed=7, num_candidates=4, top_k=50, top_p=0.9)
    again = infill(tiny_model, text, length=6, do_sample=True, seed=7, num_candidates=4, top_k=50, top_p=0.9)
    other = infill(tiny_model, text, length=6, do_sample=True, seed=8, num_candidates=4, top_k=50, top_p=0.9)
    assert [c.text for c in first.candidates] == [c.text for c in again.candidates]
    assert [c.text for c in first.candidates] != [c.text for c in other.candidates]
    scores = [c.score for c in first.candidates]
    assert len(scores) == 4 and scores == sorted(scores, reverse=True)


def test_top_k_one_sampling_equals_greedy(tiny_model):
    text = "The cat [BLANK] on the mat."
    greedy = infill(tiny_model, text, length=5)
    sampled = infill(tiny_model, text, length=5, do_sample=True, top_k=1, seed=0)
    assert greedy.text == sampled.text


def test_sentence_blank_gets_the_mean_sentence_length_without_extra_passes(tiny_model):
    tokenizer = tiny_model.decoder.tokenizer
    sentences = ["Tom was hungry.", "He ate the whole pizza and felt full afterwards.", "Then he slept."]
    counts = [len(tokenizer(" " + sentence, add_special_tokens=False)["input_ids"]) for sentence in sentences]
    text = f"{sentences[0]} [BLANK] {sentences[1]} {sentences[2]}"
    calls, hook = count_backbone_calls(tiny_model)
    try:
        result = infill(tiny_model, text)
    finally:
        hook.remove()
    fill = result.fills[0]
    assert fill.auto_length and fill.length == round(sum(counts) / len(counts))
    assert len([shape for shape in calls if shape[1] > 1]) == 1  # the context pass only: no candidate decodes
    assert infill(tiny_model, text, max_auto_length=3).fills[0].length == 3  # clipped


def causal_text_logprob(model, ids, start):
    """log p(ids[start:] | ids[:start]) from the plain transformers causal LM (no magnet_st attention code;
    is_causal=True because a MAGNET config is saved bidirectional)."""
    with torch.no_grad():
        logits = model.decoder.causal_lm(input_ids=torch.tensor([ids]), is_causal=True).logits[0].float()
    logp = torch.log_softmax(logits[:-1], dim=-1)
    return float(sum(logp[p - 1, ids[p]] for p in range(start, len(ids))))


def test_inner_blank_length_maximises_the_completed_text_likelihood(tiny_model):
    # Shorter than the window: the fill sees the whole text, and only the first SCORED_AFTER tokens after the
    # blank are scored.
    text = "The cat [BLANK] on the mat in the kitchen of the old house by the river."
    candidates = (1, 2, 3, 5)
    longest = infill(tiny_model, text, length=5).fills[0].token_ids
    layout = build_layout(tiny_model.decoder, text, [5])
    before = layout.context_ids[: layout.predictor_index[0] + 1]
    after = layout.context_ids[len(before) :]
    assert len(after) > SCORED_AFTER
    after = after[:SCORED_AFTER]
    scores = {n: causal_text_logprob(tiny_model, before + longest[:n] + after, len(before)) for n in candidates}
    best = max(candidates, key=scores.get)
    auto = infill(tiny_model, text, phrase_lengths=candidates).fills[0]
    assert auto.auto_length and auto.length == best
    assert auto.token_ids == infill(tiny_model, text, length=best).fills[0].token_ids  # then decoded in place
    assert infill(tiny_model, text, phrase_lengths=candidates, max_auto_length=2).fills[0].length <= 2


def test_inner_blank_choice_reads_a_window_around_the_blank(tiny_model):
    calls, hook = count_backbone_calls(tiny_model)
    long_left = "word " * 300
    try:
        infill(
            tiny_model, long_left + "The cat [BLANK] on the mat in the kitchen of the old house.", phrase_lengths=(1, 2)
        )
    finally:
        hook.remove()
    passes = [shape for shape in calls if shape[1] > 1]
    # The window's hybrid pass, the causal pass over before + fill and the one over the candidates' right
    # context each read at most 2 x 32 + 3 tokens; then the full text is encoded once for the in-place decode.
    assert len(passes) == 4 and passes[2][0] == 2 and passes[3][1] > 300
    assert passes[2][1] <= SCORED_AFTER - 1  # each candidate's scored tokens after the blank (the first: pass 2)
    assert max(shape[1] for shape in passes[:3]) <= 2 * 32 + 3


def test_single_candidate_length_needs_no_ranking_passes(tiny_model):
    text = "The cat [BLANK] on the mat."
    calls, hook = count_backbone_calls(tiny_model)
    try:
        fill = infill(tiny_model, text, phrase_lengths=(2, 3), max_auto_length=2).fills[0]
    finally:
        hook.remove()
    assert fill.auto_length and fill.length == 2
    assert fill.token_ids == infill(tiny_model, text, length=2).fills[0].token_ids
    # Only the in-place decode runs: one context pass and one step (the last token is never fed back).
    assert [shape for shape in calls if shape[1] > 1] == [calls[0]] and len(calls) == 2


def test_target_logprobs_match_log_softmax():
    logits = torch.randn(3, 5, 11) * 4
    targets = torch.randint(0, 11, (3, 5))
    reference = torch.log_softmax(logits, dim=-1).gather(-1, targets[..., None])[..., 0]
    assert torch.allclose(target_logprobs(logits, targets), reference, atol=1e-5)


def test_mixed_blanks_choose_each_length_by_its_rule(tiny_model):
    text = "Anna opened the door. [BLANK] The cat [BLANK] on the mat."
    result = infill(tiny_model, text, phrase_lengths=(1, 2))
    sentence, inner = result.fills
    tokenizer = tiny_model.decoder.tokenizer
    # Complete sentences only: "The cat" before the inner blank is a fragment, so only the first counts.
    assert sentence.length == len(tokenizer(" Anna opened the door.", add_special_tokens=False)["input_ids"])
    assert inner.length in (1, 2) and sentence.auto_length and inner.auto_length
    given = infill(tiny_model, text, length=[None, 4], phrase_lengths=(1, 2)).fills
    assert given[0].auto_length and not given[1].auto_length and given[1].length == 4


def test_layout_against_a_hand_written_reference(tiny_model):
    """The in-place layout written out by hand from the tokenizer's pieces (SmolLM2: no BOS prefix, BOS 1,
    EOS 2): positions, gaps, the predictor of each gap and the roles of every position."""
    decoder = tiny_model.decoder
    tokenizer = decoder.tokenizer
    pieces = {"A": [49], " b and": [278, 284], " c d e.": [265, 287, 297, 30], " is red.": [314, 2382, 30]}
    pieces |= {"Once upon a time": [6403, 1980, 253, 655]}
    for piece, ids in pieces.items():
        assert tokenizer(piece, add_special_tokens=False)["input_ids"] == ids
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id) == (1, 2)

    # "A _ _ b and _ _ _ c d e. EOS": position 0 is A, gap 1-2, "b and" at 3-4, gap 5-7, "c d e." at 8-11.
    layout = build_layout(decoder, "A [BLANK] b and [BLANK] c d e.", [2, 3])
    assert layout.context_ids == [49, 278, 284, 265, 287, 297, 30, 2]
    assert layout.context_positions == [0, 3, 4, 8, 9, 10, 11, 12]
    assert layout.gap_starts == [1, 5] and layout.lengths == [2, 3]
    assert layout.predictor_index == [0, 2]  # "A" predicts the first blank, "and" the second
    assert layout.at_end == [False, False]
    roles = "CSSCCSSSCCCCC"  # per position 0-12: context or span
    span_positions = {p for start, n in zip(layout.gap_starts, layout.lengths) for p in range(start, start + n)}
    assert "".join("S" if p in span_positions else "C" for p in range(13)) == roles
    assert not span_positions & set(layout.context_positions)

    # A blank at the start gets a start token (BOS) to be predicted from.
    layout = build_layout(decoder, "[BLANK] is red.", [2])
    assert layout.context_ids == [1, 314, 2382, 30, 2] and layout.context_positions == [0, 3, 4, 5, 6]
    assert layout.gap_starts == [1] and layout.predictor_index == [0] and layout.at_end == [False]

    # A blank at the end may end the text: EOS sits after the gap.
    layout = build_layout(decoder, "Once upon a time [BLANK]", [3])
    assert layout.context_ids == [6403, 1980, 253, 655, 2] and layout.context_positions == [0, 1, 2, 3, 7]
    assert layout.gap_starts == [4] and layout.predictor_index == [3] and layout.at_end == [True]


def test_custom_blank_marker(tiny_model):
    result = infill(tiny_model, "The cat ___ on the mat.", blank="___", length=2)
    assert result.fills[0].length == 2 and "___" not in result.text


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"texts": "no marker here"}, ValueError, "no \\[BLANK\\] marker"),
        ({"texts": ""}, ValueError, "empty string"),
        ({"texts": []}, ValueError, "empty"),
        ({"texts": 42}, TypeError, "texts"),
        ({"texts": ["ok [BLANK]", 3]}, TypeError, "texts\\[1\\]"),
        ({"length": 0}, ValueError, "`length`"),
        ({"length": -2}, ValueError, "`length`"),
        ({"length": 5000}, ValueError, "window"),
        ({"length": [1, 2]}, ValueError, "one length per blank"),
        ({"temperature": 0}, ValueError, "temperature"),
        ({"top_p": 1.5}, ValueError, "top_p"),
        ({"top_k": -1}, ValueError, "top_k"),
        ({"num_candidates": 0}, ValueError, "num_candidates"),
        ({"num_candidates": 2}, ValueError, "do_sample"),
        ({"max_auto_length": 0}, ValueError, "max_auto_length"),
        ({"phrase_lengths": []}, ValueError, "phrase_lengths"),
        ({"phrase_lengths": [2, 0]}, ValueError, "phrase_lengths"),
        ({"phrase_lengths": "12"}, ValueError, "phrase_lengths"),
        ({"blank": ""}, ValueError, "blank"),
        ({"texts": "a [BLANK][BLANK] b"}, ValueError, "no text between"),
    ],
)
def test_bad_input_gives_clear_errors(tiny_model, kwargs, error, message):
    arguments = {"texts": "The cat [BLANK] on the mat."} | kwargs
    texts = arguments.pop("texts")
    with pytest.raises(error, match=message):
        infill(tiny_model, texts, **arguments)


@pytest.mark.real_model
def test_real_model_cached_infill_matches_full_recompute(real_model):
    text = "Tom was hungry. [BLANK] He ate the whole pizza and [BLANK] full."
    result = infill(real_model, text, length=[4, 2], output_logits=True)
    reference = full_recompute_logits(real_model, text, result)
    assert torch.allclose(cached_logits(result), reference.float(), atol=1e-3)


@pytest.mark.real_model
def test_real_model_automatic_lengths(real_model):
    tokenizer = real_model.decoder.tokenizer
    sentences = ["Tom was hungry.", "He ate the whole pizza and felt full."]
    counts = [len(tokenizer(" " + sentence, add_special_tokens=False)["input_ids"]) for sentence in sentences]
    between = infill(real_model, f"{sentences[0]} [BLANK] {sentences[1]}").fills[0]
    assert between.auto_length and between.length == round(sum(counts) / len(counts))
    text = "The capital of France is [BLANK], a city on the Seine."
    inside = infill(real_model, text, phrase_lengths=(1, 2, 4)).fills[0]
    longest = infill(real_model, text, length=4).fills[0].token_ids
    layout = build_layout(real_model.decoder, text, [4])
    before = layout.context_ids[: layout.predictor_index[0] + 1]
    after = layout.context_ids[len(before) :][:SCORED_AFTER]
    scores = {n: causal_text_logprob(real_model, before + longest[:n] + after, len(before)) for n in (1, 2, 4)}
    assert inside.auto_length and inside.length == max(scores, key=scores.get)


def test_inner_blank_never_picks_a_special_token(tiny_model):
    tokenizer = tiny_model.decoder.tokenizer
    eos = tokenizer.eos_token_id
    # Make EOS the model's favourite everywhere by biasing the LM head: an inner blank must still avoid it.
    head = tiny_model.decoder.causal_lm.get_output_embeddings()
    original = head.weight.data[eos].clone()
    head.weight.data[eos] = 5.0  # a large logit for EOS from every state
    try:
        inner = infill(tiny_model, "Alpha beta [BLANK] gamma delta.", length=4)
        end = infill(tiny_model, "Alpha beta gamma [BLANK]", length=4)
    finally:
        head.weight.data[eos] = original
    assert not set(inner.fills[0].token_ids) & set(tokenizer.all_special_ids)
    assert eos in end.fills[0].token_ids  # at the end of a text, EOS is a fair choice


@pytest.mark.parametrize(
    "before, after, expected",
    [
        ("Tom was hungry.", "He ate.", True),
        ("", "He ate.", True),  # at the start, before a sentence
        ("Tom was hungry!", "", True),  # at the end, after a sentence
        ('He said "stop."', "“Why?” she asked.", True),  # closing and opening quotes
        ("The cat", "on the mat.", False),  # inside a sentence
        ("Tom was hungry.", "and ate.", False),  # the text after it continues a sentence
        ("Once upon a time", "", False),
        ("", "", False),  # nothing to measure
    ],
)
def test_is_sentence_blank(before, after, expected):
    assert is_sentence_blank(before, after) is expected


def test_sentence_blank_length_counts_complete_sentences_only(tiny_model):
    tokenizer = tiny_model.decoder.tokenizer

    def count(sentence):
        return len(tokenizer(" " + sentence, add_special_tokens=False)["input_ids"])

    pieces = ["One two three. Four five", " six. Seven eight nine ten eleven.", ""]
    # Blank 0 sits inside "Four five _ six." (both fragments dropped); blank 1 follows a full sentence.
    expected = round((count("One two three.") + count("Seven eight nine ten eleven.")) / 2)
    assert sentence_blank_length(tokenizer, pieces, [False, True]) == expected
    assert sentence_blank_length(tokenizer, ["The cat", " on the mat"], [False]) is None


def test_cli_infill_json(tiny_decoder_dir, capsys):
    from magnet_st.cli import main

    text = "The cat [BLANK] on the mat."
    assert main(["infill", tiny_decoder_dir, text, "--length", "2", "--json"]) == 0
    given = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert given["candidates"][0]["fills"][0]["length"] == 2 and not given["candidates"][0]["fills"][0]["automatic"]
    assert main(["infill", tiny_decoder_dir, text, "--phrase-lengths", "1", "3", "--json"]) == 0
    auto = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["candidates"][0]["fills"][0]
    assert auto["automatic"] and auto["length"] in (1, 3)


@pytest.mark.parametrize("after_tokens", [1, 6])
def test_completion_scores_match_plain_causal_scoring(tiny_model, after_tokens):
    tokenizer = tiny_model.decoder.tokenizer
    before = tokenizer("Once upon a time there", add_special_tokens=False)["input_ids"]
    fill = tokenizer(" was a small red fox", add_special_tokens=False)["input_ids"]
    after = tokenizer(" who lived in the deep woods", add_special_tokens=False)["input_ids"][:after_tokens]
    lengths = [1, 3, len(fill)]
    scores = completion_scores(tiny_model.decoder, before, fill, after, lengths)
    for length, score in zip(lengths, scores):
        reference = causal_text_logprob(tiny_model, before + fill[:length] + after, len(before))
        assert score == pytest.approx(reference, abs=1e-3)


def test_automatic_length_at_the_end_without_eos(tiny_decoder_dir):
    from magnet_st import load_model

    model = load_model(tiny_decoder_dir, pooling="mean", append_eos=False, device="cpu")
    fill = infill(model, "Once upon a time [BLANK]", phrase_lengths=(1, 2, 3)).fills[0]
    assert fill.auto_length and fill.length in (1, 2, 3)
