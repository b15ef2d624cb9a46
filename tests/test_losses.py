"""MNTP, MSG and SSCL against independent computations, and the loss's invariances."""

import pytest
import torch
from torch.nn import functional as F

from magnet_st.attention import hybrid_attention_mask
from magnet_st.data.views import IGNORE_INDEX, MaskedSpanView, ViewConfig
from magnet_st.losses import MagnetLoss, MNTPLoss, MSGLoss, SSCLLoss, next_token_loss

TEXTS = ["The cat sat on the mat today.", "Stocks fell sharply on Monday morning.", "A short one."]


def fixed_view(model) -> MaskedSpanView:
    features = model.decoder.preprocess(TEXTS[:2])
    ids, mask = features["input_ids"], features["attention_mask"]
    span = torch.zeros_like(ids, dtype=torch.bool)
    span[0, 3:5] = True
    span[1, 2:3] = True
    mntp = torch.full_like(ids, IGNORE_INDEX)
    mntp[0, [1, 6]] = ids[0, [1, 6]]
    mntp[1, 5] = ids[1, 5]
    corrupted = ids.clone()
    corrupted[0, 1] = 62  # "_"
    msg = torch.where(span, ids, torch.full_like(ids, IGNORE_INDEX))
    return MaskedSpanView(corrupted, mask, span, mntp, msg)


def hf_causal_lm_loss(model, view: MaskedSpanView, labels: torch.Tensor) -> torch.Tensor:
    """transformers' own shifted LM loss under the same hybrid mask: an independent implementation."""
    lm = model.decoder.causal_lm
    embeds = lm.get_input_embeddings()(view.input_ids)
    mask = hybrid_attention_mask(lm.config, embeds, view.attention_mask, view.span_mask)
    return lm(inputs_embeds=embeds, attention_mask=mask, labels=labels).loss


def test_mntp_and_msg_match_transformers_lm_loss(tiny_model):
    loss = MagnetLoss(tiny_model)
    view = fixed_view(tiny_model)
    with torch.no_grad():
        mntp, msg = loss.masked_span_losses(view)
        expected_mntp = hf_causal_lm_loss(tiny_model, view, view.mntp_labels)
        expected_msg = hf_causal_lm_loss(tiny_model, view, view.msg_labels)
    torch.testing.assert_close(mntp, expected_mntp, atol=1e-5, rtol=0)
    torch.testing.assert_close(msg, expected_msg, atol=1e-5, rtol=0)


class IdentityHead:
    """A stand-in decoder whose 'logits' are the states themselves."""

    def lm_logits(self, hidden):
        return hidden


def test_span_first_token_is_predicted_from_the_state_before_the_span():
    hidden = torch.randn(1, 6, 10)
    labels = torch.full((1, 6), IGNORE_INDEX)
    labels[0, 3] = 4  # a span starting at position 3
    value = next_token_loss(IdentityHead(), hidden, labels)
    torch.testing.assert_close(value, F.cross_entropy(hidden[0, 2:3], torch.tensor([4])))


def test_sscl_matches_infonce_by_hand(tiny_model):
    loss = SSCLLoss(tiny_model)
    tiny_model.eval()  # no dropout: the positive is the anchor itself
    features = [tiny_model.decoder.preprocess(TEXTS)]
    with torch.no_grad():
        value = loss.contrastive_loss(features)
        embeddings = tiny_model.encode(TEXTS, convert_to_tensor=True)
    normed = F.normalize(embeddings, dim=-1)
    expected = F.cross_entropy(20.0 * normed @ normed.T, torch.arange(len(TEXTS)))
    torch.testing.assert_close(value, expected, atol=1e-4, rtol=0)


def test_sscl_uses_a_paraphrase_column_when_given(tiny_model):
    loss = SSCLLoss(tiny_model)
    tiny_model.eval()
    anchors = tiny_model.decoder.preprocess(TEXTS)
    positives = tiny_model.decoder.preprocess(list(reversed(TEXTS)))
    with torch.no_grad():
        own = loss.contrastive_loss([anchors])
        paraphrased = loss.contrastive_loss([anchors, positives])
    assert paraphrased > own + 1e-3


def test_masked_span_losses_do_not_depend_on_padding(tiny_model):
    loss = MagnetLoss(tiny_model)
    view = fixed_view(tiny_model)
    extra = 5

    def pad(tensor, value):
        return torch.cat([tensor, torch.full((tensor.shape[0], extra), value, dtype=tensor.dtype)], dim=1)

    padded = MaskedSpanView(
        pad(view.input_ids, 2),
        pad(view.attention_mask, 0),
        pad(view.span_mask, False),
        pad(view.mntp_labels, IGNORE_INDEX),
        pad(view.msg_labels, IGNORE_INDEX),
    )
    with torch.no_grad():
        for value, padded_value in zip(loss.masked_span_losses(view), loss.masked_span_losses(padded)):
            torch.testing.assert_close(value, padded_value, atol=1e-5, rtol=0)


def test_magnet_loss_returns_weighted_named_parts(tiny_model):
    features = [tiny_model.decoder.preprocess(TEXTS)]
    full = MagnetLoss(tiny_model, mntp_weight=1.0, sscl_weight=1.0, msg_weight=1.0, views=ViewConfig(seed=5))
    halved = MagnetLoss(tiny_model, mntp_weight=0.5, sscl_weight=2.0, msg_weight=1.0, views=ViewConfig(seed=5))
    tiny_model.eval()
    with torch.no_grad():
        parts, weighted = full(features), halved(features)
    assert set(parts) == {"mntp", "sscl", "msg"}
    torch.testing.assert_close(weighted["mntp"], 0.5 * parts["mntp"])
    torch.testing.assert_close(weighted["sscl"], 2.0 * parts["sscl"])
    assert set(MNTPLoss(tiny_model)(features)) == {"mntp"}
    assert set(MSGLoss(tiny_model)(features)) == {"msg"}


