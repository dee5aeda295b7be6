"""What travels between a client and a ``copilot serve`` server (JSON over HTTP).

A tool call carries the question, the tool's arguments, earlier tools' results and the image:
minimal DICOM files (:mod:`copilot.remote.minimal`) or a DICOMweb reference the server fetches
itself. A tool that compares studies (it declares the ``comparison`` intent and scores no
finding labels, the rule of :func:`copilot.agents.matching.comparers`) is also sent the prior
study (:class:`WirePrior`): its chosen image as minimal DICOM and its record without
identifiers, or only the reason there is none. Like the current image's (whose study date and
description :mod:`copilot.remote.minimal` empties), the prior's StudyDate and description are
not sent: a server's comparison words its statements "since the prior study", and the client's
answer names the prior's date itself. The prior's reports stay on the client (its copilot SR is
not sent, so a server's comparison gives no per-finding change). A reply carries the
:class:`~copilot.tools.contract.ToolResult` and the files it names (heatmaps, masks), so the
client's answer points at files on the client's machine.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from copilot.errors import InputRejectedError, ToolUnavailableError
from copilot.tools.contract import ToolManifest, ToolRequest, ToolResult

if TYPE_CHECKING:
    from copilot.config import Settings
    from copilot.study.model import InstanceRecord
    from copilot.study.prior import PriorStudy

log = logging.getLogger(__name__)

VOLUME_MODALITIES = frozenset({"CT", "MR", "PT", "NM"})
#: Response header naming a server-side fault the client words itself (HTTP 503 with it).
FAULT_HEADER = "x-copilot-fault"
#: :data:`FAULT_HEADER` value: the tool's replica (a Ray actor) died during the request.
REPLICA_LOST = "replica-lost"
MAX_ARTIFACT_BYTES = 32 * 2**20  # larger artifacts stay on the server, named by their path there


class WireFile(BaseModel):
    """A file's name and bytes (base64)."""

    name: str = Field(max_length=200)
    data: str

    @classmethod
    def of(cls, name: str, data: bytes) -> WireFile:
        """Wrap ``data`` under ``name``."""
        return cls(name=name, data=base64.b64encode(data).decode("ascii"))

    def content(self) -> bytes:
        """The file's bytes."""
        return base64.b64decode(self.data, validate=True)


class WirePrior(BaseModel):
    """The prior study a comparison tool is sent (see the module docstring): the image and what
    dates and names it, or only why there is none (``instance`` None)."""

    reason: str = Field(default="", max_length=500)
    date: str = Field(
        default="",
        pattern=r"^(\d{8})?$",
        description="The prior's StudyDate (DICOM DA); this client never sends it (an identifier).",
    )
    description: str = Field(
        default="", max_length=200, description="Its study description; this client never sends it."
    )
    instance: dict[str, Any] | None = Field(
        default=None, description="The prior image's index record, identifying fields emptied."
    )
    files: list[WireFile] = Field(default_factory=list, max_length=1, description="The prior image.")


class ToolCall(BaseModel):
    """One request to a server's tool."""

    question: str = ""
    options: dict[str, Any] = Field(default_factory=dict)
    prior: dict[str, ToolResult] = Field(default_factory=dict)
    prior_study_results: dict[str, ToolResult] = Field(
        default_factory=dict,
        description="For a tool that compares: its used tools' results on the prior study's image "
        "(``ToolRequest.prior_study_results``); a server that predates it ignores it.",
    )
    instance: dict[str, Any] | None = Field(
        default=None, description="The instance's index record, identifying fields emptied."
    )
    files: list[WireFile] = Field(
        default_factory=list, description="The instance first, then its volume's other files."
    )
    dicomweb: str = Field(
        default="",
        description="Instead of files: the DICOMweb base URL (no credentials) the server fetches "
        "the instance from by its UIDs, with its own credentials.",
    )
    prior_study: WirePrior | None = Field(
        default=None, description="For a tool that compares studies: the prior (or why there is none)."
    )


class ToolReply(BaseModel):
    """A server tool's result with the files its artifacts name."""

    result: ToolResult
    files: dict[str, WireFile] = Field(default_factory=dict, description="Artifact path -> file.")


class ToolListing(BaseModel):
    """One tool a server offers, and whether it can run there now."""

    manifest: ToolManifest
    available: bool
    reason: str = ""
    fix: str | None = None
    warm: bool = Field(default=True, description="Weights loaded (False: still loading).")


class AskCall(BaseModel):
    """A one-turn question to the server's own planner (the conversation stays with the client)."""

    question: str = Field(min_length=1, max_length=4000)
    files: list[WireFile] = Field(default_factory=list, description="Minimal DICOM files of one study.")


class AnalyzeCall(BaseModel):
    """Images to run every image tool on (minimal DICOM files)."""

    files: list[WireFile] = Field(default_factory=list)


