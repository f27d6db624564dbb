"""tierbot: review git changes with Claude, spending money where the risk is."""

__version__ = "0.1.0"
