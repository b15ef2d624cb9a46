import pytest
import torch

from magnet_st.generation import generate


def manual_greedy(model, prompt, steps):
    """Reference: argmax of a full causal forward at each step (no cache, no transformers generate)."""
    decoder = model.decoder
    ids = decoder.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    new = []
    with torch.no_grad():
        for _ in range(steps):
            features = {"input_ids": torch.tensor([ids + new]), "attention_mask": torch.ones(1, len(ids) + len(new))}
            hidden = decoder(features, attention_mode="causal")["token_embeddings"]
            new.append(int(decoder.lm_logits(hidden[0, -1]).argmax()))
    return new


def test_generation_is_causal_even_when_model_encodes_bidirectionally(tiny_model):
    assert tiny_model.decoder.config.is_causal is False  # the encoding default
    prompt = "The quick brown fox"
    text = generate(tiny_model, prompt, max_new_tokens=6, min_new_tokens=6)
    expected = tiny_model.decoder.tokenizer.decode(manual_greedy(tiny_model, prompt, 6), skip_special_tokens=True)
    assert text == expected


def test_batch_with_left_padding_matches_one_by_one(tiny_model):
    prompts = ["Hi", "A much longer prompt with many more words than the first", "Middle sized prompt"]
    together = generate(tiny_model, prompts, max_new_tokens=5, min_new_tokens=5)
    alone = [generate(tiny_model, prompt, max_new_tokens=5, min_new_tokens=5) for prompt in prompts]
    assert together == alone


def test_stream_yields_the_same_text(tiny_model):
    prompt = "Once upon a time"
    pieces = list(generate(tiny_model, prompt, max_new_tokens=8, min_new_tokens=8, stream=True))
    assert "".join(pieces) == generate(tiny_model, prompt, max_new_tokens=8, min_new_tokens=8)


def test_sampling_is_reproducible_with_seed(tiny_model):
    kwargs = dict(max_new_tokens=8, min_new_tokens=8, do_sample=True, top_k=0, temperature=1.5)
    first = generate(tiny_model, "Hello", seed=1, **kwargs)
    assert first == generate(tiny_model, "Hello", seed=1, **kwargs)
    assert first != generate(tiny_model, "Hello", seed=2, **kwargs)


def test_chat_template_changes_the_prompt(tiny_model, monkeypatch):
    seen = []
    causal_lm = tiny_model.decoder.causal_lm
    original = causal_lm.generate

    def spy(**kwargs):
        seen.append(kwargs["input_ids"][0].tolist())
        return original(**kwargs)

    monkeypatch.setattr(causal_lm, "generate", spy)
    generate(tiny_model, "What is 2+2?", chat_template=True, max_new_tokens=2)
    rendered = tiny_model.decoder.tokenizer.decode(seen[0])
    assert "<|im_start|>user" in rendered and rendered.rstrip().endswith("<|im_start|>assistant")


def test_generate_kwargs_pass_through(tiny_model):
    sequences = generate(tiny_model, ["Hi"], max_new_tokens=3, do_sample=True, num_return_sequences=3, seed=0)
    assert isinstance(sequences, list) and len(sequences) == 3


@pytest.mark.parametrize(
    "prompts, kwargs, error, message",
    [
        ("", {}, ValueError, "empty string"),
        (None, {}, TypeError, "prompts"),
        ([1], {}, TypeError, "prompts\\[0\\]"),
        ("hi", {"max_new_tokens": 0}, ValueError, "max_new_tokens"),
        ("hi", {"max_new_tokens": 5000}, ValueError, "window"),
        (["a", "b"], {"stream": True}, ValueError, "one prompt"),
        ("hi", {"is_causal": False}, ValueError, "is_causal"),
        ("hi", {"batch_size": 0}, ValueError, "batch_size"),
    ],
)
def test_bad_input(tiny_model, prompts, kwargs, error, message):
    with pytest.raises(error, match=message):
        generate(tiny_model, prompts, **kwargs)


@pytest.mark.real_model
def test_real_model_knows_paris(real_model):
    assert "Paris" in generate(real_model, "The capital of France is", max_new_tokens=4)