# -- client side ----------------------------------------------------------------------------
def _volume_files(record: InstanceRecord) -> list[InstanceRecord]:
    """The other files of ``record``'s study in its modality (a volume tool reads them all)."""
    from copilot.study.volume import study_for

    try:
        study = study_for(record)
    except Exception as exc:  # the tool will say there is no volume; the single image still goes
        log.info("volume of %s not found beside it: %s", record.sop_uid, exc)
        return []
    return [i for i in study.instances() if i.modality == record.modality and i.sop_uid != record.sop_uid]


#: The start of the detail of a server that could not fetch a DICOMweb reference itself.
FETCH_FAILED = "the server could not fetch the image"


def _redactor(record: InstanceRecord | None) -> Callable[[str], str]:
    """How text about ``record`` is de-identified before it is sent
    (:func:`copilot.text.redact.record_redactor`)."""
    from copilot.text.redact import record_redactor

    return record_redactor(record)


def _reads_volumes(manifest: ToolManifest | None) -> bool:
    """True for a tool that reads CT/MR/PET/NM volumes (it is sent the study's other images)."""
    return manifest is not None and bool(set(manifest.modalities) & VOLUME_MODALITIES)


def _compares(manifest: ToolManifest | None) -> bool:
    """True for a tool that compares studies (see the module docstring); unknown: True."""
    if manifest is None:
        return True
    return manifest.compares_studies()


def encode_prior(prior: PriorStudy | None) -> WirePrior | None:
    """The wire form of the prior study (see the module docstring): its image and record, never
    its date or description; None when there is none to send (no prior was chosen)."""
    from copilot.remote.minimal import minimal_dicom, minimal_record

    if prior is None:
        return None
    image = prior.instance
    if prior.study is None or image is None:
        return WirePrior(reason=prior.reason[:500])
    if image.kind != "dicom":
        return WirePrior(
            reason="the prior study's image is a plain picture, which a server's tools do not read"
        )
    if image.remote:  # a DICOMweb image: this client's verified copy (fetched once)
        from copilot.study.dicomweb import fetch_instances

        fetch_instances([image])
    return WirePrior(
        instance=minimal_record(image),
        files=[WireFile.of("prior.dcm", minimal_dicom(image.path))],
    )


def encode_request(
    request: ToolRequest, manifest: ToolManifest | None = None, *, by_reference: bool = True
) -> ToolCall:
    """The wire form of ``request`` for the tool ``manifest`` describes: minimal DICOM (for a
    tool that reads volumes, the study's other images of that modality too), the record without
    identifiers, and the question (de-identified) only for a tool whose output depends on it; the
    study summary is not sent; a tool that compares studies gets the prior (:func:`encode_prior`).
    An image of a DICOMweb server travels as a reference when
    ``by_reference`` (the server fetches it from a PACS it is configured to read)."""
    from copilot.remote.minimal import minimal_dicom, minimal_record

    record = request.instance
    redact = _redactor(record)
    reads_question = manifest is None or manifest.question_dependent
    question = redact(request.question) if reads_question else ""
    options = {k: redact(v) if isinstance(v, str) else v for k, v in request.options.items()}
    volume = record is not None and record.modality in VOLUME_MODALITIES and _reads_volumes(manifest)
    prior_study = encode_prior(request.prior_study) if _compares(manifest) else None
    base = ToolCall(
        question=question,
        options=options,
        prior=request.prior,
        prior_study=prior_study,
        prior_study_results=request.prior_study_results,
    )
    if record is not None and record.remote and by_reference and not volume:
        return base.model_copy(update={"instance": minimal_record(record), "dicomweb": record.remote})
    files: list[WireFile] = []
    if record is not None:
        if record.kind != "dicom":
            raise InputRejectedError("a server's tools read DICOM instances; this image is a plain picture")
        if record.remote:  # a DICOMweb image: this client's verified copy (fetched once)
            from copilot.study.dicomweb import fetch_instances

            fetch_instances([record])
        records = [record, *(_volume_files(record) if volume else [])]
        files = [WireFile.of(f"{i:05d}.dcm", minimal_dicom(r.path)) for i, r in enumerate(records)]
    elif request.image is not None:
        raise InputRejectedError("a server's tools need the DICOM instance, not decoded pixels")
    instance = minimal_record(record) if record is not None else None
    return base.model_copy(update={"instance": instance, "files": files})


def _local_name(server_path: str, data: bytes) -> str:
    """A collision-free local file name for an artifact: content hash plus its own name."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(server_path).name)[-80:] or "artifact"
    return f"{hashlib.sha256(data).hexdigest()[:16]}-{stem}"


def decode_reply(reply: ToolReply, settings: Settings) -> ToolResult:
    """The result with its artifacts written under the client's artifacts folder (``remote/``)
    and their paths pointing there; an artifact sent without its file keeps the server's path."""
    from copilot.outputs import write_bytes

    result = reply.result
    folder = settings.artifacts_dir / "remote"
    for artifact in result.artifacts:
        sent = reply.files.get(artifact.path)
        if sent is None:
            continue
        data = sent.content()
        local = folder / _local_name(artifact.path, data)
        if not local.exists():
            write_bytes(local, data)
        artifact.path = str(local)
    return result


