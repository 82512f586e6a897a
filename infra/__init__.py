"""The pingpod Pulumi program's components, one per module, wired by ``__main__.py``."""
