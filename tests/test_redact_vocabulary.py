"""Redaction keeps radiology words: folder words of series folders and short forms of a given
name that are clinical words stay; real identifiers in the same places are still removed."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from copilot.text.radiology_words import RADIOLOGY_WORDS
from copilot.text.redact import REDACTED, Redactor

ROOT = Path(__file__).resolve().parent.parent

#: A study above its series folders, each series folder named as scanners and PACS exports do.
STUDY = "/data/PACS/Rainbow_Ward/ROSSI_MASSIMO_MRN88/CT_20240311"
SERIES_FOLDERS = [
    "Coronal_Sagittal/Delayed_Expiration/Bone_Mediastinal_Recon/Supine_Erect_Decubitus/Scout_Localizer/Prone_Oblique",
    "Portable_Upright",
    "Axial_Soft_Tissue/Lung_Window/Report_Final",
]
CLINICAL = (
    "coronal sagittal delayed bone mediastinal recon erect decubitus expiration scout localizer "
    "prone upright axial window final oblique portable supine soft tissue lung report"
)
IDENTIFIERS = ["ROSSI^MASSIMO", "MRN88", "20240311"]


def _words(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Za-z]+", text)}


@pytest.fixture
def redact() -> Redactor:
    paths = [f"{STUDY}/{folder}/IM{i:04d}.dcm" for i, folder in enumerate(SERIES_FOLDERS)]
    return Redactor(IDENTIFIERS, paths=paths, descriptions=["CT CHEST", "Bone Mediastinal Recon"])


def test_clinical_folder_words_reach_the_llm(redact: Redactor) -> None:
    question = "Is the " + ", ".join(CLINICAL.split()) + " series showing an effusion?"
    out = redact(question)
    assert REDACTED not in out, out
    assert set(CLINICAL.split()) <= _words(out)


def test_a_ward_above_the_study_folder_is_still_redacted(redact: Redactor) -> None:
    out = redact("Patient on Rainbow ward: is the coronal recon showing a pneumothorax?")
    assert "rainbow" not in out.lower() and "coronal recon" in out


def test_mass_of_massimo_is_kept_but_a_name_next_to_the_surname_is_not(redact: Redactor) -> None:
    assert redact("Is there a Mass in the right lung?") == "Is there a Mass in the right lung?"
    assert redact("Any MASS in the left upper lobe?") == "Any MASS in the left upper lobe?"
    for text in (
        "Does Mass Rossi have an effusion?",
        "Rossi, Mass: effusion?",
        "Max Rossi asks about the mass",
    ):
        out = redact(text)
        assert "Rossi" not in out and not re.search(r"\bMa(ss|x)\b", out), out
    assert "the mass" in redact("Max Rossi asks about the mass")
    assert "Massi" not in redact("Is Massi breathless?")  # a short form that is no clinical word


def test_a_folder_named_like_a_description_is_not_an_identifier() -> None:
    paths = [f"/d/Kensal_Hires/S{i}/IM1.dcm" for i in range(2)]
    assert "Kensal" in Redactor(paths=paths, descriptions=["KENSAL HIRES"])("Kensal hires protocol?")
    assert "Kensal" not in Redactor(paths=paths)("Kensal hires protocol?")


def test_only_folders_above_the_series_folders_give_words() -> None:
    one_folder = Redactor(
        paths=["/d/Quillfeather_Ward/Pemberton_Recon/IM1.dcm", "/d/Quillfeather_Ward/Pemberton_Recon/IM2.dcm"]
    )
    out = one_folder("Quillfeather and pemberton")
    assert "Quillfeather" not in out and "pemberton" in out


def test_the_generated_vocabulary_is_current() -> None:
    spec = importlib.util.spec_from_file_location(
        "radiology_words_bench", ROOT / "bench" / "radiology_words.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    generated = (ROOT / "copilot" / "text" / "radiology_words.py").read_text()
    fix = "regenerate: python bench/radiology_words.py > copilot/text/radiology_words.py"
    assert bench.render(bench.vocabulary()) == generated, fix
    assert {"coronal", "recon", "scout", "mass", "bone"} <= RADIOLOGY_WORDS
    assert not {"rainbow", "rossi", "massimo", "will", "smith", "alaska", "yorkshire"} & RADIOLOGY_WORDS


def test_a_series_folder_named_by_one_radiology_word_is_kept() -> None:
    paths = [f"/d/QUIXOTE_Z/{folder}/IM1.dcm" for folder in ("Coronal", "Scout", "Upright")]
    out = Redactor(["QUIXOTE^ZEBEDIAH"], paths=paths)("Coronal, scout and upright views of Quixote?")
    assert out.startswith("Coronal, scout and upright views of ") and "Quixote" not in out, out


def test_a_name_part_that_is_a_radiology_word_is_still_redacted() -> None:
    redact = Redactor(["MASS^JOHN", "BONE^ALICE"], paths=["/d/MASS_JOHN/Bone/IM1.dcm"])
    for text in ("Is MASS here?", "Ask Mass about it", "John Mass: effusion?", "Alice Bone, pneumothorax?"):
        out = redact(text)
        assert not re.search(r"\b(mass|bone|john|alice)\b", out, re.IGNORECASE), out


@pytest.mark.parametrize("ward", ["Red_Ward", "Yellow-Unit", "Butterfly_Ward", "WhiteWard"])
def test_a_ward_named_by_a_colour_or_a_nature_word_is_still_redacted(ward: str) -> None:
    """Colours and nature words name wards more often than anything clinical needs kept."""
    word = re.findall(r"[A-Z][a-z]+", ward)[0]
    paths = [f"/data/{ward}/ROSSI_MASSIMO/CT/IM{i}.dcm" for i in range(2)]
    out = Redactor(["ROSSI^MASSIMO"], paths=paths)(f"Was the {word} ward patient's CT normal?")
    assert word not in out and REDACTED in out
