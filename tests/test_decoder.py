"""MagnetDecoder: attention modes, padding and batch invariance, backends, architectures."""

import numpy as np
import pytest
import torch

import magnet_st
from magnet_st.model import SENTENCE_PROMPT
from magnet_st.testing import TINY_ARCHITECTURES, make_tiny_decoder

TEXTS = [
    "The cat sat on the mat.",
    "A man is playing a guitar on a small stage while people listen.",
    "Rain.",
    "Stocks fell sharply on Monday after the central bank raised rates again.",
]


def token_states(model, input_ids: torch.Tensor, mode: str, span_mask=None) -> torch.Tensor:
    features = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
    if span_mask is not None:
        features["span_mask"] = span_mask
    with torch.no_grad():
        return model.decoder.forward(features, attention_mode=mode)["token_embeddings"]


@pytest.fixture(scope="module")
def ids(tiny_model):
    return tiny_model.decoder.tokenizer("one two three four five six seven", return_tensors="pt")["input_ids"]


def change_token(input_ids: torch.Tensor, position: int) -> torch.Tensor:
    changed = input_ids.clone()
    changed[0, position] = (changed[0, position] + 7) % 1000
    return changed


def test_bidirectional_first_state_sees_last_token(tiny_model, ids):
    before = token_states(tiny_model, ids, "bidirectional")
    after = token_states(tiny_model, change_token(ids, -1), "bidirectional")
    assert (before[0, 0] - after[0, 0]).abs().max() > 1e-4


def test_causal_first_state_ignores_last_token(tiny_model, ids):
    before = token_states(tiny_model, ids, "causal")
    after = token_states(tiny_model, change_token(ids, -1), "causal")
    torch.testing.assert_close(before[0, :-1], after[0, :-1], atol=1e-6, rtol=0)


def test_hybrid_follows_the_magnet_rule(tiny_model, ids):
    length = ids.shape[1]
    span = torch.zeros(1, length, dtype=torch.bool)
    span[0, 3:5] = True  # a two-token span in the middle
    base = token_states(tiny_model, ids, "hybrid", span)
    # context never sees the span: changing a span token leaves every context state unchanged
    after_span = token_states(tiny_model, change_token(ids, 4), "hybrid", span)
    context = ~span[0]
    torch.testing.assert_close(base[0, context], after_span[0, context], atol=1e-6, rtol=0)
    assert (base[0, 4] - after_span[0, 4]).abs().max() > 1e-4
    # the first span token does not see the second (causal among span tokens)
    torch.testing.assert_close(base[0, 3], after_span[0, 3], atol=1e-6, rtol=0)
    # span tokens see the right context, and context sees context on both sides
    after_right = token_states(tiny_model, change_token(ids, length - 1), "hybrid", span)
    assert (base[0, 3] - after_right[0, 3]).abs().max() > 1e-4
    assert (base[0, 0] - after_right[0, 0]).abs().max() > 1e-4


def test_hybrid_extremes_equal_the_plain_modes(tiny_model, ids):
    all_context = torch.zeros_like(ids, dtype=torch.bool)
    torch.testing.assert_close(
        token_states(tiny_model, ids, "hybrid", all_context),
        token_states(tiny_model, ids, "bidirectional"),
        atol=1e-5,
        rtol=0,
    )
    torch.testing.assert_close(
        token_states(tiny_model, ids, "hybrid", ~all_context),
        token_states(tiny_model, ids, "causal"),
        atol=1e-5,
        rtol=0,
    )


@pytest.mark.parametrize("mode", ["bidirectional", "causal"])
def test_embeddings_do_not_depend_on_batch_or_padding(tiny_model, mode):
    alone = np.stack([tiny_model.encode([text], attention_mode=mode)[0] for text in TEXTS])
    together = tiny_model.encode(TEXTS, attention_mode=mode, batch_size=4)
    pairs = tiny_model.encode(TEXTS, attention_mode=mode, batch_size=2)
    np.testing.assert_allclose(together, alone, atol=1e-5, rtol=0)
    np.testing.assert_allclose(pairs, alone, atol=1e-5, rtol=0)


