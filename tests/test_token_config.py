"""TaggerConfig: one validated set of tagger settings, per-method training defaults, keyword overrides."""

import pytest

from magnet_st import AttentionMode
from magnet_st.tagging import TaggerConfig
from magnet_st.tagging.config import LORA_DEFAULTS, PROBE_DEFAULTS


def test_unset_training_fields_take_the_method_defaults():
    probe = TaggerConfig().with_defaults(PROBE_DEFAULTS)
    assert (probe.steps, probe.learning_rate, probe.batch_size) == (4000, 5e-4, 32)
    lora = TaggerConfig().with_defaults(LORA_DEFAULTS)
    assert (lora.steps, lora.learning_rate, lora.batch_size) == (500, 2e-4, 8)
    given = TaggerConfig(steps=7, learning_rate=1e-2).with_defaults(PROBE_DEFAULTS)
    assert (given.steps, given.learning_rate, given.batch_size) == (7, 1e-2, 32)


def test_eval_interval_is_a_quarter_of_the_steps_unless_given():
    assert TaggerConfig(steps=10).eval_interval == 2
    assert TaggerConfig(steps=3).eval_interval == 1
    assert TaggerConfig(steps=10, eval_steps=7).eval_interval == 7


def test_build_applies_keyword_options_on_top_and_checks_them_again():
    base = TaggerConfig(task="ner", alignment="own")
    built = TaggerConfig.build(base, {"steps": 5})
    assert (built.task, built.alignment, built.steps) == ("ner", "own", 5)
    assert base.steps is None  # the given config is not changed
    assert TaggerConfig.build(None, {"task": "pos", "scheme": "none"}).scheme == "none"
    with pytest.raises(ValueError, match="`steps` must be a positive integer, got 0"):
        TaggerConfig.build(base, {"steps": 0})
    with pytest.raises(TypeError, match="max_step"):
        TaggerConfig.build(None, {"max_step": 5})
    with pytest.raises(TypeError, match="`config` must be a TaggerConfig"):
        TaggerConfig.build({"task": "ner"}, {})


def test_attention_mode_and_labels_are_normalised():
    config = TaggerConfig(attention_mode=AttentionMode.CAUSAL, labels=("O", "B-X"))
    assert config.attention_mode == "causal" and config.labels == ["O", "B-X"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(task=3), "`task`"),
        (dict(scheme="BIO"), "`scheme`"),
        (dict(labels=["O", "PER"]), "IOB2"),
        (dict(labels=[]), "`labels`"),
        (dict(alignment="next"), "`alignment`"),
        (dict(attention_mode="hybrid"), "`attention_mode` must be .* got 'hybrid'"),
        (dict(prefix_token="cls"), "`prefix_token`"),
        (dict(dropout=1.0), "`dropout`"),
        (dict(steps=0), "`steps`"),
        (dict(batch_size=True), "`batch_size`"),
        (dict(eval_steps=-1), "`eval_steps`"),
        (dict(learning_rate=0), "`learning_rate`"),
        (dict(learning_rate="fast"), "`learning_rate`"),
        (dict(seed=1.5), "`seed`"),
        (dict(alignment="first", label_all_tokens="yes"), "`label_all_tokens`"),
        (dict(alignment="previous", label_all_tokens=True), "`label_all_tokens`"),
    ],
)
def test_bad_settings_name_their_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TaggerConfig(**kwargs)
