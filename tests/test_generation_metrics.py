import math

import pytest
import torch

from magnet_st.data.paths import DataNotFoundError
from magnet_st.data.rocstories import story_cloze_examples
from magnet_st.evaluation.infilling import evaluate_infilling, rocstories_examples, wikipedia_examples
from magnet_st.evaluation.repetition import rep_n, rep_sen
from magnet_st.generation.layout import BLANK
from magnet_st.generation.lengths import split_sentences
from magnet_st.generation.scoring import span_log_likelihoods, span_perplexity


def test_rep_n_counts_repeated_ngrams():
    assert rep_n(["a b c d"], 2) == 0.0
    assert rep_n(["a a a a a"], 1) == pytest.approx(0.8)  # 1 unique of 5
    assert rep_n([[1, 2, 1, 2, 1, 2]], 2) == pytest.approx(1 - 2 / 5)
    # Averaged per continuation; a continuation shorter than n is left out.
    assert rep_n(["a b a b", "x"], 2) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="`n`"):
        rep_n(["a"], 0)


def test_rep_sen_counts_repeated_sentences():
    assert split_sentences("One. Two! Three?\nFour") == ["One.", "Two!", "Three?", "Four"]
    assert rep_sen(["I ran. I ran. I ran. Then I sat."]) == pytest.approx(0.5)
    assert rep_sen(["A b. C d.", "X. X."]) == pytest.approx(0.25)


def manual_span_logprob(model, prefix_ids, span_ids, suffix_ids, mode):
    decoder = model.decoder
    ids = prefix_ids + span_ids + suffix_ids
    features = {
        "input_ids": torch.tensor([ids]),
        "attention_mask": torch.ones(1, len(ids), dtype=torch.long),
        "span_mask": torch.tensor([[False] * len(prefix_ids) + [True] * len(span_ids) + [False] * len(suffix_ids)]),
    }
    with torch.no_grad():
        hidden = decoder(features, attention_mode=mode)["token_embeddings"][0]
        logp = torch.log_softmax(decoder.lm_logits(hidden).float(), dim=-1)
    return sum(float(logp[len(prefix_ids) + i - 1, token]) for i, token in enumerate(span_ids))


def test_span_log_likelihoods_match_manual_scoring(tiny_model):
    tokenizer = tiny_model.decoder.tokenizer
    texts = [f"Tom was hungry. {BLANK} Then he slept.", f"Short {BLANK} text that is longer than the first one."]
    references = [" He ate a pizza.", " and"]
    both = span_log_likelihoods(tiny_model, texts, references, context="both", batch_size=2)
    left = span_log_likelihoods(tiny_model, texts, references, context="left", batch_size=2)
    eos = tokenizer.eos_token_id
    for (text, reference), (both_lp, count), (left_lp, _) in zip(zip(texts, references), both, left):
        before, after = text.split(BLANK)
        prefix = tokenizer(before.rstrip(), add_special_tokens=False)["input_ids"]
        span = tokenizer(reference, add_special_tokens=False)["input_ids"]
        suffix = tokenizer(after, add_special_tokens=False)["input_ids"] + [eos]
        assert count == len(span)
        assert both_lp == pytest.approx(manual_span_logprob(tiny_model, prefix, span, suffix, "hybrid"), abs=1e-3)
        assert left_lp == pytest.approx(manual_span_logprob(tiny_model, prefix, span, [], "causal"), abs=1e-3)
    assert both != left  # the right context changes the score
    ppl = span_perplexity(tiny_model, texts, references, context="both")
    total = sum(lp for lp, _ in both) / sum(n for _, n in both)
    assert ppl == pytest.approx(math.exp(-total), rel=1e-5)


def test_span_scoring_errors(tiny_model):
    with pytest.raises(ValueError, match="exactly one"):
        span_log_likelihoods(tiny_model, ["no blank"], [" x"])
    with pytest.raises(ValueError, match="context"):
        span_log_likelihoods(tiny_model, [f"a {BLANK} b"], [" x"], context="right")
    with pytest.raises(ValueError, match="differ in length"):
        span_log_likelihoods(tiny_model, [f"a {BLANK} b"], [" x", " y"])


