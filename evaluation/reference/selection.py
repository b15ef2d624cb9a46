"""Choose the snapshot to ship on data the report does not score.

    python evaluation/reference/selection.py WORK/adapters/step-* --out selection.json

Per snapshot: span perplexity with both contexts and with the left one only on Story Cloze validation
stories (disjoint from the ROCStories test stories the suite scores), and STS-B dev Spearman x100 (the
report's claim is on STS-B test), each with its 95% bootstrap interval. The chosen step is the one with
the lowest both-context perplexity among the snapshots whose STS-B dev is within `--sts-margin` points of
the best snapshot's: infilling is the capability that swings between nearby checkpoints, and the
embedding must not be traded away for it. Finished steps are kept in `--out` and skipped on a rerun.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from curve import stsb

from magnet_st.evaluation.bootstrap import record_interval, record_score
from magnet_st.evaluation.infilling import evaluate_infilling
from magnet_st.pretrained import model_from_adapter


def measure(model, data_dir: str | None, stories: int) -> dict:
    """STS-B dev and the Story Cloze validation perplexities (both, left) of one model, with intervals."""
    record = stsb(model, data_dir, "dev")
    row = {"stsb_dev": record_score(record), "stsb_dev_interval": record_interval(record)}
    for context in ("both", "left"):
        result = evaluate_infilling(
            model, data_dir, dataset="story_cloze_val", context=context, limit=stories, auto_length_limit=0
        )
        row[f"cloze_{context}_ppl"] = result["perplexity"]
        row[f"cloze_{context}_ppl_interval"] = result["interval"]
    row["cloze_stories"] = result["examples"]
    return row


def choose(rows: dict[str, dict], sts_margin: float) -> str:
    """The step with the lowest both-context perplexity among those within `sts_margin` of the best STS-B dev."""
    best_sts = max(row["stsb_dev"] for row in rows.values())
    eligible = {step: row for step, row in rows.items() if row["stsb_dev"] >= best_sts - sts_margin}
    return min(eligible, key=lambda step: eligible[step]["cloze_both_ppl"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("adapters", nargs="+", type=Path, help="adapter folders named step-N")
    parser.add_argument("--base", default="smollm2-135m")
    parser.add_argument("--out", type=Path, default=Path("selection.json"))
    parser.add_argument("--data", default=None)
    parser.add_argument("--stories", type=int, default=400, help="Story Cloze validation stories per snapshot")
    parser.add_argument("--sts-margin", type=float, default=1.0, help="STS-B dev points a choice may give up")
    args = parser.parse_args(argv)
    if args.stories <= 0:
        parser.error(f"--stories must be a positive number of stories, got {args.stories}")
    rows = json.loads(args.out.read_text()) if args.out.is_file() else {}
    for adapter in args.adapters:
        step = adapter.name.split("-")[-1]
        if step in rows:
            continue
        model = model_from_adapter(args.base, adapter)
        model.eval()
        rows[step] = measure(model, args.data, args.stories)
        print(step, json.dumps(rows[step]), flush=True)
        args.out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"chosen: step {choose(rows, args.sts_margin)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
