"""The same code paths on a CUDA device (skipped where there is none): placement, bf16 training, agreement
with the CPU results."""

import numpy as np
import pytest
import torch
from test_infill import cached_logits, full_recompute_logits

from magnet_st import load_model
from magnet_st.generation import generate, infill
from magnet_st.generation.scoring import span_log_likelihoods
from magnet_st.tagging import predict, train_probe
from magnet_st.training import TrainConfig, build_trainer, train

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

TEXTS = ["A short one.", "A somewhat longer sentence about the weather in spring.", "Hi"]
STORY = "Tom was hungry. [BLANK] He ate the whole pizza and [BLANK] full."


@pytest.fixture(scope="module")
def cpu_model(tiny_decoder_dir):
    model = load_model(tiny_decoder_dir, max_seq_length=128, device="cpu")
    model.eval()
    return model


@pytest.fixture(scope="module")
def cuda_model(tiny_decoder_dir):
    model = load_model(tiny_decoder_dir, max_seq_length=128, device="cuda")
    model.eval()
    return model


@pytest.mark.parametrize("mode", ["bidirectional", "causal"])
def test_embeddings_on_cuda_match_cpu_and_ignore_batching(cpu_model, cuda_model, mode):
    on_cpu = cpu_model.encode(TEXTS, attention_mode=mode)
    on_gpu = cuda_model.encode(TEXTS, attention_mode=mode)
    np.testing.assert_allclose(on_gpu, on_cpu, atol=1e-4, rtol=0)
    one_by_one = np.stack([cuda_model.encode([text], attention_mode=mode)[0] for text in TEXTS])
    np.testing.assert_allclose(one_by_one, on_gpu, atol=1e-5, rtol=0)


def test_bf16_embeddings_stay_close_to_fp32(tiny_decoder_dir, cuda_model):
    bf16 = load_model(tiny_decoder_dir, max_seq_length=128, device="cuda", model_kwargs={"dtype": torch.bfloat16})
    bf16.eval()
    full = cuda_model.encode(TEXTS, convert_to_tensor=True)
    half = bf16.encode(TEXTS, convert_to_tensor=True).float()
    assert torch.nn.functional.cosine_similarity(full, half).min() > 0.99


def test_infill_on_cuda_matches_full_recompute_and_cpu(cpu_model, cuda_model):
    result = infill(cuda_model, STORY, length=[4, 2], output_logits=True)
    assert result.fills[0].logits.device.type == "cuda"
    reference = full_recompute_logits(cuda_model, STORY, result)
    assert torch.allclose(cached_logits(result), reference.float(), atol=1e-4)
    on_cpu = infill(cpu_model, STORY, length=[4, 2])
    assert [fill.token_ids for fill in on_cpu.fills] == [fill.token_ids for fill in result.fills]
    automatic = infill(cuda_model, [STORY, "The cat [BLANK] on the mat."], batch_size=2)
    assert [fill.length for fill in automatic[1].fills] == [
        fill.length for fill in infill(cpu_model, "The cat [BLANK] on the mat.").fills
    ]


def test_generate_and_span_scores_on_cuda_match_cpu(cpu_model, cuda_model):
    assert generate(cuda_model, "Once upon a time", max_new_tokens=8) == generate(
        cpu_model, "Once upon a time", max_new_tokens=8
    )
    texts, references = ["Tom was hungry. [BLANK] He slept."], [" He ate a pizza."]
    for context in ("both", "left"):
        ((gpu, count),) = span_log_likelihoods(cuda_model, texts, references, context=context)
        ((cpu, _),) = span_log_likelihoods(cpu_model, texts, references, context=context)
        assert count == 5 and abs(gpu - cpu) < 1e-3


def test_bf16_training_on_cuda_saves_a_working_model(tiny_decoder_dir, tmp_path):
    data = tmp_path / "texts.txt"
    data.write_text(
        "\n".join(f"Sentence number {i} talks about topic {i % 7} at some length today." for i in range(64))
    )
    config = TrainConfig(
        data=str(data),
        output_dir=str(tmp_path / "out"),
        base=tiny_decoder_dir,
        max_steps=3,
        batch_size=4,
        max_seq_length=32,
        logging_steps=1,
        save_steps=10,
    )
    assert build_trainer(config).args.bf16 == torch.cuda.is_bf16_supported()
    model = train(config)
    assert next(model.parameters()).device.type == "cuda"
    reloaded = load_model(str(tmp_path / "out"), device="cuda")
    embeddings = reloaded.encode(TEXTS)
    assert np.isfinite(embeddings).all()
    np.testing.assert_allclose(embeddings, model.encode(TEXTS), atol=1e-4, rtol=0)


def test_tagger_predicts_the_same_on_cuda_and_trains_there(tiny_decoder_dir):
    words = [["Peter", "lives", "in", "Paris", "."], ["Anna", "visited", "Berlin", "."]]
    tags = [["B-PER", "O", "O", "B-LOC", "O"], ["B-PER", "O", "B-LOC", "O"]]
    texts = ["Peter lives in Paris.", "Anna visited Berlin today."]
    model = load_model(tiny_decoder_dir, max_seq_length=64, device="cpu")
    train_probe(model, words, tags, steps=50, learning_rate=1e-2, show_progress_bar=False)
    on_cpu = predict(model, texts)
    model.to("cuda")
    on_gpu = predict(model, texts)
    assert [w["label"] for r in on_gpu for w in r["words"]] == [w["label"] for r in on_cpu for w in r["words"]]
    trained_there = load_model(tiny_decoder_dir, max_seq_length=64, device="cuda")
    result = train_probe(
        trained_there,
        words,
        tags,
        eval_words=words,
        eval_tags=tags,
        steps=50,
        learning_rate=1e-2,
        show_progress_bar=False,
    )
    assert result.history and all(np.isfinite(entry["loss"]) for entry in result.history)
    assert [len(r["words"]) for r in predict(trained_there, texts)] == [len(r["words"]) for r in on_cpu]
