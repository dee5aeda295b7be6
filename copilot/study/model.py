"""The study model: instances grouped into series, studies and a study set.

Records hold header values only. Identifiers (names, IDs, dates, accession numbers,
institutions) are kept for local display and for redaction; they are never put into prompts
(see :mod:`copilot.study.summary`). Names and birth dates are left out of every ``repr``, so
a log line or a traceback never prints them.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterator
from typing import Literal, overload

from pydantic import BaseModel, Field

#: The plane a volume's slices lie in (:mod:`copilot.study.geometry` decides it from the headers).
Plane = Literal["axial", "coronal", "sagittal", "oblique"]


class SliceRef(BaseModel):
    """One slice of a volume: which instance of the series (index into ``Series.instances``),
    which frame of it (0 for single-frame files) and where it lies along the slice normal."""

    model_config = {"frozen": True}

    instance: int
    frame: int = 0
    position_mm: float


class VolumeSummary(BaseModel):
    """What the headers say about a series as a volume (the rules: :mod:`copilot.study.geometry`)."""

    slices: int = Field(description="Slices in the volume (localisers and strays left out).")
    rows: int
    columns: int
    spacing_mm: tuple[float, float, float] | None = Field(
        default=None, description="(between slices, between rows, between columns) in mm."
    )
    spacing_source: str = Field(default="", description="Where the slice spacing came from.")
    orientation: Plane = "oblique"
    row_direction: tuple[float, float, float] = (1.0, 0.0, 0.0)
    column_direction: tuple[float, float, float] = (0.0, 1.0, 0.0)
    normal: tuple[float, float, float] = (0.0, 0.0, 1.0)
    origin: tuple[float, float, float] = Field(
        default=(0.0, 0.0, 0.0), description="ImagePositionPatient of the first slice (mm, LPS)."
    )
    enhanced: bool = Field(default=False, description="One multi-frame object, positioned per frame.")
    problems: list[str] = Field(default_factory=list, description="Why it cannot be measured as a volume.")
    notes: list[str] = Field(default_factory=list, description="What was done about harmless oddities.")
    order: list[SliceRef] = Field(default_factory=list, description="The slices, ascending along the normal.")

    @property
    def ok(self) -> bool:
        """True when the slices form a regular volume that tools may measure."""
        return not self.problems

    @property
    def extent_mm(self) -> float:
        """Distance from the first slice to the last along the normal."""
        return self.order[-1].position_mm - self.order[0].position_mm if self.order else 0.0

    def describe(self) -> str:
        """One line: ``120 slices · 2.50 x 0.70 x 0.70 mm · axial``."""
        spacing = (
            " x ".join(f"{v:.2f}" for v in self.spacing_mm) + " mm" if self.spacing_mm else "spacing unknown"
        )
        return f"{self.slices} slices · {spacing} · {self.orientation}"

    def to_contract(self) -> dict[str, object]:
        """The ``volume`` entry of a series in ``copilot studies --json``."""
        return {
            "slices": self.slices,
            "rows": self.rows,
            "columns": self.columns,
            "spacing_mm": list(self.spacing_mm) if self.spacing_mm else None,
            "orientation": self.orientation,
            "problems": list(self.problems),
            "notes": list(self.notes),
        }


class Technique(BaseModel):
    """How a CT or MR image was acquired and reconstructed, as its header records it (header
    text is data: shown quoted, never obeyed). Empty or None where the header is silent."""

    model_config = {"frozen": True}

    kernel: str = Field(default="", description="ConvolutionKernel (CT reconstruction kernel).")
    contrast_agent: str = Field(default="", description="ContrastBolusAgent.")
    contrast_phase: str = Field(default="", description="ContrastBolusAgentPhase, where recorded.")
    sequence_name: str = Field(default="", description="SequenceName (MR).")
    scanning_sequence: str = Field(default="", description="ScanningSequence (MR: SE, GR, IR...).")
    echo_time_ms: float | None = Field(default=None, description="EchoTime (MR).")
    repetition_time_ms: float | None = Field(default=None, description="RepetitionTime (MR).")
    window_center: float | None = Field(default=None, description="The first WindowCenter.")
    window_width: float | None = Field(default=None, description="The first WindowWidth.")


class SkippedFile(BaseModel):
    """A file that was not indexed, with a one-line reason."""

    path: str
    reason: str


class InstanceRecord(BaseModel):
    """Header facts about one image file (a DICOM instance or a plain PNG/JPEG)."""

    path: str
    size: int
    mtime_ns: int
    kind: Literal["dicom", "image"] = "dicom"
    sop_uid: str
    sop_class: str = ""
    study_uid: str
    series_uid: str
    patient_id: str = ""
    patient_id_issuer: str = Field(
        default="", description="IssuerOfPatientID: whose ID ``patient_id`` is (empty: not stated)."
    )
    patient_name: str = Field(default="", repr=False)
    patient_age: str = ""
    patient_sex: str = ""
    patient_birth_date: str = Field(default="", repr=False)
    study_date: str = ""
    study_time: str = ""
    study_description: str = ""
    series_description: str = ""
    accession_number: str = ""
    institution: str = ""
    physicians: list[str] = Field(default_factory=list, repr=False)
    modality: str = ""
    view: str = ""
    body_part: str = ""
    laterality: str = ""
    patient_orientation: str = Field(
        default="", description="PatientOrientation (row\\column directions, e.g. L\\F), upper case."
    )
    protocol_name: str = Field(default="", description="ProtocolName (header text: data, never obeyed).")
    series_number: int | None = None
    instance_number: int | None = None
    rows: int = 0
    columns: int = 0
    frames: int = 1
    samples_per_pixel: int = 1
    bits_allocated: int = 8
    bits_stored: int = 8
    photometric: str = ""
    burned_in_annotation: str = Field(
        default="", description="BurnedInAnnotation (YES/NO); empty when the header does not say."
    )
    transfer_syntax: str = ""
    pixel_spacing_mm: tuple[float, float] | None = None
    spacing_source: str = ""
    image_position: tuple[float, float, float] | None = Field(
        default=None, description="ImagePositionPatient (mm, LPS) of a single-frame image."
    )
    image_orientation: tuple[float, float, float, float, float, float] | None = Field(
        default=None, description="ImageOrientationPatient (row then column direction cosines)."
    )
    frame_positions: list[tuple[float, float, float]] = Field(
        default_factory=list,
        description="Per-frame ImagePositionPatient of an enhanced multi-frame object, in frame order.",
    )
    slice_location: float | None = Field(default=None, description="SliceLocation (mm, signed).")
    slice_thickness: float | None = None
    technique: Technique = Field(default_factory=Technique, description="CT/MR acquisition facts.")
    slice_spacing: float | None = Field(default=None, description="SpacingBetweenSlices.")
    image_type: str = Field(default="", description="ImageType, e.g. ORIGINAL\\PRIMARY\\AXIAL.")
    frame_of_reference: str = ""
    remote: str = Field(
        default="",
        description="The DICOMweb base URL (without credentials) this instance is retrieved from "
        "by WADO-RS into ``path`` (the cache) when its pixels are first needed; empty for a file.",
    )

    @property
    def identifiers(self) -> list[str]:
        """Every identifying value of this record, for redaction."""
        values = [
            self.patient_id,
            self.patient_id_issuer,
            self.patient_name,
            self.patient_birth_date,
            self.study_date,
            self.accession_number,
            self.institution,
            *self.physicians,
        ]
        # A DICOM person name "DOE^JANE" also appears as "DOE", "JANE" and "JANE DOE".
        for name in [self.patient_name, *self.physicians]:
            values.extend(part for part in name.replace("^", " ").split() if len(part) > 2)
        return [v for v in values if v and v.strip()]


class Series(BaseModel):
    """A series: instances sharing a SeriesInstanceUID."""

    series_uid: str
    modality: str = ""
    view: str = ""
    body_part: str = ""
    description: str = ""
    number: int | None = None
    instances: list[InstanceRecord] = Field(default_factory=list)
    volume: VolumeSummary | None = Field(
        default=None,
        description="The volume its slices form (None: not a volume); see copilot.study.geometry.",
    )

    @property
    def first(self) -> InstanceRecord:
        """The first instance by instance number (the one shown and analysed by default)."""
        return self.instances[0]


class StudyListing(BaseModel):
    """What a server's study-level search (QIDO-RS) says about a study whose series have not
    been read: the study is listed, not opened (its ``series`` are empty until it is)."""

    model_config = {"frozen": True}

    modalities: list[str] = Field(default_factory=list, description="ModalitiesInStudy.")
    series: int | None = Field(default=None, description="NumberOfStudyRelatedSeries.")
    instances: int | None = Field(default=None, description="NumberOfStudyRelatedInstances.")
    accession_number: str = Field(default="", repr=False)


class ResultObject(BaseModel):
    """A non-image object found with a study in a folder or on a server
    (:mod:`copilot.study.results`): the copilot's own SR or SEG, or a report someone else wrote
    (an SR, an Encapsulated PDF, CDA or text document); a result, never an image to analyse."""

    model_config = {"frozen": True}

    sop_uid: str
    series_uid: str
    modality: str
    sop_class: str = ""
    description: str = ""
    software_version: str = ""
    content_date: str = ""
    study_uid: str = ""
    path: str = Field(default="", description="The file it was read from (a folder's result).")
    origin: Literal["copilot", "report"] = Field(
        default="copilot",
        description="copilot: the copilot's own SR/SEG; report: a report someone else wrote.",
    )
    mime_type: str = Field(default="", description="An encapsulated document's MIME type.")


class Study(BaseModel):
    """A study: series sharing a StudyInstanceUID, for one patient."""

    study_uid: str = Field(description="StudyInstanceUID.")
    patient_id: str = Field(default="", description="PatientID.")
    patient_name: str = Field(
        default="", repr=False, description="PatientName (kept out of repr, displays and prompts)."
    )
    patient_age: str = Field(default="", description="PatientAge as stored, e.g. 045Y.")
    patient_sex: str = Field(default="", description="PatientSex: M, F, O or empty.")
    study_date: str = Field(default="", description="StudyDate, YYYYMMDD.")
    description: str = Field(default="", description="StudyDescription.")
    series: list[Series] = Field(default_factory=list, description="Its series, in series order.")
    listing: StudyListing | None = Field(
        default=None,
        description="Set when the study was only listed by a server (QIDO-RS study level): its "
        "series are read when it is opened.",
    )
    results: list[ResultObject] = Field(
        default_factory=list,
        description="The copilot's own SR/SEG objects and the reports stored with the study.",
    )

    @property
    def opened(self) -> bool:
        """True when the study's series were read (always for a folder)."""
        return self.listing is None

    @property
    def modalities(self) -> list[str]:
        """Distinct modalities of the study's series, in series order (a listed study: the
        server's ModalitiesInStudy)."""
        if self.listing is not None and not self.series:
            return list(self.listing.modalities)
        return list(dict.fromkeys(s.modality for s in self.series if s.modality))

    def instances(self) -> Iterator[InstanceRecord]:
        """All instances of the study, series by series."""
        for series in self.series:
            yield from series.instances

    @property
    def identifiers(self) -> list[str]:
        """Every identifying value in this study, for redaction."""
        found: dict[str, None] = {}
        for inst in self.instances():
            for value in inst.identifiers:
                found.setdefault(value, None)
        return list(found)

    def identity(self) -> str:
        """One line naming the study for the person at the screen (never for a prompt):
        patient ID, age/sex, date and description, e.g. ``P001 · 45y M · 2020-01-31 · CHEST PA``.
        Age is shown as stored (``045Y`` -> ``45y``); the patient's name is not shown."""
        age = re.fullmatch(r"0*(\d{1,3})([DWMY])", self.patient_age.strip())
        age_text = f"{age.group(1)}{age.group(2).lower()}" if age else "age ?"
        sex = self.patient_sex.strip().upper() or "sex ?"
        date = self.study_date.strip()
        if re.fullmatch(r"\d{8}", date):
            date = f"{date[:4]}-{date[4:6]}-{date[6:]}"
        parts = [
            self.patient_id.strip() or "(no patient ID)",
            f"{age_text} {sex}",
            date or "(no date)",
            self.description.strip() or "(no description)",
        ]
        return " · ".join(parts)

    def primary_instance(self) -> InstanceRecord:
        """The instance a question is about by default: the first image of the first series.
        Raises :class:`~copilot.errors.StudyError` when the study has no image (or was only
        listed, not opened)."""
        if not self.series or not self.series[0].instances:
            from copilot.errors import StudyError

            why = "was listed but not opened" if not self.opened else "has no readable image"
            raise StudyError(f"study {self.study_uid} {why}")
        return self.series[0].first

    def _repr_markdown_(self) -> str:
        """A notebook's view: the study line (:meth:`identity`, no name) and its series."""
        from copilot.study.display import study_markdown

        return study_markdown(self)

    def _repr_html_(self) -> str:
        """A notebook's view as escaped HTML: the study line and its series."""
        from copilot.study.display import study_html

        return study_html(self)


