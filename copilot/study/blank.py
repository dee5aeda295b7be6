"""Blank films: a uniform mid-grey image of a given size, for controls that ask whether a
tool's result depends on the image (``copilot eval``'s blank-image control and the answer-time
self-check). Written under a cache folder, never beside the study."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from copilot.paths import private_dir
from copilot.study.model import InstanceRecord

__all__ = ["BLANK_GREY", "blank_record", "write_blank"]

#: The grey level of a blank film (8-bit).
BLANK_GREY = 128


def write_blank(width: int, height: int, folder: Path) -> Path:
    """A uniform mid-grey 8-bit PNG of ``width`` x ``height`` under ``folder`` (made once per
    size)."""
    from PIL import Image

    private_dir(folder)
    path = folder / f"blank_{width}x{height}.png"
    if not path.exists():
        # A file of its own per writer, renamed into place: two writers never publish half a PNG.
        fd, partial = tempfile.mkstemp(prefix=".blank-", suffix=".png", dir=folder)
        os.close(fd)
        Image.new("L", (max(width, 1), max(height, 1)), color=BLANK_GREY).save(partial)
        os.replace(partial, path)
    return path


def blank_record(record: InstanceRecord, folder: Path) -> InstanceRecord:
    """``record`` with its pixels replaced by a blank film of the same size: the same header
    facts (modality, view, spacing), so a tool takes it as it took the image, another file
    and SOP Instance UID, so nothing cached for the image is reused."""
    path = write_blank(record.columns or 512, record.rows or 512, folder)
    st = path.stat()
    return record.model_copy(
        update={
            "path": str(path),
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "kind": "image",
            "sop_uid": f"{record.sop_uid}.blank" if record.sop_uid else "blank",
            "frames": 1,
            "samples_per_pixel": 1,
            "bits_allocated": 8,
            "remote": "",
        }
    )
