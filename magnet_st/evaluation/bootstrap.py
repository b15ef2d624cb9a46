"""95% bootstrap intervals over examples, from per-example statistics kept beside each score.

A part keeps, for each score it reports, one *record*: the metric's name, a fingerprint of the examples
(so two models are only compared on the same ones) and one value list per field, one entry per example
(e.g. a span's log-probability and token count). The score is the metric over every example; its interval
is the 2.5th and 97.5th percentile of the metric over 1,000 resamples of the examples (`scipy.stats.bootstrap`,
`paired=True`: every field is resampled with the same example indices; fixed seed).

    metric      fields            statistic over a (re)sample                          scale
    mean        value             mean (LAMA hits, per-example rates)                  100 for hits
    nanmean     value             mean of the defined values (rep-n of continuations)  1
    macro_mean  value, group      mean over groups of each group's mean (LAMA macro)   100
    ratio       numerator, total  sum / sum (word accuracy)                            100
    perplexity  logprob, tokens   exp(-sum logprob / sum tokens)                       1
    f1          tp, fp, fn        2 tp / (2 tp + fp + fn), micro over examples         100
    spearman    predicted, gold   Spearman correlation (STS pairs)                     100
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

N_RESAMPLES = 1000
CONFIDENCE_LEVEL = 0.95
METHOD = "percentile"
SEED = 0


# -- vectorised statistics: each field is an array (..., examples); the statistic reduces `axis` -------------
def _mean(value: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(value, axis=axis)


def _nanmean(value: np.ndarray, axis: int = -1) -> np.ndarray:
    defined = ~np.isnan(value)
    return np.nansum(value, axis=axis) / np.maximum(defined.sum(axis=axis), 1)


def _macro_mean(value: np.ndarray, group: np.ndarray, axis: int = -1) -> np.ndarray:
    value, group = np.moveaxis(value, axis, -1), np.moveaxis(group, axis, -1)
    means = []
    for index in np.unique(group):
        members = group == index
        count = members.sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            means.append(np.where(count > 0, (value * members).sum(axis=-1) / count, np.nan))
    return np.nanmean(np.stack(means), axis=0)  # a group absent from a resample is left out


def _ratio(numerator: np.ndarray, total: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.sum(numerator, axis=axis) / np.sum(total, axis=axis)


def _perplexity(logprob: np.ndarray, tokens: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.exp(-np.sum(logprob, axis=axis) / np.sum(tokens, axis=axis))


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, axis: int = -1) -> np.ndarray:
    tp, errors = np.sum(tp, axis=axis), np.sum(fp, axis=axis) + np.sum(fn, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(2 * tp + errors > 0, 2 * tp / (2 * tp + errors), 0.0)


def _spearman(predicted: np.ndarray, gold: np.ndarray, axis: int = -1) -> np.ndarray:
    ranks = [np.moveaxis(stats.rankdata(array, axis=axis), axis, -1) for array in (predicted, gold)]
    centred = [rank - rank.mean(axis=-1, keepdims=True) for rank in ranks]
    covariance = np.sum(centred[0] * centred[1], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return covariance / np.sqrt(np.sum(centred[0] ** 2, axis=-1) * np.sum(centred[1] ** 2, axis=-1))


@dataclass(frozen=True)
class Metric:
    """A statistic over the examples' fields, and the factor its reported score carries (x100 or x1)."""

    fields: tuple[str, ...]
    statistic: Callable[..., np.ndarray]
    scale: float = 1.0


METRICS: dict[str, Metric] = {
    "mean": Metric(("value",), _mean),
    "nanmean": Metric(("value",), _nanmean),
    "macro_mean": Metric(("value", "group"), _macro_mean),
    "ratio": Metric(("numerator", "total"), _ratio),
    "perplexity": Metric(("logprob", "tokens"), _perplexity),
    "f1": Metric(("tp", "fp", "fn"), _f1),
    "spearman": Metric(("predicted", "gold"), _spearman),
}


def get_metric(name: str) -> Metric:
    if name not in METRICS:
        raise ValueError(f"`metric` must be one of {sorted(METRICS)}, got {name!r}.")
    return METRICS[name]


def fingerprint(keys: Sequence[Any]) -> str:
    """A short hash of the examples' identities (texts, ids), in order."""
    digest = hashlib.sha256()
    for key in keys:
        digest.update(repr(key).encode("utf-8") + b"\x00")
    return digest.hexdigest()[:16]


