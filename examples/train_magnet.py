"""Adapt a decoder with MAGNET through sentence-transformers' own trainer, with an STS-B evaluator.

python examples/train_magnet.py [--steps 200] [--base smollm2-135m]
"""

import argparse

from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

from magnet_st import load_model
from magnet_st.data.paths import dataset_file
from magnet_st.data.sts import read_stsb
from magnet_st.data.texts import load_texts
from magnet_st.lora import add_lora, merge_lora
from magnet_st.losses import MagnetLoss

parser = argparse.ArgumentParser()
parser.add_argument("--base", default="smollm2-135m")
parser.add_argument("--steps", type=int, default=200)
parser.add_argument("--output", default="magnet-example")
args = parser.parse_args()

texts = load_texts(dataset_file(None, "wiki1m_for_simcse_head", "wiki1m_for_simcse.txt"), drop_cut_last_line=True)
sts = read_stsb(dataset_file(None, "stsbenchmark", "sts-dev.csv"))
evaluator = EmbeddingSimilarityEvaluator(
    sts["sentence1"][:300], sts["sentence2"][:300], [score / 5 for score in sts["score"][:300]], name="sts-dev"
)

model = add_lora(load_model(args.base, max_seq_length=48))
loss = MagnetLoss(model)  # MNTP + SSCL + MSG, weights 1, 1, 1
training_args = SentenceTransformerTrainingArguments(
    output_dir=f"{args.output}-checkpoints",
    max_steps=args.steps,
    per_device_train_batch_size=16,
    learning_rate=5e-4,
    eval_strategy="steps",
    eval_steps=max(1, args.steps // 4),
    save_steps=max(1, args.steps // 4),
    logging_steps=10,
    dataloader_drop_last=True,
    report_to="none",
)
trainer = SentenceTransformerTrainer(
    model=model, args=training_args, train_dataset=texts, loss=loss, evaluator=evaluator
)
trainer.train()
merge_lora(model)
model.save(args.output)
print(evaluator(model))
