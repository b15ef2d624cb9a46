"""Saving: plain sentence-transformers reload, magnet_st reload with the LM head, model card, atomicity."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import magnet_st
from magnet_st.lora import add_lora, has_lora, load_adapter, merge_lora, save_adapter
from magnet_st.model import SENTENCE_PROMPT

TEXTS = ["The cat sat on the mat.", "A man plays the guitar for a small crowd.", "Rain."]


@pytest.fixture(scope="module")
def saved(tiny_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "magnet-tiny"
    tiny_model.save(str(path))
    return path


def first_state_sees_last_token(model, **kwargs) -> bool:
    a, b = model.encode(["one two three four", "one two three five"], output_value="token_embeddings", **kwargs)
    return bool((a[0] - b[0]).abs().max() > 1e-5)


def test_plain_sentence_transformers_reload_without_magnet_st(saved, tiny_model):
    # A fresh interpreter that never imports magnet_st and passes no trust_remote_code.
    script = f"""
import json, sys
from sentence_transformers import SentenceTransformer
model = SentenceTransformer({str(saved)!r})
assert "magnet_st" not in sys.modules
a, b = model.encode(["one two three four", "one two three five"], output_value="token_embeddings")
emb = model.encode({TEXTS!r})
print(json.dumps({{"emb": emb.tolist(), "first_state_change": float((a[0] - b[0]).abs().max())}}))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    out = json.loads(result.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(np.array(out["emb"]), tiny_model.encode(TEXTS), atol=1e-5, rtol=0)
    assert out["first_state_change"] > 1e-5  # still bidirectional


def test_plain_folder_layout(saved):
    modules = json.loads((saved / "modules.json").read_text())
    assert modules[0]["type"] == "sentence_transformers.base.modules.transformer.Transformer"
    assert json.loads((saved / "config.json").read_text())["is_causal"] is False
    assert json.loads((saved / "config_sentence_transformers.json").read_text())["default_prompt_name"] == "sentence"


def test_magnet_reload_keeps_everything(saved, tiny_model):
    reloaded = magnet_st.load_model(str(saved), device="cpu")
    assert isinstance(reloaded.decoder, magnet_st.MagnetDecoder)
    np.testing.assert_allclose(reloaded.encode(TEXTS), tiny_model.encode(TEXTS), atol=1e-5, rtol=0)
    assert first_state_sees_last_token(reloaded)
    assert reloaded.decoder.max_seq_length == tiny_model.decoder.max_seq_length
    # the LM head came back: same next-token logits as the original
    ids = tiny_model.decoder.tokenizer("The capital of", return_tensors="pt")
    with torch.no_grad():
        original = tiny_model.decoder.causal_lm(**ids, is_causal=True).logits
        again = reloaded.decoder.causal_lm(**ids, is_causal=True).logits
    torch.testing.assert_close(again, original, atol=1e-5, rtol=0)


def test_model_card_names_magnet_base_pooling_and_prompt(saved):
    card = (saved / "README.md").read_text()
    assert "MAGNET" in card and "2501.08648" in card
    assert "Base model: `tiny-llama" in card
    assert "Pooling: lasttoken" in card
    assert SENTENCE_PROMPT.strip() in card


def test_saving_over_an_existing_model_replaces_its_files_only(tiny_decoder_dir, saved, tmp_path):
    target = tmp_path / "model"
    magnet_st.load_model(tiny_decoder_dir, pooling="mean").save(str(target))
    (target / "notes.txt").write_text("the user's, beside an old save")
    magnet_st.load_model(str(saved)).save(str(target))
    assert (target / "notes.txt").read_text() == "the user's, beside an old save"
    assert magnet_st.load_model(str(target))[1].pooling_mode == "lasttoken"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_failed_save_leaves_the_previous_save_intact(tiny_model, tmp_path, monkeypatch):
    target = tmp_path / "model"
    tiny_model.save(str(target))
    before = sorted(p.name for p in target.iterdir())

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(tiny_model.decoder), "save", crash)
    with pytest.raises(OSError, match="disk full"):
        tiny_model.save(str(target))
    assert sorted(p.name for p in target.iterdir()) == before
    assert magnet_st.load_model(str(target)).encode(["still here"]).shape == (1, 64)


