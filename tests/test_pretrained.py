"""Pretrained models shipped as an adapter: built once into the cache, equal to peft's own merge."""

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from magnet_st import load_model
from magnet_st import pretrained as pretrained_module
from magnet_st.lora import add_lora, default_lora_config, save_adapter
from magnet_st.pretrained import PRETRAINED_MODELS, PretrainedModel


@pytest.fixture
def shipped(tmp_path, tiny_decoder_dir, monkeypatch):
    """A pretrained entry over the tiny base with a random (non-zero) adapter, and an empty cache."""
    model = load_model(tiny_decoder_dir, device="cpu")
    torch.manual_seed(0)
    add_lora(model, default_lora_config(r=4))
    with torch.no_grad():
        for name, parameter in model.decoder.model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.05)  # peft starts B at zero: make the adapter change the model
    adapter = tmp_path / "adapter"
    save_adapter(model, adapter)
    monkeypatch.setenv("MAGNET_ST_CACHE", str(tmp_path / "cache"))
    spec = PretrainedModel(name="magnet-tiny", base=tiny_decoder_dir, description="test", folder=adapter)
    monkeypatch.setitem(PRETRAINED_MODELS, "magnet-tiny", spec)
    return spec


def test_pretrained_equals_peft_merge_and_is_built_once(shipped, monkeypatch):
    model = load_model("magnet-tiny", device="cpu")
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(shipped.base), str(shipped.folder))
    expected = reference.merge_and_unload().state_dict()
    unadapted = AutoModelForCausalLM.from_pretrained(shipped.base).state_dict()
    got = model.decoder.causal_lm.state_dict()
    assert set(got) == set(expected)
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value, atol=1e-6, rtol=0)
    assert not torch.equal(
        got["model.layers.0.self_attn.q_proj.weight"], unadapted["model.layers.0.self_attn.q_proj.weight"]
    )
    assert model.encode(["a short text"]).shape == (1, model.get_embedding_dimension())

    built = list((pretrained_module.cache_dir() / "pretrained").iterdir())
    assert len(built) == 1 and built[0].name.startswith("magnet-tiny-")
    monkeypatch.setattr(pretrained_module, "load_adapter", None, raising=False)  # a rebuild would fail now
    again = load_model("magnet-tiny", device="cpu")
    assert list((pretrained_module.cache_dir() / "pretrained").iterdir()) == built
    for name, value in again.decoder.causal_lm.state_dict().items():
        torch.testing.assert_close(value, got[name], atol=0, rtol=0)


def test_pretrained_without_its_adapter_names_the_file(shipped, tmp_path, monkeypatch):
    monkeypatch.setitem(
        PRETRAINED_MODELS, "magnet-tiny", PretrainedModel("magnet-tiny", shipped.base, "test", folder=tmp_path / "x")
    )
    with pytest.raises(FileNotFoundError, match="has no adapter in this installation"):
        load_model("magnet-tiny")


def test_shipped_reference_model_files():
    spec = PRETRAINED_MODELS["magnet-smollm2-135m"]
    adapter = spec.folder / "adapter_model.safetensors"
    assert adapter.is_file()
    assert adapter.stat().st_size <= 10 * 1024 * 1024
    assert (spec.folder / "adapter_config.json").is_file() and (spec.folder / "training_log.json").is_file()


@pytest.mark.real_model
def test_reference_model_loads_and_exports(tmp_path):
    from sentence_transformers import SentenceTransformer

    model = load_model("magnet-smollm2-135m", device="cpu")
    texts = ["A man is playing a guitar.", "Someone plays an instrument.", "The stock market fell today."]
    embeddings = model.encode(texts, normalize_embeddings=True)
    assert embeddings[0] @ embeddings[1] > embeddings[0] @ embeddings[2]
    model.save(str(tmp_path / "exported"))
    plain = SentenceTransformer(str(tmp_path / "exported"), device="cpu")
    torch.testing.assert_close(
        torch.tensor(plain.encode(texts, normalize_embeddings=True)), torch.tensor(embeddings), atol=1e-4, rtol=0
    )
