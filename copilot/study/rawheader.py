"""A pydicom-free header reader for the common file: Part 10, little endian.

``copilot studies`` on 5,000 radiographs spent as long importing pydicom (and numpy, which it
pulls in) and running its general element parser as it did on everything else, so a plain
``dcmread`` loop beat it. This module walks the top-level elements of the usual file with
``struct`` over one buffer, keeps the ~55 the index reads, and builds the record through the
same :func:`copilot.study.header_values.build_record` as the pydicom path (3x faster a file, and
nothing to import).

It is a fast path, not a second parser to trust: whatever is not plainly the common case
(no preamble, a big-endian or deflated transfer syntax, a character set other than
ASCII/Latin-1/UTF-8, an unknown VR, a truncated or inconsistent element, functional groups,
an unsupported image) raises :class:`NeedPydicom`, and the caller reads the file with pydicom,
which gives the same record or the reason the file is skipped. For a compressed transfer
syntax, whether a decoder is installed is still pydicom's answer (imported on first need).
``tests/test_rawheader.py`` checks that both readers agree on every DICOM file at hand.
"""

from __future__ import annotations

import functools
import struct
from typing import Any, BinaryIO

from copilot.errors import UnreadableFileError
from copilot.escape import escape_controls
from copilot.study.header_values import (
    PIXEL_DATA_TAGS,
    SIMPLE_CHARSETS,
    TEXT_VRS,
    UNDEFINED_LENGTH,
    build_record,
    expected_pixel_bytes,
    floats_from_text,
    image_geometry,
    int_from_text,
    max_pixel_bytes,
    pixel_element_header,
)
from copilot.study.model import InstanceRecord
from copilot.study.results import is_result_modality

#: Keyword -> (tag, VR from the DICOM dictionary) of every element the index reads.
ELEMENTS: dict[str, tuple[int, str]] = {
    "MediaStorageSOPClassUID": (0x00020002, "UI"),
    "TransferSyntaxUID": (0x00020010, "UI"),
    "SpecificCharacterSet": (0x00080005, "CS"),
    "ImageType": (0x00080008, "CS"),
    "SOPClassUID": (0x00080016, "UI"),
    "SOPInstanceUID": (0x00080018, "UI"),
    "StudyDate": (0x00080020, "DA"),
    "StudyTime": (0x00080030, "TM"),
    "AccessionNumber": (0x00080050, "SH"),
    "Modality": (0x00080060, "CS"),
    "InstitutionName": (0x00080080, "LO"),
    "ReferringPhysicianName": (0x00080090, "PN"),
    "StudyDescription": (0x00081030, "LO"),
    "SeriesDescription": (0x0008103E, "LO"),
    "PerformingPhysicianName": (0x00081050, "PN"),
    "OperatorsName": (0x00081070, "PN"),
    "PatientName": (0x00100010, "PN"),
    "PatientID": (0x00100020, "LO"),
    "IssuerOfPatientID": (0x00100021, "LO"),
    "PatientBirthDate": (0x00100030, "DA"),
    "PatientSex": (0x00100040, "CS"),
    "PatientAge": (0x00101010, "AS"),
    "ContrastBolusAgent": (0x00180010, "LO"),
    "BodyPartExamined": (0x00180015, "CS"),
    "ScanningSequence": (0x00180020, "CS"),
    "SequenceName": (0x00180024, "SH"),
    "SliceThickness": (0x00180050, "DS"),
    "RepetitionTime": (0x00180080, "DS"),
    "EchoTime": (0x00180081, "DS"),
    "SpacingBetweenSlices": (0x00180088, "DS"),
    "ProtocolName": (0x00181030, "LO"),
    "ImagerPixelSpacing": (0x00181164, "DS"),
    "ConvolutionKernel": (0x00181210, "SH"),
    "ViewPosition": (0x00185101, "CS"),
    "ContrastBolusAgentPhase": (0x00189344, "CS"),
    "StudyInstanceUID": (0x0020000D, "UI"),
    "SeriesInstanceUID": (0x0020000E, "UI"),
    "SeriesNumber": (0x00200011, "IS"),
    "InstanceNumber": (0x00200013, "IS"),
    "PatientOrientation": (0x00200020, "CS"),
    "ImagePositionPatient": (0x00200032, "DS"),
    "ImageOrientationPatient": (0x00200037, "DS"),
    "FrameOfReferenceUID": (0x00200052, "UI"),
    "Laterality": (0x00200060, "CS"),
    "ImageLaterality": (0x00200062, "CS"),
    "SliceLocation": (0x00201041, "DS"),
    "SamplesPerPixel": (0x00280002, "US"),
    "PhotometricInterpretation": (0x00280004, "CS"),
    "NumberOfFrames": (0x00280008, "IS"),
    "Rows": (0x00280010, "US"),
    "Columns": (0x00280011, "US"),
    "PixelSpacing": (0x00280030, "DS"),
    "BitsAllocated": (0x00280100, "US"),
    "BitsStored": (0x00280101, "US"),
    "WindowCenter": (0x00281050, "DS"),
    "WindowWidth": (0x00281051, "DS"),
    "BurnedInAnnotation": (0x00280301, "CS"),
}
_VR_OF = {tag: vr for tag, vr in ELEMENTS.values()}

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
#: Transfer syntaxes whose data set is not explicit VR little endian (implicit LE aside).
NOT_EXPLICIT_LE = frozenset({"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"})
#: Compressed syntaxes pydicom decodes with numpy alone (a dependency): RLE Lossless. No need
#: to import pydicom to ask (``tests/test_rawheader.py`` checks pydicom still says so).
NUMPY_DECODABLE = frozenset({"1.2.840.10008.1.2.5"})
PER_FRAME_GROUPS = 0x52009230
UNDEFINED = UNDEFINED_LENGTH
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
#: Explicit-VR VRs with two reserved bytes and a 32-bit length (PS3.5 7.1.2).
LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
SHORT_VRS = frozenset(
    {
        b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT",
        b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US",
    }
)  # fmt: skip
#: First read, and the largest header this path reads (bigger ones go to pydicom).
FIRST_READ = 16 * 1024
MAX_HEADER = 8 * 2**20

