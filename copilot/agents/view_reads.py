"""A tool's reads of a study's views, for the execute node: which image each request is about,
which read leads (stands for the tool in ``state.results``) and what a tool that reads none of
the study's views returns."""

from __future__ import annotations

from collections.abc import Sequence

from copilot.schema import ImageRead, ToolResult
from copilot.study.model import Study
from copilot.study.views import ViewedImage, images_for, study_views, view_words
from copilot.tools.contract import Acceptance, Tool
from copilot.tools.manifest import ToolManifest
from copilot.tools.results import accepts_safely

__all__ = ["image_read", "lead_read", "study_acceptance", "views_not_read"]


def study_acceptance(tool: Tool, study: Study) -> Acceptance:
    """Whether ``tool`` reads this study: its verdict on the first image it would read (the
    primary image for a tool declaring no views, else its first image of an accepted view); a
    tool declaring views the study does not have is refused, saying which it reads."""
    images = images_for(tool.manifest.views, study)
    if images:
        return accepts_safely(tool, images[0].instance)
    verdict = accepts_safely(tool, study.primary_instance())
    return Acceptance(ok=False, reason=verdict.reason or views_not_read(tool.manifest, study).detail)


def image_read(viewed: ViewedImage) -> ImageRead:
    """The answer's record of one image a tool reads."""
    inst = viewed.instance
    return ImageRead(sop_uid=inst.sop_uid, series_uid=inst.series_uid, view=viewed.view)


def lead_read(
    reads: Sequence[tuple[ImageRead | None, ToolResult]],
) -> tuple[ImageRead | None, ToolResult]:
    """The read that stands for the tool: the first (frontal first) it answered for, else the
    first. ``reads`` is never empty."""
    return next((read for read in reads if read[1].ok), reads[0])


def views_not_read(manifest: ToolManifest, study: Study) -> ToolResult:
    """The result of a tool none of whose declared views the study has ('skipped', saying which
    views it reads and which the study has)."""
    wanted = ", ".join(view_words(v) for v in manifest.views)
    found = sorted({view_words(image.view) for image in study_views(study)}) or ["none"]
    return ToolResult(
        tool=manifest.name,
        status="skipped",
        detail=f"it reads {wanted} views only; this study's views: {', '.join(found)}",
    )
