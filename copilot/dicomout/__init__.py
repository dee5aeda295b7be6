"""Results as DICOM objects and sending them to a PACS.

- :mod:`copilot.dicomout.sr`: an answer as a DICOM Structured Report (TID 1500 measurement
  report, with highdicom), and reading one back.
- :mod:`copilot.dicomout.seg`: a tool's masks as a DICOM Segmentation (highdicom), for one
  image or a whole volume; the segmenters call it.
- :mod:`copilot.dicomout.push`: storing DICOM files on a DICOMweb server (STOW-RS).

Heavy libraries (highdicom, dicomweb-client) are imported inside the functions.
"""
