"""EpiGRAF Studio core: the model, its renderer and its tools (no GUI imports here)."""

__version__ = "0.1.0"
