"""The trace corpus: hand-written scenarios (`corpus.py`) and their recorded traces (`*.jsonl`)."""
