"""Token tagging on the real SmolLM2-135M: a short NER probe that saves, reloads and predicts identically."""

import pytest
import torch

from magnet_st import load_model
from magnet_st.data.conll import conll2003_split
from magnet_st.model import MagnetSentenceTransformer
from magnet_st.tagging import encode_words, predict, train_probe

pytestmark = pytest.mark.real_model


def test_real_probe_save_reload_predict(real_model, tmp_path):
    # A separate module list over the shared decoder, so the session fixture keeps its own modules.
    model = MagnetSentenceTransformer(modules=[real_model.decoder])
    train = conll2003_split(None, "train", 24)
    result = train_probe(
        model,
        [s.words for s in train],
        [s.tags["ner"] for s in train],
        eval_words=[s.words for s in train[:8]],
        eval_tags=[s.tags["ner"] for s in train[:8]],
        task="ner",
        steps=100,
        learning_rate=5e-3,
        show_progress_bar=False,
    )
    # Real states separate NER classes on seen sentences far better than the all-"O" baseline (F1 0).
    assert result.scores["f1"] > 0.3
    text = "Peter Blackburn met EU officials in Brussels on Tuesday."
    before = predict(model, text)
    model.save(str(tmp_path / "tagger"))
    reloaded = load_model(str(tmp_path / "tagger"))
    reloaded.eval()
    assert predict(reloaded, text) == before
    assert [w["word"] for w in before[0]["words"]][-2:] == ["Tuesday", "."]


def test_real_causal_and_bidirectional_states_differ_only_with_right_context(real_model):
    words = [["EU", "rejects", "German", "call"], ["EU", "rejects", "British", "lamb"]]
    causal = encode_words(real_model, words, alignments=("own",), attention_mode="causal")["own"]
    bidirectional = encode_words(real_model, words, alignments=("own",), attention_mode="bidirectional")["own"]
    torch.testing.assert_close(causal[0][:2], causal[1][:2], atol=1e-4, rtol=1e-4)
    assert not torch.allclose(bidirectional[0][:2], bidirectional[1][:2], atol=1e-3)