# -- server side ----------------------------------------------------------------------------
def _fetched(call: ToolCall, folder: Path, settings: Settings) -> Path:
    """The referenced instance fetched (WADO-RS, the server's credentials) into ``folder``."""
    from copilot.errors import DicomwebError
    from copilot.study.dicomweb import DicomwebServer, fetch_instances
    from copilot.study.model import InstanceRecord

    assert call.instance is not None
    allowed = {url.rstrip("/") for url in settings.serve_dicomweb_urls}
    if call.dicomweb.rstrip("/") not in allowed:  # never our credentials to a host a caller names
        raise ToolUnavailableError(f"{FETCH_FAILED} from {call.dicomweb}: not a DICOMweb server it reads")
    try:
        server = DicomwebServer(call.dicomweb, settings)
        i = call.instance
        path = server.cache_path(i["study_uid"], i["series_uid"], i["sop_uid"])
        record = InstanceRecord.model_validate({**i, "path": str(path), "remote": server.url})
        (cached,) = fetch_instances([record], settings)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        mine = folder / "00000.dcm"
        cached.replace(mine)  # kept only while the request runs, like an uploaded file
    except (DicomwebError, KeyError, ValueError, OSError) as exc:
        raise ToolUnavailableError(f"{FETCH_FAILED} from {call.dicomweb}: {exc}") from None
    return mine


def decode_call(call: ToolCall, folder: Path, settings: Settings | None = None) -> ToolRequest:
    """The request ``call`` describes, its files written into ``folder`` (the server's), or its
    DICOMweb reference fetched there (with ``settings``' credentials)."""
    from copilot.config import get_settings
    from copilot.study.model import InstanceRecord

    instance = None
    if call.instance is not None and call.dicomweb:
        first = _fetched(call, folder, settings or get_settings())
        st = first.stat()
        here = {"path": str(first), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "remote": ""}
        instance = InstanceRecord.model_validate({**call.instance, **here})
    elif call.instance is not None:
        if not call.files:
            raise InputRejectedError("the request names an image but carries no file")
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        paths = []
        for i, sent in enumerate(call.files):
            path = folder / f"{i:05d}.dcm"  # never the sender's name: no path tricks
            path.write_bytes(sent.content())
            paths.append(path)
        first = paths[0]
        st = first.stat()
        instance = InstanceRecord.model_validate(
            {
                **call.instance,
                "path": str(first),
                "size": st.st_size,
                "mtime_ns": st.st_mtime_ns,
                "remote": "",
            }
        )
    return ToolRequest(
        question=call.question,
        instance=instance,
        prior=call.prior,
        options=call.options,
        prior_study=decode_prior(call.prior_study, folder),
        prior_study_results=call.prior_study_results,
    )


def decode_prior(sent: WirePrior | None, folder: Path) -> PriorStudy | None:
    """The prior study ``sent`` describes, its image written into ``folder/prior`` (the
    server's): a one-image study with the prior's date and description, no patient."""
    from copilot.study.model import InstanceRecord, Series, Study
    from copilot.study.prior import PriorStudy

    if sent is None:
        return None
    if sent.instance is None:
        return PriorStudy(reason=sent.reason or "no prior study was sent with this one")
    if not sent.files:
        raise InputRejectedError("the request names a prior image but carries no file")
    where = folder / "prior"
    where.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = where / "00000.dcm"  # never the sender's name
    path.write_bytes(sent.files[0].content())
    st = path.stat()
    here = {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "remote": ""}
    image = InstanceRecord.model_validate({**sent.instance, **here, "study_date": sent.date})
    series = Series(series_uid=image.series_uid, modality=image.modality, view=image.view, instances=[image])
    study = Study(
        study_uid=image.study_uid, study_date=sent.date, description=sent.description, series=[series]
    )
    return PriorStudy(study=study, instance=image)


def encode_result(result: ToolResult, settings: Settings) -> ToolReply:
    """The reply for ``result``: artifact files under the server's artifacts folder travel with
    it and are then removed from the server (patient-derived images are not kept there)."""
    files: dict[str, WireFile] = {}
    root = settings.artifacts_dir.resolve()
    for artifact in result.artifacts:
        path = Path(artifact.path)
        try:
            if not path.resolve().is_relative_to(root) or not path.is_file():
                continue
            if path.stat().st_size <= MAX_ARTIFACT_BYTES:
                files[artifact.path] = WireFile.of(path.name, path.read_bytes())
            else:
                log.warning("artifact %s not sent: larger than %d MB", path.name, MAX_ARTIFACT_BYTES >> 20)
            path.unlink()  # sent or not, it is not kept here
        except OSError as exc:
            log.warning("artifact %s not sent: %s", path.name, exc)
    return ToolReply(result=result, files=files)