def test_rocstories_examples_blank_the_middle_sentence():
    examples = rocstories_examples(limit=3)
    text, reference = examples[0]
    assert (
        text
        == f"Kelly banged herself yesterday. It left a massive bruise. {BLANK} Yet the pain wouldn't. She would be in pain another week."
    )
    assert reference == " She wanted the pain to go away."
    assert len(examples) == 3


def test_story_cloze_examples_take_the_right_ending_and_blank_the_third_sentence(tmp_path, tiny_model):
    folder = tmp_path / "story_cloze_2016"
    folder.mkdir()
    header = "InputStoryid,InputSentence1,InputSentence2,InputSentence3,InputSentence4,"
    header += "RandomFifthSentenceQuiz1,RandomFifthSentenceQuiz2,AnswerRightEnding"
    rows = ["a,One.,Two.,Three.,Four.,Right.,Wrong.,1", 'b,Uno.,"Dos, y.",Tres.,Cuatro.,Mal.,Bien.,2']
    (folder / "cloze_test_val__spring2016 - cloze_test_ALL_val.csv").write_text("\n".join([header, *rows]) + "\n")
    examples = story_cloze_examples(tmp_path)
    assert examples == [
        (f"One. Two. {BLANK} Four. Right.", " Three."),
        (f"Uno. Dos, y. {BLANK} Cuatro. Bien.", " Tres."),
    ]
    assert story_cloze_examples(tmp_path, limit=1) == examples[:1]
    with pytest.raises(DataNotFoundError, match=r"(?s)story_cloze_2016.*Hub: not tried.*that has it\.$") as error:
        story_cloze_examples(tmp_path / "elsewhere")  # no Hub copy exists: the error must not send users there
    assert "go online" not in str(error.value)
    result = evaluate_infilling(tiny_model, tmp_path, dataset="story_cloze_val", context="left")
    scores = span_log_likelihoods(
        tiny_model, [text for text, _ in examples], [span for _, span in examples], context="left"
    )
    assert result["examples"] == 2
    assert result["perplexity"] == pytest.approx(math.exp(-sum(s for s, _ in scores) / sum(n for _, n in scores)))


def test_wikipedia_examples_cut_8_to_32_tokens(tiny_model):
    tokenizer = tiny_model.decoder.tokenizer
    examples = wikipedia_examples(tokenizer, limit=20, seed=0)
    assert len(examples) == 20
    for text, reference in examples:
        assert text.count(BLANK) == 1
        assert 6 <= len(tokenizer(reference, add_special_tokens=False)["input_ids"]) <= 34  # re-tokenized
    assert examples == wikipedia_examples(tokenizer, limit=20, seed=0)
    assert examples != wikipedia_examples(tokenizer, limit=20, seed=1)


def test_evaluate_infilling_runs_on_tiny_model(tiny_model):
    result = evaluate_infilling(tiny_model, limit=4, context="both", auto_length_limit=2, max_auto_length=4)
    assert result["examples"] == 4 and result["perplexity"] > 1
    assert result["auto_length"]["examples"] == 2
    left = evaluate_infilling(tiny_model, limit=4, context="left")
    assert left["span_tokens"] == result["span_tokens"] and "auto_length" not in left
    with pytest.raises(ValueError, match="dataset"):
        evaluate_infilling(tiny_model, dataset="imdb")


def test_evaluate_repetition_on_tiny_model(tiny_model):
    from magnet_st.evaluation.generation import evaluate_repetition

    result = evaluate_repetition(tiny_model, limit=3, max_new_tokens=12, batch_size=3)
    assert result["prefixes"] == 3 and result["decoding"] == "greedy"
    assert 0 <= result["rep-4"] <= result["rep-3"] <= result["rep-2"] <= 1
    sampled = evaluate_repetition(tiny_model, limit=3, max_new_tokens=12, sampling=True, seed=0)
    assert sampled["decoding"].startswith("nucleus")


@pytest.mark.real_model
def test_real_model_right_context_changes_span_score_and_left_ppl_is_sane(real_model):
    result = evaluate_infilling(real_model, limit=8, context="left")
    assert 3 < result["perplexity"] < 200  # an English LM on simple stories
