"""The blank-image control: does an answer depend on the image it was asked about?

Models answer medical questions nearly as well without the image ("Beyond Accuracy": 81% of
VQA-RAD accuracy kept), so every image case is asked again about a blank film of the same
size (uniform mid-grey, written once per size under the run's folder). When the tools that
read the image give the same findings (labels, scores, values, sides) for the blank as for
the real film, the answer is flagged: it did not come from the pixels.
"""

from __future__ import annotations

import logging
from pathlib import Path

from copilot.errors import CopilotError
from copilot.schema import Answer
from copilot.study.blank import write_blank
from copilot.tools.results import Evidence, finding_evidence

__all__ = ["blank_like", "ignores_image", "image_evidence"]

log = logging.getLogger(__name__)


def _size(image: Path) -> tuple[int, int]:
    """(width, height) of a DICOM or ordinary image file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(image) as opened:
            return opened.size
    except (UnidentifiedImageError, OSError):
        pass
    import pydicom

    try:
        ds = pydicom.dcmread(image, stop_before_pixels=True, specific_tags=["Rows", "Columns"])
        return int(ds.Columns), int(ds.Rows)
    except Exception as exc:  # pydicom raises many kinds on a file that is not DICOM
        raise CopilotError(f"cannot read the size of {image}: {exc}") from exc


def blank_like(image: Path, folder: Path) -> Path:
    """A uniform mid-grey 8-bit PNG of ``image``'s size under ``folder`` (made once per size)."""
    width, height = _size(image)
    return write_blank(width, height, folder)


def image_evidence(answer: Answer) -> dict[str, list[Evidence]]:
    """Per tool that read an image, its findings in a comparable form."""
    readers = {t.name for t in answer.tools if t.images and t.status == "ok"}
    return {
        name: finding_evidence([f for f in answer.findings if f.tool == name]) for name in sorted(readers)
    }


def ignores_image(real: Answer, blank: Answer) -> bool | None:
    """True when the image-reading tools said the same about the blank film as about the
    real one; False when they said something else; None when no tool read either image."""
    seen, control = image_evidence(real), image_evidence(blank)
    if not seen and not control:
        return None
    return seen == control
