"""A small demo folder of real radiographs for a fresh machine with no studies at hand.

The files come from the PyPI package ``pydicom-data`` (MIT): ``RG1`` is a real PA chest CR
(MONOCHROME1, 1955 x 1841, PixelSpacing stored as 0.000, i.e. unknown), ``RG3`` an AP tibia
radiograph, which the chest tools must refuse.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from copilot import paths
from copilot.errors import CopilotError

log = logging.getLogger(__name__)

DEMO_FILES = {
    "RG1_J2KR.dcm": "chest-cr/study1/IM0001.dcm",
    "RG3_J2KR.dcm": "tibia-cr/study1/IM0001.dcm",
}


def default_demo_folder() -> Path:
    """Where ``copilot demo`` writes when no folder is named."""
    return paths.data_dir() / "demo-studies"


def make_demo_folder(folder: Path | None = None) -> Path:
    """Copy the demo radiographs into ``folder`` (created if needed) and return it."""
    from pydicom.data import get_testdata_file

    target = (folder or default_demo_folder()).expanduser()
    if target.exists() and not target.is_dir():
        raise CopilotError(f"{target} is a file, not a folder: name a new or existing folder for the demo")
    for name, rel in DEMO_FILES.items():
        src = get_testdata_file(name, download=False)
        if src is None:
            raise CopilotError(f"demo file {name} not found: install it with 'pip install pydicom-data'")
        dest = target / rel
        if dest.exists():
            continue
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(str(src), dest)
        except OSError as exc:
            raise CopilotError(
                f"cannot lay out the demo in {target}: {exc.strerror or exc} ({exc.filename or dest}); "
                "choose another folder"
            ) from exc
        log.debug("demo: %s -> %s", src, dest)
    return target
