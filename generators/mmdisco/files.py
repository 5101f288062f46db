"""Errors for MMDisCo's model files: a file of the wrong architecture names the file and key."""

from __future__ import annotations


class CheckpointError(ValueError):
    """A model file that is unreadable or of the wrong architecture or shape."""