def test_lora_attach_save_reload_merge(tiny_decoder_dir, tmp_path):
    model = magnet_st.load_model(tiny_decoder_dir)
    add_lora(model)
    assert has_lora(model)
    torch.manual_seed(0)
    for name, parameter in model.decoder.model.named_parameters():
        if "lora_B" in name:  # a trained-looking adapter (fresh LoRA B is zero)
            torch.nn.init.normal_(parameter, std=0.05)
    model.eval()
    unmerged = model.encode(TEXTS)
    assert np.abs(unmerged - magnet_st.load_model(tiny_decoder_dir).encode(TEXTS)).max() > 1e-3

    save_adapter(model, tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_config.json").exists()
    assert not (tmp_path / "adapter" / "model.safetensors").exists()  # adapter only
    reloaded = load_adapter(magnet_st.load_model(tiny_decoder_dir), tmp_path / "adapter")
    reloaded.eval()
    np.testing.assert_allclose(reloaded.encode(TEXTS), unmerged, atol=1e-5, rtol=0)

    model.save(str(tmp_path / "export"))  # merges into a copy for export
    assert has_lora(model)
    np.testing.assert_allclose(magnet_st.load_model(str(tmp_path / "export")).encode(TEXTS), unmerged, atol=1e-4)
    merge_lora(reloaded)
    assert not has_lora(reloaded)
    np.testing.assert_allclose(reloaded.encode(TEXTS), unmerged, atol=1e-4, rtol=0)


def test_lora_misuse_is_named(tiny_decoder_dir, tmp_path):
    model = magnet_st.load_model(tiny_decoder_dir)
    with pytest.raises(ValueError, match="no LoRA adapter"):
        merge_lora(model)
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        load_adapter(model, tmp_path)
    add_lora(model)
    with pytest.raises(ValueError, match="already has a LoRA adapter"):
        add_lora(model)


def test_constructor_restores_a_lora_save_as_training_left_it(tiny_decoder_dir, tmp_path):
    from magnet_st.model import MagnetSentenceTransformer

    model = magnet_st.load_model(tiny_decoder_dir)
    add_lora(model)
    torch.manual_seed(1)
    for name, parameter in model.decoder.model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(parameter, std=0.05)
    model.save(str(tmp_path / "checkpoint"))
    restored = MagnetSentenceTransformer(str(tmp_path / "checkpoint"))
    assert isinstance(restored.decoder, magnet_st.MagnetDecoder) and has_lora(restored)
    live, again = model.state_dict(), restored.state_dict()
    assert again.keys() == live.keys()  # what the trainer's resume loads into the live model
    for key, value in live.items():
        torch.testing.assert_close(again[key], value, atol=0, rtol=0)
    assert any(p.requires_grad for n, p in restored.named_parameters() if "lora_" in n)
    assert restored.default_prompt_name == "sentence"


def test_constructor_reloads_a_plain_save_with_the_lm_head(saved, tiny_model):
    from magnet_st.model import MagnetSentenceTransformer

    assert "_load_with_module_classes" not in vars(MagnetSentenceTransformer)  # no private override
    reloaded = MagnetSentenceTransformer(str(saved), device="cpu")
    assert isinstance(reloaded.decoder, magnet_st.MagnetDecoder) and not has_lora(reloaded)
    np.testing.assert_allclose(reloaded.encode(TEXTS), tiny_model.encode(TEXTS), atol=1e-5, rtol=0)


def test_lora_resume_without_base_weights_is_named(tiny_decoder_dir, tmp_path):
    import shutil

    from magnet_st.model import MagnetSentenceTransformer

    base = tmp_path / "base"
    shutil.copytree(tiny_decoder_dir, base)
    model = add_lora(magnet_st.load_model(str(base)))
    model.save(str(tmp_path / "checkpoint"))
    shutil.rmtree(base)
    with pytest.raises(FileNotFoundError, match="needs its base weights"):
        MagnetSentenceTransformer(str(tmp_path / "checkpoint"))
    assert not has_lora(magnet_st.load_model(str(tmp_path / "checkpoint")))  # the merged export still loads


def test_interrupted_staging_leaves_the_target_untouched(tmp_path):
    from magnet_st.persistence import atomic_folder

    target = tmp_path / "folder"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError, match="interrupted"), atomic_folder(target) as staging:
        (staging / "new.txt").write_text("new")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"]
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    with atomic_folder(target) as staging:
        (staging / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"]
