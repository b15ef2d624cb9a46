"""The MAGNET paper, cited by the loss (model cards) and the mteb ModelMeta."""

MAGNET_ARXIV = "https://arxiv.org/abs/2501.08648"
MAGNET_CITATION = """@inproceedings{khosla2025magnet,
  title={MAGNET: Augmenting Generative Decoders with Representation Learning and Infilling Capabilities},
  author={Khosla, Savya and Tiwari, Aditi and Kafle, Kushal and Jenni, Simon and Zhao, Handong and
          Collomosse, John and Shi, Jing},
  booktitle={Proceedings of the 63rd Annual Meeting of the Association for Computational Linguistics},
  pages={27328--27346},
  year={2025},
  eprint={2501.08648},
  archivePrefix={arXiv}
}"""