def per_example_record(metric: str, keys: Sequence[Any], *, scale: float = 1.0, **values: Sequence[float]) -> dict:
    """The per-example statistics of one score: `{"metric", "scale", "examples", "fingerprint", "values"}`.

    `keys` identify the examples (one each, in order); `values` give every field `metric` needs, one
    number per example. `scale` is the factor of the reported score (100 for a score x100).
    """
    fields = get_metric(metric).fields
    if sorted(values) != sorted(fields):
        raise ValueError(f"Metric {metric!r} needs the fields {list(fields)}, got {sorted(values)}.")
    columns = {name: [float(value) for value in values[name]] for name in fields}
    lengths = {len(column) for column in columns.values()} | {len(keys)}
    if len(lengths) != 1:
        raise ValueError(f"Every field and `keys` must have one entry per example, got lengths {sorted(lengths)}.")
    return {
        "metric": metric,
        "scale": scale,
        "examples": len(keys),
        "fingerprint": fingerprint(keys),
        "values": columns,
    }


def _arrays(record: dict) -> list[np.ndarray]:
    return [np.asarray(record["values"][name], dtype=float) for name in get_metric(record["metric"]).fields]


def record_score(record: dict) -> float:
    """The record's score over every example (with its scale)."""
    return float(record["scale"] * get_metric(record["metric"]).statistic(*_arrays(record), axis=-1))


def bootstrap_interval(
    statistic: Callable[..., np.ndarray],
    *fields: Sequence[float] | np.ndarray,
    n_resamples: int = N_RESAMPLES,
    confidence_level: float = CONFIDENCE_LEVEL,
    method: str = METHOD,
    seed: int = SEED,
) -> list[float] | None:
    """[low, high] of `statistic(*fields, axis=-1)` over resamples of the examples (None under 2 examples).

    Every field holds one value per example; all are resampled with the same indices (a paired bootstrap),
    so a statistic of two models' fields on the same examples gives a paired interval.
    """
    arrays = [np.asarray(field, dtype=float) for field in fields]
    if not arrays or len({array.shape for array in arrays}) != 1 or arrays[0].ndim != 1:
        raise ValueError("`fields` must be one or more 1-D arrays of the same length (one value per example).")
    if arrays[0].size < 2:
        return None
    result = stats.bootstrap(
        arrays,
        statistic,
        n_resamples=n_resamples,
        paired=True,
        vectorized=True,
        axis=-1,
        confidence_level=confidence_level,
        method=method,
        rng=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    return [float(low), float(high)]


def record_interval(record: dict, **options: Any) -> list[float] | None:
    """The 95% bootstrap interval of the record's score (with its scale)."""
    interval = bootstrap_interval(get_metric(record["metric"]).statistic, *_arrays(record), **options)
    return None if interval is None else [record["scale"] * bound for bound in interval]


def check_same_examples(first: dict, second: dict, name: str) -> None:
    """Raise unless two records hold the same metric on the same examples."""
    if first["metric"] != second["metric"] or first["scale"] != second["scale"]:
        raise ValueError(f"{name}: the two records hold different metrics ({first['metric']} vs {second['metric']}).")
    if first["fingerprint"] != second["fingerprint"] or first["examples"] != second["examples"]:
        raise ValueError(
            f"{name}: the models were evaluated on different examples ({first['examples']} vs {second['examples']}, "
            f"fingerprints {first['fingerprint']} vs {second['fingerprint']}); rerun both with the same suite sizes."
        )


def paired_interval(first: dict, second: dict, combine: str = "difference", **options: Any) -> dict[str, Any]:
    """Score of each record, their difference (first - second) or ratio (first / second), and its paired interval.

    `significant` is True when the 95% interval excludes 0 (a difference) or 1 (a ratio).
    """
    if combine not in ("difference", "ratio"):
        raise ValueError(f"`combine` must be 'difference' or 'ratio', got {combine!r}.")
    check_same_examples(first, second, "paired_interval")
    statistic, split = get_metric(first["metric"]).statistic, len(get_metric(first["metric"]).fields)
    scale = first["scale"] if combine == "difference" else 1.0

    def combined(*arrays: np.ndarray, axis: int = -1) -> np.ndarray:
        a, b = statistic(*arrays[:split], axis=axis), statistic(*arrays[split:], axis=axis)
        return a - b if combine == "difference" else a / b

    arrays = [*_arrays(first), *_arrays(second)]
    value = float(scale * combined(*arrays))
    interval = bootstrap_interval(combined, *arrays, **options)
    interval = None if interval is None else [scale * bound for bound in interval]
    null = 0.0 if combine == "difference" else 1.0
    return {
        "first": record_score(first),
        "second": record_score(second),
        combine: value,
        "interval": interval,
        "significant": interval is not None and not interval[0] <= null <= interval[1],
    }