_TAG_LEN = struct.Struct("<HHL").unpack_from
_EXPLICIT = struct.Struct("<HH2sH").unpack_from
_U32 = struct.Struct("<L").unpack_from
_U16 = struct.Struct("<H").unpack_from
_S16 = struct.Struct("<h").unpack_from
_S32 = struct.Struct("<l").unpack_from


class NeedPydicom(Exception):
    """This file is not the plain common case: read it with pydicom."""


class _Short(Exception):
    """The buffer ends inside the header: read more of the file."""


class RawHeader:
    """Values by keyword from raw little-endian elements, as :class:`HeaderReader` gives them
    (text escaped, multi-values joined by backslashes); :class:`NeedPydicom` where it would
    fall back to pydicom's conversion."""

    def __init__(self, elements: dict[int, tuple[str, bytes]], encoding: str) -> None:
        self.elements = elements
        self.encoding = encoding

    @property
    def ds(self) -> Any:
        """No pydicom dataset here (functional groups, which need one, go to pydicom)."""
        raise NeedPydicom("dataset access")

    def has(self, tag: int) -> bool:
        """Whether the element is present."""
        return tag in self.elements

    def _element(self, keyword: str) -> tuple[str, bytes] | None:
        spec = ELEMENTS.get(keyword)
        if spec is None:
            raise NeedPydicom(f"unlisted keyword {keyword}")
        return self.elements.get(spec[0])

    def text(self, keyword: str) -> str:
        """The value as text; "" when absent."""
        found = self._element(keyword)
        if found is None:
            return ""
        vr, value = found
        if vr not in TEXT_VRS:
            raise NeedPydicom(f"{keyword} has VR {vr}")
        return escape_controls(value.decode(self.encoding, "replace").strip("\x00 "))

    def integer(self, keyword: str) -> int | None:
        """An US/SS/UL/SL/IS value as int; None when absent or malformed."""
        found = self._element(keyword)
        if found is None:
            return None
        vr, value = found
        if vr in ("US", "SS") and len(value) >= 2:
            return int((_U16 if vr == "US" else _S16)(value)[0])
        if vr in ("UL", "SL") and len(value) >= 4:
            return int((_U32 if vr == "UL" else _S32)(value)[0])
        return int_from_text(self.text(keyword))

    def floats(self, keyword: str) -> list[float]:
        """A DS multi-value as floats; [] when absent or malformed."""
        return floats_from_text(self.text(keyword))


