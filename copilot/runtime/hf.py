"""Quiet, offline-respecting use of Hugging Face libraries."""

from __future__ import annotations


def quiet_transformers() -> None:
    """Silence transformers' progress bars and info logs (our CLI draws its own progress)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - transformers is a dependency
        return
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
