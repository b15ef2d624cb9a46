"""Token-level tasks (NER, chunking, POS) on MAGNET token representations.

    from magnet_st import load_model
    from magnet_st.tagging import train_probe, predict

A tagger is two modules at the end of the model's module list: `WordPooling` (token states -> one
vector per word) and `TokenClassificationHead` (word vectors -> label logits), so `model.forward`
produces word logits and `model.save()` keeps them with their labels.
"""

from magnet_st.tagging.config import TaggerConfig
from magnet_st.tagging.finetune import TaggerTrainer, finetune_lora
from magnet_st.tagging.inference import encode_words, predict, predict_logits
from magnet_st.tagging.probe import ProbeResult, train_probe
from magnet_st.tagging.scores import evaluate_tagger, tagging_scores
from magnet_st.tagging.tagger import find_tagger

__all__ = [
    "ProbeResult",
    "TaggerConfig",
    "TaggerTrainer",
    "encode_words",
    "evaluate_tagger",
    "find_tagger",
    "finetune_lora",
    "predict",
    "predict_logits",
    "tagging_scores",
    "train_probe",
]