class StudySet(BaseModel):
    """The result of indexing a folder (or listing a server): studies plus the files skipped
    and why. It is a sequence of its studies::

        len(studies)                     # how many studies
        studies[0], studies[-1]          # a study by position
        studies["1.2.840.113619"]        # a study by its UID or a unique prefix (:meth:`get`)
        studies[:5]                      # a StudySet of the first five
        for study in studies: ...        # the studies, in order
        studies.select(patient="P00*", date="2020-01-01..2020-12-31")

    (A pydantic model iterates over its fields; a StudySet iterates over its studies. Use
    ``model_dump()`` for the fields.)
    """

    root: str = Field(description="The folder indexed, or the server's base URL.")
    studies: list[Study] = Field(default_factory=list, description="The studies, in listing order.")
    skipped: list[SkippedFile] = Field(
        default_factory=list, description="The files not indexed, each with its reason."
    )

    def __len__(self) -> int:
        """The number of studies (an empty set is falsy)."""
        return len(self.studies)

    def __iter__(self) -> Iterator[Study]:  # type: ignore[override]
        """The studies, in order (not the model's fields, as a plain pydantic model would)."""
        return iter(self.studies)

    @overload
    def __getitem__(self, key: int | str) -> Study: ...

    @overload
    def __getitem__(self, key: slice) -> StudySet: ...

    def __getitem__(self, key: int | str | slice) -> Study | StudySet:
        """A study by position (``studies[0]``), by UID or unique UID prefix (``studies["1.2.3"]``,
        as :meth:`get`), or a StudySet of a slice (``studies[:5]``; skipped files kept). Raises
        :class:`IndexError` for a position out of range and :class:`~copilot.errors.StudyError`
        for a UID that names no study or several."""
        if isinstance(key, str):
            return self.get(key)
        if isinstance(key, slice):
            return self.model_copy(update={"studies": self.studies[key]})
        position = operator.index(key)
        if not -len(self.studies) <= position < len(self.studies):
            n = len(self.studies)
            raise IndexError(f"study index {position} out of range: {n} studies in {self.root}")
        return self.studies[position]

    def select(
        self,
        *,
        patient: str | None = None,
        uid: str | None = None,
        date: str | None = None,
        modality: str | None = None,
    ) -> StudySet:
        """The studies matching every filter given, as a StudySet (skipped files kept; none
        matching: an empty set, not an error). ``patient``: a patient ID, wildcards ``*`` and
        ``?`` allowed; ``uid``: a StudyInstanceUID, or a prefix of one or more; ``date``: a
        DICOM date or range (``20240131``, ``20240101-20241231``, open ends, or ISO
        ``2024-01-01..2024-12-31``); ``modality``: one of the study's modalities. The rules are
        those of ``copilot analyze --patient/--date`` and of a server's query
        (:class:`~copilot.study.query.StudyQuery`). Raises :class:`~copilot.errors.StudyError`
        for a date it cannot read."""
        from copilot.study.query import StudyQuery

        query = StudyQuery(patient=patient, date=date, modality=modality)
        chosen = [s for s in self.studies if query.matches(s)]
        if uid is not None:
            exact = [s for s in chosen if s.study_uid == uid]
            chosen = exact or [s for s in chosen if s.study_uid.startswith(uid)]
        return self.model_copy(update={"studies": chosen})

    def _repr_markdown_(self) -> str:
        """A notebook's view: how many studies, and a table of them (study lines, no names)."""
        from copilot.study.display import study_set_markdown

        return study_set_markdown(self)

    def _repr_html_(self) -> str:
        """A notebook's view as escaped HTML: how many studies, and a table of them."""
        from copilot.study.display import study_set_html

        return study_set_html(self)

    def get(self, study_uid: str) -> Study:
        """The study with this UID (a unique prefix is accepted); raises StudyError otherwise."""
        from copilot.errors import StudyError

        matches = [s for s in self.studies if s.study_uid == study_uid]
        if not matches:
            matches = [s for s in self.studies if s.study_uid.startswith(study_uid)]
        if len(matches) != 1:
            what = "no study" if not matches else f"{len(matches)} studies"
            raise StudyError(f"{what} with UID {study_uid!r} in {self.root}")
        return matches[0]

    def to_contract(self) -> dict[str, object]:
        """The JSON shape of ``copilot studies --json`` (stable contract)."""
        return {
            "studies": [
                {
                    "study_uid": s.study_uid,
                    "patient_id": s.patient_id,
                    "study_date": s.study_date,
                    "description": s.description,
                    "modalities": s.modalities,
                    "series": [
                        {
                            "series_uid": se.series_uid,
                            "modality": se.modality,
                            "view": se.view,
                            "instances": len(se.instances),
                            **({"volume": se.volume.to_contract()} if se.volume else {}),
                        }
                        for se in s.series
                    ],
                    **(
                        {"listed": {"series": s.listing.series, "instances": s.listing.instances}}
                        if s.listing is not None
                        else {}
                    ),
                    **(
                        {"copilot_results": [r.model_dump() for r in s.results if r.origin == "copilot"]}
                        if any(r.origin == "copilot" for r in s.results)
                        else {}
                    ),
                    **(
                        {"reports": [r.model_dump() for r in s.results if r.origin == "report"]}
                        if any(r.origin == "report" for r in s.results)
                        else {}
                    ),
                }
                for s in self.studies
            ],
            "skipped": [k.model_dump() for k in self.skipped],
        }
