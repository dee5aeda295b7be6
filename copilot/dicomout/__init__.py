"""Results as DICOM objects and sending them to a PACS.

- :mod:`copilot.dicomout.sr`: an answer as a DICOM Structured Report (TID 1500 measurement
  report, with highdicom), and reading one back.
- :mod:`copilot.dicomout.push`: storing DICOM files on a DICOMweb server (STOW-RS).

Masks are written as DICOM SEG by the segmenter (``copilot.tools.builtin.seg_export``).
Heavy libraries (highdicom, dicomweb-client) are imported inside the functions.
"""
