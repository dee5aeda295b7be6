"""The least patient data a remote tool needs: the image and its geometry, nothing that names
the patient.

A request to a ``copilot serve`` server carries the DICOM instance rebuilt from an allow-list
(image pixel module, modality/VOI LUTs, plane geometry, projection view, UIDs to key results)
and the instance's index record with every identifying field emptied. An allow-list rather than
the PS3.15 deny-list because a tool needs few attributes, and free text, private tags and
sequences the list does not name (where identifiers hide) are then left out by construction.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from copilot.study.model import InstanceRecord

# Keywords a tool reads from a file (pixel decoding, LUTs, geometry, view, series membership).
KEPT_KEYWORDS = frozenset(
    {
        # SOP common, study/series membership (results and volumes are keyed by these UIDs)
        "SpecificCharacterSet",
        "SOPClassUID",
        "SOPInstanceUID",
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "FrameOfReferenceUID",
        "Modality",
        "SeriesNumber",
        "InstanceNumber",
        "AcquisitionNumber",
        "ImageType",
        "BodyPartExamined",
        "Laterality",
        "ImageLaterality",
        "PatientPosition",
        "PatientOrientation",
        "ViewPosition",
        "ViewCodeSequence",
        "PresentationIntentType",
        "BurnedInAnnotation",
        "LossyImageCompression",
        # image pixel module
        "Rows",
        "Columns",
        "SamplesPerPixel",
        "PhotometricInterpretation",
        "BitsAllocated",
        "BitsStored",
        "HighBit",
        "PixelRepresentation",
        "PlanarConfiguration",
        "NumberOfFrames",
        "PixelAspectRatio",
        "PixelPaddingValue",
        "PixelPaddingRangeLimit",
        "PixelData",
        "FloatPixelData",
        "DoubleFloatPixelData",
        "SmallestImagePixelValue",
        "LargestImagePixelValue",
        "RedPaletteColorLookupTableDescriptor",
        "GreenPaletteColorLookupTableDescriptor",
        "BluePaletteColorLookupTableDescriptor",
        "RedPaletteColorLookupTableData",
        "GreenPaletteColorLookupTableData",
        "BluePaletteColorLookupTableData",
        # modality and VOI LUTs
        "RescaleIntercept",
        "RescaleSlope",
        "RescaleType",
        "ModalityLUTSequence",
        "WindowCenter",
        "WindowWidth",
        "VOILUTFunction",
        "VOILUTSequence",
        "PixelIntensityRelationship",
        "PixelIntensityRelationshipSign",
        # plane geometry and projection spacing
        "PixelSpacing",
        "ImagerPixelSpacing",
        "NominalScannedPixelSpacing",
        "PixelSpacingCalibrationType",
        "EstimatedRadiographicMagnificationFactor",
        "ImageOrientationPatient",
        "ImagePositionPatient",
        "SliceThickness",
        "SpacingBetweenSlices",
        "SliceLocation",
        # enhanced multi-frame geometry (functional groups hold positions, spacing and LUTs)
        "SharedFunctionalGroupsSequence",
        "PerFrameFunctionalGroupsSequence",
    }
)

# Index-record fields a tool never needs and that identify the patient or the visit.
IDENTIFYING_FIELDS = (
    "patient_id",
    "patient_name",
    "patient_birth_date",
    "patient_age",
    "patient_sex",
    "accession_number",
    "institution",
    "physicians",
    "study_date",
    "study_time",
    "study_description",
    "series_description",
)


def minimal_dicom(path: str) -> bytes:
    """The instance at ``path`` rebuilt with only :data:`KEPT_KEYWORDS` (and its file meta),
    as DICOM Part 10 bytes."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset

    source = pydicom.dcmread(path)
    kept = Dataset()
    for element in source:
        if element.keyword in KEPT_KEYWORDS:
            if element.VR == "SQ":
                for item in element.value:
                    _clean_item(item)
            kept.add(element)
    meta = FileMetaDataset()
    for key in ("MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID", "TransferSyntaxUID"):
        if key in source.file_meta:
            setattr(meta, key, source.file_meta[key].value)
    kept.file_meta = meta
    kept.preamble = b"\0" * 128
    buffer = io.BytesIO()
    kept.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


#: Value representations that can carry a person, a date or free text; dropped inside sequences.
_TEXT_VRS = frozenset({"PN", "DA", "DT", "TM", "LO", "LT", "SH", "ST", "UT", "UC", "AE"})


#: A coded concept (e.g. the view code of a radiograph) is kept whole.
_CODE_KEYWORDS = frozenset({"CodeValue", "CodingSchemeDesignator", "CodingSchemeVersion", "CodeMeaning"})


def _clean_item(item: Any) -> None:
    """Inside a kept sequence (functional groups, LUTs, view codes): no private tags, no person,
    date, time or free-text values, at any depth."""
    item.remove_private_tags()
    for element in list(item):
        if element.VR == "SQ":
            for child in element.value:
                _clean_item(child)
        elif element.VR in _TEXT_VRS and element.keyword not in _CODE_KEYWORDS:
            del item[element.tag]


def minimal_record(record: InstanceRecord) -> dict[str, Any]:
    """The index record as JSON with every identifying field emptied (the path is the
    server's business: it names its own copy)."""
    data = record.model_dump(mode="json")
    for field in IDENTIFYING_FIELDS:
        data[field] = [] if isinstance(data.get(field), list) else ""
    data["path"] = ""
    return data
