"""`make mutants`: planted bugs the test suite must catch (mutants.toml, run.py)."""
