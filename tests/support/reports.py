"""Reports as an archive stores them, for tests: a radiologist's Basic Text SR, an Encapsulated
PDF (a real PDF with a text layer, written byte by byte), CDA and text documents."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from copilot.study.results import ENCAPSULATED_CDA, ENCAPSULATED_PDF

BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"


def pdf_bytes(lines: Sequence[str]) -> bytes:
    """A one-page PDF (Helvetica, one text line per entry) whose text layer holds ``lines``."""

    def literal(text: str) -> str:
        return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"

    shown = " 0 -16 Td ".join(f"{literal(line)} Tj" for line in lines)
    content = f"BT /F1 11 Tf 72 740 Td {shown} ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _base(
    sop_class: str, modality: str, study_uid: str, patient_id: str, content_date: str, series_uid: str | None
) -> FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.Modality = modality
    ds.PatientID = patient_id
    ds.PatientName = "TEST^PATIENT"
    ds.StudyDate = content_date
    ds.ContentDate = content_date
    ds.Manufacturer = "Hospital RIS"
    ds.SeriesDescription = "Radiology report"
    ds.SeriesNumber = 99
    ds.InstanceNumber = 1
    return ds


def write_encapsulated(
    path: Path,
    document: bytes,
    *,
    study_uid: str,
    patient_id: str,
    content_date: str,
    mime_type: str = "application/pdf",
    sop_class: str = ENCAPSULATED_PDF,
    title: str = "Chest radiograph report",
) -> Path:
    """An Encapsulated PDF (or, by ``sop_class`` and ``mime_type``, CDA or text) document."""
    ds = _base(sop_class, "DOC", study_uid, patient_id, content_date, None)
    ds.DocumentTitle = title
    ds.MIMETypeOfEncapsulatedDocument = mime_type
    ds.BurnedInAnnotation = "YES"
    padded = document + (b"\0" if len(document) % 2 else b"")
    ds.EncapsulatedDocument = padded
    ds.EncapsulatedDocumentLength = len(document)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_cda(
    path: Path, sections: dict[str, str], *, study_uid: str, patient_id: str, content_date: str
) -> Path:
    """An Encapsulated CDA whose body has one titled section per entry (its header names the
    patient and the author, which a reader must leave out)."""
    body = "".join(
        f"<component><section><title>{title}</title><text><paragraph>{text}</paragraph></text></section></component>"
        for title, text in sections.items()
    )
    xml = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY boom "BOOM">]><ClinicalDocument xmlns="urn:hl7-org:v3">'
        "<recordTarget><patientRole><patient><name><given>Zebediah</given><family>Quixote</family>"
        "</name></patient></patientRole></recordTarget><!-- author note -->"
        f"<component><structuredBody>{body}</structuredBody></component></ClinicalDocument>"
    )
    return write_encapsulated(
        path,
        xml.encode(),
        study_uid=study_uid,
        patient_id=patient_id,
        content_date=content_date,
        mime_type="text/xml",
        sop_class=ENCAPSULATED_CDA,
    )


def _code(value: str, meaning: str) -> DicomSequence:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "99TEST"
    item.CodeMeaning = meaning
    return DicomSequence([item])


def write_text_sr(
    path: Path,
    sections: dict[str, str],
    *,
    study_uid: str,
    patient_id: str,
    content_date: str,
    observer: str = "RADIOLOGIST^JANE",
) -> Path:
    """A radiologist's Basic Text SR: a "Radiology Report" container with an observer (a
    person name, which a reader must leave out) and one container per section holding one TEXT
    item each."""
    ds = _base(BASIC_TEXT_SR, "SR", study_uid, patient_id, content_date, None)
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    ds.ConceptNameCodeSequence = _code("18748-4", "Radiology Report")
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    person = Dataset()
    person.RelationshipType = "HAS OBS CONTEXT"
    person.ValueType = "PNAME"
    person.ConceptNameCodeSequence = _code("121008", "Person Observer Name")
    person.PersonName = observer
    items = [person]
    for title, text in sections.items():
        leaf = Dataset()
        leaf.RelationshipType = "CONTAINS"
        leaf.ValueType = "TEXT"
        leaf.ConceptNameCodeSequence = _code("121071", title.rstrip("s"))
        leaf.TextValue = text
        section = Dataset()
        section.RelationshipType = "CONTAINS"
        section.ValueType = "CONTAINER"
        section.ContinuityOfContent = "SEPARATE"
        section.ConceptNameCodeSequence = _code("121070", title)
        section.ContentSequence = DicomSequence([leaf])
        items.append(section)
    ds.ContentSequence = DicomSequence(items)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
