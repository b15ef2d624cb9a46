"""Data sizes of the evaluation suite, per suite and part. Torch-free, so that `magnet-st eval --help` lists them."""

from __future__ import annotations

from typing import Any

# Sizes: `smoke` runs in about a minute on 2 CPU cores (CI); `paper` gives the real numbers.
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "smoke": {
        "sentence": {
            "sts_limit": 40,
            "classification_train_limit": 400,
            "classification_test_limit": 40,
            "samples_per_label": 4,
            "n_experiments": 1,
        },
        "word": {
            "max_train_sentences": 40,
            "max_valid_sentences": 20,
            "max_test_sentences": 20,
            "steps": 20,
            "show_progress_bar": False,
        },
        "infilling": {"limit": 4},
        "generation": {"limit": 3, "max_new_tokens": 16},
        "knowledge": {"limit_per_relation": 2, "max_new_tokens": 4},
    },
    "paper": {
        "sentence": {
            "sts_limit": None,  # the whole STS-B test split, 1,379 pairs
            "classification_train_limit": None,
            "classification_test_limit": 1000,
            "samples_per_label": 8,  # mteb's default protocol
            "n_experiments": 3,
        },
        # each task's headline alignment is chosen on the first 500 CoNLL validation sentences
        "word": {
            "max_train_sentences": 2000,
            "max_valid_sentences": 500,
            "max_test_sentences": 500,
            "show_progress_bar": False,
        },
        # every ROCStories test story (1,000); two spans in each held-out Wikipedia sentence long enough (1,098)
        "infilling": {"limit": None, "spans_per_sentence": 2},
        "generation": {"limit": 100, "max_new_tokens": 64},
        "knowledge": {"limit_per_relation": 200, "max_new_tokens": 5},  # 2,396 facts
    },
}
