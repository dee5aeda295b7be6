"""Studies on a DICOMweb server: QIDO-RS lists them, WADO-RS fetches only what is needed.

    listed = list_dicomweb("http://pacs:8042/dicom-web", query=StudyQuery(patient="P00*"))
    studies, study = select_dicomweb(url, "ACC12345")         # one study, asked for directly
    fetch_instances([study.primary_instance()])

The public face of four modules, one job each:

- :mod:`~copilot.study.dicomweb_server`: one server, its session and credentials, the QIDO/
  WADO/STOW calls, each under a total deadline and a size cap
  (:mod:`~copilot.study.dicomweb_http`), and every failure as one line with its fix.
- :mod:`~copilot.study.dicomweb_listing`: lazy listing (study-level QIDO, paged), opening
  one study, selecting one study by UID, accession or patient, and opening every study with
  one bad study skipped with its reason.
- :mod:`~copilot.study.dicomweb_records`: an instance header as the folder's record, the
  copilot's own SR/SEG as a result.
- :mod:`~copilot.study.dicomweb_fetch`: pixels fetched on first use into the owner-only
  mirror, verified and kept.

Rules common to them: **same model as a folder** (``copilot studies URL --series --json``
prints what ``copilot studies FOLDER --json`` prints for the same files); **the server is only
read** here (``copilot push`` stores with STOW-RS, :meth:`DicomwebServer.store`); **credentials
are never printed**; **failures are one line**, a :class:`~copilot.errors.DicomwebError`.
"""

from __future__ import annotations

from copilot.study.dicomweb_fetch import fetch_instances
from copilot.study.dicomweb_listing import index_dicomweb, list_dicomweb, open_study, select_dicomweb
from copilot.study.dicomweb_server import DicomwebServer, is_dicomweb_url, safe_url

__all__ = [
    "DicomwebServer",
    "fetch_instances",
    "index_dicomweb",
    "is_dicomweb_url",
    "list_dicomweb",
    "open_study",
    "safe_url",
    "select_dicomweb",
]
