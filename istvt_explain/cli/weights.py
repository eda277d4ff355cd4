"""The one check every command with ``--weights`` makes before it imports torch."""

from __future__ import annotations


def check_weights(path: str | None) -> None:
    """Refuse a missing, crafted or broken checkpoint from its header alone (``CheckpointError``: one line,
    exit 2), before torch is imported or a model built: a hostile file costs milliseconds."""
    from ..models.checkpoint_file import check_weight_file

    if path is not None:
        check_weight_file(path)
