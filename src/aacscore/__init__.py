"""aacscore: Kauppila AAC-24 scoring of lateral lumbar spine radiographs."""

__version__ = "0.1.0"
