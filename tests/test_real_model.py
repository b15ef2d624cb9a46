"""The real SmolLM2-135M, loaded offline from the embedded default."""

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.real_model


def test_real_model_encodes_sensibly(real_model):
    embeddings = real_model.encode(
        ["A man is playing a guitar.", "Someone plays the guitar.", "The stock market fell today."],
        convert_to_tensor=True,
    )
    assert embeddings.shape == (3, 576) and torch.isfinite(embeddings).all()
    similarity = real_model.similarity(embeddings, embeddings)
    assert similarity[0, 1] > similarity[0, 2]


def test_real_model_generates_paris_in_causal_mode(real_model):
    tokenizer = real_model.decoder.tokenizer
    inputs = tokenizer("The capital of France is", return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        output = real_model.decoder.causal_lm.generate(**inputs, max_new_tokens=6, do_sample=False, is_causal=True)
    assert "Paris" in tokenizer.decode(output[0, inputs["input_ids"].shape[1] :])


def test_real_model_plain_reload_is_identical(real_model, tmp_path):
    from sentence_transformers import SentenceTransformer

    texts = ["The capital of France is Paris.", "Bidirectional attention stays after reload."]
    real_model.save(str(tmp_path / "real"))
    plain = SentenceTransformer(str(tmp_path / "real"))
    np.testing.assert_allclose(plain.encode(texts), real_model.encode(texts), atol=1e-5, rtol=0)
