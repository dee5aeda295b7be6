"""StudySource: the one place "folder or DICOMweb server?" is decided (copilot.study.source)."""

from __future__ import annotations

from pathlib import Path

import pytest

from copilot.errors import NothingReadableError
from copilot.study.query import StudyQuery
from copilot.study.source import SOURCE_KINDS, DicomwebSource, FolderSource, StudySource, open_source
from copilot.testing import make_dicom


@pytest.mark.parametrize("url", ["http://pacs:8042/dicom-web", "HTTPS://pacs/dicom-web/"])
def test_an_http_url_is_a_dicomweb_server(url: str) -> None:
    source = open_source(url)
    assert isinstance(source, DicomwebSource) and isinstance(source, StudySource)
    assert source.action == "Listing" and source.protected() == []


def test_credentials_are_never_shown() -> None:
    source = open_source("http://alice:s3cret@pacs:8042/dicom-web/")
    assert "s3cret" not in source.location and "s3cret" not in source.title
    assert source.location == "http://pacs:8042/dicom-web"


def test_anything_else_is_a_folder(tmp_path: Path) -> None:
    for target in (tmp_path, str(tmp_path), "relative/folder", "pacs:8042"):
        source = open_source(target)
        assert isinstance(source, FolderSource) and source.action == "Indexing"
    assert open_source(tmp_path).title == tmp_path.name
    assert open_source(tmp_path).protected() == [str(tmp_path)]
    assert open_source(tmp_path / "missing").protected() == []


def test_a_source_is_opened_as_it_is(tmp_path: Path) -> None:
    source = FolderSource(tmp_path)
    assert open_source(source) is source


def test_the_last_kind_claims_any_path() -> None:
    assert SOURCE_KINDS[-1] is FolderSource and FolderSource.claims("anything")


def test_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(NothingReadableError, match="no such file or folder"):
        open_source(missing).check()
    with pytest.raises(NothingReadableError, match="no such file or folder"):
        open_source(missing).open()
    open_source("http://pacs/dicom-web").check()  # a server is checked when listed


def test_a_folder_opens_filtered_like_a_server(tmp_path: Path) -> None:
    make_dicom(tmp_path / "a.dcm", patient_id="P001")
    make_dicom(tmp_path / "b.dcm", patient_id="P002")
    source = open_source(tmp_path)
    assert {s.patient_id for s in source.open(use_cache=False).studies} == {"P001", "P002"}
    only = source.open(query=StudyQuery(patient="P0*1"), use_cache=False)
    assert [s.patient_id for s in only.studies] == ["P001"]
    study = only.studies[0]
    assert source.files_root(study, only) == Path(only.root)
