"""LAMA knowledge probe: prompts, the hit rule, hand-computed P@1, and greedy decoding under causal attention."""

import json

import pytest
import torch

from magnet_st.data.lama import load_lama, prompt_before_slot
from magnet_st.evaluation.knowledge import (
    evaluate_knowledge,
    greedy_continuations,
    is_hit,
    lama_scores,
)


def write_lama(root):
    lama = root / "lama"
    (lama / "TREx").mkdir(parents=True)
    (lama / "Google_RE").mkdir()
    (lama / "Squad").mkdir()
    relations = [
        {"relation": "P19", "template": "[X] was born in [Y] ."},
        {"relation": "P20", "template": "[X] died in [Y] ."},
    ]
    relations += [{"relation": r, "template": f"[X] relation {r} [Y] ."} for r in ("P106", "P108", "P364", "P413")]
    relations += [{"relation": r, "template": f"[X] relation {r} [Y] ."} for r in ("P463", "P740")]
    (lama / "relations.jsonl").write_text("\n".join(json.dumps(r) for r in relations) + "\n")
    for relation in ("P19", "P20", "P106", "P108", "P364", "P413", "P463", "P740"):
        rows = [{"sub_label": "Ada Lovelace", "obj_label": "London", "predicate_id": relation}]
        (lama / "TREx" / f"{relation}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    for name in ("date_of_birth", "place_of_birth", "place_of_death"):
        rows = [{"sub_label": "Alan Turing", "obj_label": "1912", "masked_sentences": ["x [MASK]"]}]
        (lama / "Google_RE" / f"{name}_test.jsonl").write_text(json.dumps(rows[0]) + "\n")
    squad = [
        {"masked_sentences": ["The Eiffel Tower is in [MASK]."], "obj_label": "Paris"},
        {"masked_sentences": ["[MASK] is the capital."], "obj_label": "Paris"},  # empty prompt: skipped
    ]
    (lama / "Squad" / "test.jsonl").write_text("\n".join(json.dumps(r) for r in squad) + "\n")
    return root


def test_prompt_is_the_text_before_the_slot():
    assert prompt_before_slot("Ada was born in [Y] .", "[Y]") == "Ada was born in"
    assert prompt_before_slot("[MASK] is the capital.", "[MASK]") is None
    assert prompt_before_slot("no slot here", "[MASK]") is None


@pytest.mark.parametrize(
    ("continuation", "label", "hit"),
    [
        (" Paris.\n\nThe", "Paris", True),
        (" paris, France", "Paris", True),
        (" the FIFA World", "FIFA", True),  # one leading article is skipped
        (" the the FIFA", "FIFA", False),
        (" Parisian food", "Paris", False),  # whole words only
        (" New York City", "New York", True),  # multi-word labels compare word for word
        (" New Jersey", "New York", False),
        (" The Hague", "The Hague", True),  # the label's own article is kept
        ("", "Paris", False),
    ],
)
def test_hit_rule(continuation, label, hit):
    assert is_hit(continuation, label) is hit


def test_lama_scores_match_a_hand_computation():
    facts = [
        {"source": "trex", "relation": "P19", "prompt": "p", "label": "London"},
        {"source": "trex", "relation": "P19", "prompt": "p", "label": "Paris"},
        {"source": "trex", "relation": "P20", "prompt": "p", "label": "Rome"},
        {"source": "squad", "relation": "squad", "prompt": "p", "label": "gold"},
    ]
    scores = lama_scores(facts, [" London", " Berlin", " Rome.", " silver"])
    assert scores["per_relation"] == {"trex/P19": 50.0, "trex/P20": 100.0, "squad/squad": 0.0}
    assert scores["precision_at_1"] == {"trex": 75.0, "squad": 0.0}  # macro over relations
    assert scores["micro_precision_at_1"] == 50.0  # 2 of 4 facts
    with pytest.raises(ValueError, match="must match"):
        lama_scores(facts, [" London"])


def test_load_lama_builds_template_prompts(tmp_path):
    facts = load_lama(write_lama(tmp_path))
    prompts = {(f["source"], f["relation"]): f["prompt"] for f in facts}
    assert prompts[("trex", "P19")] == "Ada Lovelace was born in"
    assert prompts[("google_re", "place_of_death")] == "Alan Turing died in"  # P20 template
    assert prompts[("google_re", "date_of_birth")] == "Alan Turing (born"
    assert [f["prompt"] for f in facts if f["source"] == "squad"] == ["The Eiffel Tower is in"]


def test_missing_lama_file_is_named(tmp_path):
    write_lama(tmp_path)
    (tmp_path / "lama" / "TREx" / "P740.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match="P740.jsonl"):
        load_lama(tmp_path, sources=("trex",))
    with pytest.raises(ValueError, match="`sources`"):
        load_lama(tmp_path, sources=("conceptnet",))


def test_greedy_continuations_match_unbatched_argmax_under_causal_attention(tiny_model):
    # Reference: token-by-token argmax with the causal LM on each prompt alone (no padding), so the
    # left padding of the batch and its attention mask must not change a single token.
    decoder = tiny_model.decoder
    prompts = ["The capital of France is", "Hi", "A much longer prompt with several more words in it"]
    batched = greedy_continuations(tiny_model, prompts, max_new_tokens=4, batch_size=3)
    for prompt, continuation in zip(prompts, batched):
        ids = decoder.tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            for _ in range(4):
                logits = decoder.causal_lm(input_ids=ids, is_causal=True).logits
                ids = torch.cat([ids, logits[:, -1:].argmax(-1)], dim=1)
        expected = decoder.tokenizer.decode(ids[0, -4:], skip_special_tokens=True)
        assert continuation == expected


def test_evaluate_knowledge_on_local_files(tiny_model, tmp_path):
    results = evaluate_knowledge(tiny_model, write_lama(tmp_path), max_new_tokens=2)
    assert set(results["precision_at_1"]) == {"google_re", "trex", "squad"}
    assert results["facts"]["squad/squad"] == 1
    assert results["settings"]["max_new_tokens"] == 2


@pytest.mark.real_model
def test_real_model_knows_a_capital(real_model):
    facts = [{"source": "squad", "relation": "squad", "prompt": "The capital of France is", "label": "Paris"}]
    continuations = greedy_continuations(real_model, [f["prompt"] for f in facts], max_new_tokens=3)
    assert lama_scores(facts, continuations)["micro_precision_at_1"] == 100.0