def test_gradients_reach_the_decoder_from_every_objective(tiny_decoder_dir):
    from magnet_st import load_model

    model = load_model(tiny_decoder_dir, device="cpu")
    model.train()
    features = [model.decoder.preprocess(TEXTS)]
    for name, value in MagnetLoss(model)(features).items():
        model.zero_grad()
        value.backward(retain_graph=True)  # MNTP and MSG share one forward pass
        grad = model.decoder.causal_lm.get_input_embeddings().weight.grad
        assert grad is not None and grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mntp_weight": 0, "sscl_weight": 0, "msg_weight": 0}, "All loss weights are zero"),
        ({"mntp_weight": -1}, "`mntp_weight` must be a number >= 0"),
        ({"views": ViewConfig(mask_token="a long mask")}, "`mask_token`"),
        ({"views": ViewConfig(mask_rate=0.0)}, "`mntp_weight` > 0 needs masked tokens"),
    ],
)
def test_bad_loss_options(tiny_model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        MagnetLoss(tiny_model, **kwargs)


def test_unknown_objective_and_tiny_contrastive_batch(tiny_model):
    with pytest.raises(ValueError, match=r"Unknown objective\(s\) \['mlm'\]"):
        MagnetLoss.for_objectives(tiny_model, ["mntp", "mlm"])
    assert MagnetLoss.for_objectives(tiny_model, ["msg"]).weights == {"mntp": 0.0, "sscl": 0.0, "msg": 1.0}
    with pytest.raises(ValueError, match="at least 2 texts per batch"):
        SSCLLoss(tiny_model)([tiny_model.decoder.preprocess(TEXTS[:1])])


@pytest.mark.parametrize("scope, span_pass", [("contrastive", 0.0), ("all", 0.3)])
def test_attention_dropout_scope(tiny_model, scope, span_pass):
    # Read the dropout each attention layer holds while it runs, per pass.
    loss = MagnetLoss(tiny_model, dropout=0.3, dropout_scope=scope)
    seen: list[float] = []
    hooks = [m.register_forward_pre_hook(lambda m, a: seen.append(m.attention_dropout)) for m in loss.attention_modules]
    features = [tiny_model.decoder.preprocess(TEXTS)]
    try:
        loss.masked_span_losses(loss.sample_view(features[0]))
        span_seen, seen[:] = list(seen), []
        loss.contrastive_loss(features)
    finally:
        for hook in hooks:
            hook.remove()
    assert span_seen and set(span_seen) == {span_pass}
    assert seen and set(seen) == {0.3}
    with pytest.raises(ValueError, match="`dropout_scope` must be one of"):
        MagnetLoss(tiny_model, dropout_scope="mntp")


def test_sentence_tables_find_sentence_starts(tiny_model):
    from magnet_st.data.views import sentence_starts

    loss = MagnetLoss(tiny_model)
    tokenizer = tiny_model.decoder.tokenizer
    features = tiny_model.decoder.preprocess(["Tom went home. He slept! Then? No."])
    starts = sentence_starts(features["input_ids"], loss.ends_sentence, loss.starts_word)[0]
    words = [tokenizer.decode(features["input_ids"][0, p]).strip() for p in starts.nonzero().flatten().tolist()]
    assert words == ["He", "Then", "No"]


def test_loss_views_span_whole_sentences_only_when_the_rate_asks(tiny_model):
    text = "Tom went home. He slept there all night long! Then he woke up."
    features = tiny_model.decoder.preprocess([text] * 8)
    tokens = tiny_model.decoder.tokenizer.convert_ids_to_tokens(features["input_ids"][0])
    # sentence starts, found independently: a token after one ending in ".", "!" or "?"
    starts = {p for p in range(1, len(tokens)) if tokens[p - 1].rstrip().endswith((".", "!", "?"))}

    def spans(rate: float) -> list[tuple[int, int]]:
        views = ViewConfig(sentence_span_rate=rate, pure_lm_rate=0.0, seed=3)
        mask = MagnetLoss(tiny_model, views=views).sample_view(features).span_mask
        found = []
        for row in mask.tolist():
            positions = [p for p, inside in enumerate(row) if inside]
            found.append((positions[0], positions[-1] + 1))
        return found

    assert all(start in starts and (end in starts or end == len(tokens)) for start, end in spans(1.0))
    assert not all(start in starts for start, _ in spans(0.0))  # token spans start anywhere


def test_activation_checkpointing_recomputes_each_pass_under_its_own_dropout(tiny_decoder_dir):
    from magnet_st import load_model

    def gradients(checkpointing: bool) -> torch.Tensor:
        model = load_model(tiny_decoder_dir, device="cpu")
        loss = MagnetLoss(model, dropout=0.3, views=ViewConfig(seed=1))
        if checkpointing:
            context = {"use_reentrant": False, "context_fn": loss.checkpoint_context}
            model.decoder.causal_lm.activation_checkpointing_enable(context)
        model.train()
        torch.manual_seed(0)
        sum(loss([model.decoder.preprocess(TEXTS)]).values()).backward()
        return model.decoder.causal_lm.get_input_embeddings().weight.grad

    torch.testing.assert_close(gradients(True), gradients(False), atol=1e-5, rtol=1e-4)