def test_hybrid_states_do_not_depend_on_padding(tiny_model):
    tokenizer = tiny_model.decoder.tokenizer
    features = tokenizer(TEXTS[:2], padding=True, return_tensors="pt")
    span = torch.zeros_like(features["input_ids"], dtype=torch.bool)
    span[:, 2:4] = True
    span &= features["attention_mask"].bool()
    with torch.no_grad():
        batch = tiny_model.decoder.forward({**features, "span_mask": span}, attention_mode="hybrid")["token_embeddings"]
        short_len = int(features["attention_mask"][0].sum())
        single = {key: value[:1, :short_len] for key, value in features.items()}
        alone = tiny_model.decoder.forward({**single, "span_mask": span[:1, :short_len]}, attention_mode="hybrid")
    torch.testing.assert_close(batch[0, :short_len], alone["token_embeddings"][0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("mode", ["bidirectional", "causal"])
def test_eager_and_sdpa_agree(tiny_decoder_dir, tiny_model, mode):
    eager = magnet_st.load_model(tiny_decoder_dir, max_seq_length=128, model_kwargs={"attn_implementation": "eager"})
    np.testing.assert_allclose(
        eager.encode(TEXTS, attention_mode=mode), tiny_model.encode(TEXTS, attention_mode=mode), atol=1e-4, rtol=0
    )


def test_eager_and_sdpa_agree_in_hybrid(tiny_decoder_dir, tiny_model, ids):
    eager = magnet_st.load_model(tiny_decoder_dir, device="cpu", model_kwargs={"attn_implementation": "eager"})
    span = torch.zeros_like(ids, dtype=torch.bool)
    span[0, 2:5] = True
    torch.testing.assert_close(
        token_states(eager, ids, "hybrid", span), token_states(tiny_model, ids, "hybrid", span), atol=1e-4, rtol=0
    )


@pytest.mark.parametrize("architecture", TINY_ARCHITECTURES)
def test_every_architecture_gets_all_three_modes(tmp_path, architecture):
    model = magnet_st.load_model(make_tiny_decoder(tmp_path, architecture))
    model.eval()
    ids = model.decoder.tokenizer("alpha beta gamma delta epsilon", return_tensors="pt")["input_ids"]
    bidirectional = token_states(model, ids, "bidirectional")
    causal = token_states(model, ids, "causal")
    changed = change_token(ids, -1)
    assert (bidirectional[0, 0] - token_states(model, changed, "bidirectional")[0, 0]).abs().max() > 1e-5
    torch.testing.assert_close(causal[0, 0], token_states(model, changed, "causal")[0, 0], atol=1e-6, rtol=0)
    all_context = torch.zeros_like(ids, dtype=torch.bool)
    torch.testing.assert_close(token_states(model, ids, "hybrid", all_context), bidirectional, atol=1e-5, rtol=0)
    torch.testing.assert_close(token_states(model, ids, "hybrid", ~all_context), causal, atol=1e-5, rtol=0)
    assert model.encode(["one sentence", "and another, longer one"]).shape == (2, 64)


def test_prompt_is_applied_through_sentence_transformers(tiny_model):
    default = tiny_model.encode(TEXTS[:1])
    explicit = tiny_model.encode(TEXTS[:1], prompt=SENTENCE_PROMPT)
    without = tiny_model.encode(TEXTS[:1], prompt="")
    np.testing.assert_allclose(default, explicit, atol=1e-6, rtol=0)
    assert np.abs(default - without).max() > 1e-4
    assert tiny_model.default_prompt_name == "sentence"


def test_text_is_plain_with_eos_and_never_chat_rendered(tiny_model):
    tokenizer = tiny_model.decoder.tokenizer
    features = tiny_model.decoder.preprocess(["Hello there"])
    plain = tokenizer("Hello there", add_special_tokens=False)["input_ids"]
    assert features["input_ids"][0].tolist() == plain + [tokenizer.eos_token_id]


def test_long_text_is_truncated_to_max_seq_length(tiny_decoder_dir):
    model = magnet_st.load_model(tiny_decoder_dir, max_seq_length=16, prompt=None)
    states = model.encode(["word " * 200], output_value="token_embeddings")
    assert states[0].shape[0] == 16
    model.decoder.max_seq_length = 32
    assert model.encode(["word " * 200], output_value="token_embeddings")[0].shape[0] == 32


def test_mean_pooling_option(tiny_decoder_dir, tiny_model):
    mean = magnet_st.load_model(tiny_decoder_dir, pooling="mean", max_seq_length=128, device="cpu")
    assert mean[1].pooling_mode == "mean" and not mean[1].include_prompt
    states = mean.encode(["a short text"], output_value="token_embeddings", prompt="")[0]
    np.testing.assert_allclose(mean.encode(["a short text"], prompt="")[0], states.mean(0).numpy(), atol=1e-5)
    assert np.abs(mean.encode(TEXTS[:1]) - tiny_model.encode(TEXTS[:1])).max() > 1e-4
