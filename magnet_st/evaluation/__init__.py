"""Evaluation of MAGNET's claims on local data: sentence, word, infilling, generation, knowledge."""
