"""DICOM study indexing, pixel loading and de-identified summaries."""

from copilot.study.index import index_folder
from copilot.study.model import InstanceRecord, Series, SkippedFile, Study, StudySet

__all__ = ["InstanceRecord", "Series", "SkippedFile", "Study", "StudySet", "index_folder"]
