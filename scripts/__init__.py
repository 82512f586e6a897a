"""Developer and CI scripts (run as modules: python -m scripts.<name>)."""