def _skip_sequence(buf: bytes, pos: int, implicit: bool) -> int:
    """Position after an undefined-length sequence whose items start at ``pos``."""
    while True:
        if pos + 8 > len(buf):
            raise _Short
        group, element, length = _TAG_LEN(buf, pos)
        tag = group << 16 | element
        pos += 8
        if tag == SEQUENCE_END:
            return pos
        if tag != ITEM:
            raise NeedPydicom("not an item in a sequence")
        if length != UNDEFINED:
            pos += length
            continue
        pos = _walk(buf, pos, implicit, {}, nested=True)


def _walk(
    buf: bytes,
    pos: int,
    implicit: bool,
    out: dict[int, tuple[str, bytes]],
    *,
    nested: bool,
    complete: bool = False,
) -> int:
    """Read elements from ``pos``: into ``out`` at the top level (stopping before pixel data),
    skipped inside an item (ending after its delimitation item). Returns where it stopped.
    ``complete``: ``buf`` holds the whole file."""
    end = len(buf)
    while True:
        if pos + 8 > end:
            if not nested and complete and pos == end:
                return pos  # the file ends here (no pixel data: pydicom says why)
            raise _Short
        if implicit:
            group, element, length = _TAG_LEN(buf, pos)
            tag = group << 16 | element
            vr = _VR_OF.get(tag, "")
            head = 8
        else:
            group, element, vr_bytes, length = _EXPLICIT(buf, pos)
            tag = group << 16 | element
            if tag in (ITEM, ITEM_END, SEQUENCE_END):
                vr, head = "", 8
                length = _U32(buf, pos + 4)[0]
            elif vr_bytes in LONG_VRS:
                if pos + 12 > end:
                    raise _Short
                vr, head = vr_bytes.decode("ascii"), 12
                length = _U32(buf, pos + 8)[0]
            elif vr_bytes in SHORT_VRS:
                vr, head = vr_bytes.decode("ascii"), 8
            else:
                raise NeedPydicom(f"VR {vr_bytes!r}")
        if nested and tag == ITEM_END:
            return pos + 8
        if tag >> 16 == 0xFFFE:
            raise NeedPydicom("delimiter out of place")
        if not nested and tag in PIXEL_DATA_TAGS:
            return pos
        if tag == PER_FRAME_GROUPS:
            raise NeedPydicom("functional groups")
        start = pos + head
        if length == UNDEFINED:
            if not (implicit or vr == "SQ"):
                raise NeedPydicom(f"undefined length {vr}")
            pos = _skip_sequence(buf, start, implicit)
            continue
        pos = start + length
        if pos > end:
            raise _Short
        if nested:
            continue
        if tag in out:
            raise NeedPydicom("repeated element")
        if tag in _VR_OF:
            if implicit:
                vr = _VR_OF[tag]
            out[tag] = (vr, buf[start:pos])


def _meta(buf: bytes) -> tuple[dict[int, tuple[str, bytes]], int]:
    """The file meta elements (group 0002, explicit VR little endian) and where they end."""
    meta: dict[int, tuple[str, bytes]] = {}
    pos = 132
    while True:
        if pos + 8 > len(buf):
            raise _Short
        group, element, vr_bytes, length = _EXPLICIT(buf, pos)
        if group != 0x0002:
            return meta, pos
        if vr_bytes in LONG_VRS:
            length = _U32(buf, pos + 8)[0]
            head = 12
        elif vr_bytes in SHORT_VRS:
            head = 8
        else:
            raise NeedPydicom(f"meta VR {vr_bytes!r}")
        if length == UNDEFINED or pos + head + length > len(buf):
            raise _Short if length != UNDEFINED else NeedPydicom("undefined length in meta")
        tag = group << 16 | element
        meta[tag] = (vr_bytes.decode("ascii"), buf[pos + head : pos + head + length])
        pos += head + length


