"""The chaos run of issue 12: the whole platform under random faults (see run.py)."""