def parse(fp: BinaryIO, size: int) -> tuple[RawHeader, RawHeader, str, int]:
    """(meta, dataset, transfer syntax, offset of the pixel data element or of the file's
    end) of a plain file; :class:`NeedPydicom` for anything else."""
    want = FIRST_READ
    while True:
        fp.seek(0)
        buf = fp.read(want)
        try:
            if len(buf) < 140 or buf[128:132] != b"DICM":
                raise NeedPydicom("no preamble")
            meta_elements, start = _meta(buf)
            meta = RawHeader(meta_elements, "latin-1")
            syntax = meta.text("TransferSyntaxUID")
            if not syntax or syntax in NOT_EXPLICIT_LE:
                raise NeedPydicom(f"transfer syntax {syntax!r}")
            elements: dict[int, tuple[str, bytes]] = {}
            complete = len(buf) < want or len(buf) == size
            stop = _walk(buf, start, syntax == IMPLICIT_LE, elements, nested=False, complete=complete)
        except _Short:
            if len(buf) < want or want >= MAX_HEADER:
                raise NeedPydicom("header ends early or is very large") from None
            want *= 4
            continue
        charset = elements.get(0x00080005)
        name = charset[1].decode("ascii", "replace").strip("\x00 ").split("\\")[0] if charset else ""
        encoding = SIMPLE_CHARSETS.get(name)
        if encoding is None:
            raise NeedPydicom(f"character set {name}")
        return meta, RawHeader(elements, encoding), syntax, stop


@functools.cache
def decodable(syntax: str) -> bool:
    """Whether pydicom has a working decoder for a compressed transfer syntax (imports it)."""
    from pydicom.pixels import get_decoder

    try:
        return bool(get_decoder(syntax).is_available)
    except (NotImplementedError, ValueError, KeyError):
        return False


def read_plain(fp: BinaryIO, path: str, size: int, mtime_ns: int, max_decoded_bytes: int) -> InstanceRecord:
    """The record of a plain, valid file; :class:`NeedPydicom` for any other (pydicom then
    reads it and gives the record, or the reason it is skipped)."""
    meta, h, syntax, stop = parse(fp, size)
    if is_result_modality(h.text("Modality")):
        raise NeedPydicom("an SR or SEG (maybe the copilot's own result)")
    if stop >= size:
        raise NeedPydicom("no pixel data")
    fp.seek(stop)
    pixel = pixel_element_header(fp, syntax != IMPLICIT_LE, True)
    if pixel is None or pixel[0] not in PIXEL_DATA_TAGS:
        raise NeedPydicom("pixel data element")
    if any(not h.text(k) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")):
        raise NeedPydicom("missing UIDs")
    try:
        rows, columns, frames, spp, bits = image_geometry(h, max_decoded_bytes)
    except UnreadableFileError as exc:
        raise NeedPydicom(exc.reason) from None
    declared = expected_pixel_bytes(rows, columns, frames, spp, bits)
    _, length, value_start = pixel
    native = syntax in (IMPLICIT_LE, EXPLICIT_LE)
    if length != UNDEFINED:
        if value_start + length > size or (native and length < declared):
            raise NeedPydicom("pixel data length")
    elif native or value_start >= size:
        raise NeedPydicom("pixel data length")
    stored = length if length != UNDEFINED else size - value_start
    if stored > max_pixel_bytes(declared):
        raise NeedPydicom("pixel data length")
    if not native and syntax not in NUMPY_DECODABLE and not decodable(syntax):
        raise NeedPydicom("no decoder")
    sop_class = h.text("SOPClassUID") or meta.text("MediaStorageSOPClassUID")
    return build_record(h, path, size, mtime_ns, sop_class, syntax)
