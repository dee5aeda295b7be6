"""PHI never reaches an LLM: free-text de-identification (measured on labelled sets), the
question, header text, paths in tool details, ``plan --llm``, burned-in annotations, and
databases kept owner-only.

The attack these reproduce (issue 11, item 4): a US birth date, a phone number, a ward and a
relative's name in StudyDescription/SeriesDescription reached the composer; file and folder
names reached it inside tool error details; a nickname, a partial institution name, an SSN
and a phone number typed in the question passed; an image with BurnedInAnnotation=YES was
sent; ``plan --llm`` redacted nothing; threads.sqlite and index.sqlite were world-readable.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from copilot.api import Copilot
from copilot.config import get_settings
from copilot.study import index_folder
from copilot.study.model import InstanceRecord, Study
from copilot.study.privacy import burned_in_risk, image_may_be_sent
from copilot.testing import make_dicom
from copilot.testing.chat import FakeChatModel
from copilot.text.deid import find_phi
from copilot.text.redact import Redactor, redact_text
from copilot.tools import Finding, Tool, ToolManifest, ToolRequest, ToolResult

DATA = Path(__file__).parent / "data"
LABELLED = {"phi_headers.jsonl": 0.95, "phi_questions.jsonl": 0.95, "phi_holdout.jsonl": 0.9}


class RoleFake(FakeChatModel):
    """Answers the planner with tool calls and the composer with ``composer_reply``, however
    many times either is asked; records everything (``received``)."""

    composer_reply: str = "Cardiomegaly is flagged [cxr_classifier: 0.74]."
    plan_tools: list[str] = ["cxr_classifier"]

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        self.received.append(list(messages))
        if "write the answer" in str(messages[0].content):
            message = AIMessage(content=self.composer_reply)
        else:
            calls = [{"name": t, "args": {}, "id": str(i)} for i, t in enumerate(self.plan_tools)]
            message = AIMessage(content="", tool_calls=calls)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def images_received(self) -> int:
        return sum(
            1
            for batch in self.received
            for m in batch
            if isinstance(m.content, list)
            for part in m.content
            if isinstance(part, dict) and part.get("type") == "image"
        )


def role_fake(**kw: Any) -> RoleFake:
    return RoleFake(messages=iter([]), **kw)


class Classifier(Tool):
    manifest = ToolManifest(
        name="cxr_classifier",
        version="1.0",
        modalities=("DX", "CR", "OT"),
        description="Fake chest X-ray classifier scoring cardiomegaly and pneumothorax for tests.",
        questions=("Is there cardiomegaly?",),
        labels=("Cardiomegaly", "Pneumothorax"),
    )

    def run(self, request: ToolRequest) -> ToolResult:
        scores = {"Cardiomegaly": 0.74, "Pneumothorax": 0.05}
        return ToolResult(
            tool=self.name,
            findings=[
                Finding(label=k, score=v, threshold=0.5, above_threshold=v >= 0.5) for k, v in scores.items()
            ],
        )


class LeakyTool(Tool):
    """Fails with the image's full path in its error, as a real decoder error does."""

    manifest = ToolManifest(
        name="leaky_tool",
        version="1.0",
        description="A plug-in whose errors quote the file path of the image it read.",
        questions=("Is there cardiomegaly?",),
    )

    def run(self, request: ToolRequest) -> ToolResult:
        assert request.instance is not None
        raise OSError(
            f"cannot decode '{request.instance.path}' (folder {Path(request.instance.path).parent})"
        )


def set_header(path: Path, **values: str) -> Path:
    import pydicom

    ds = pydicom.dcmread(path)
    for key, value in values.items():
        setattr(ds, key, value)
    ds.save_as(path)
    return path


def _entities(row: dict[str, Any]) -> list[tuple[int, int]]:
    return [(row["text"].index(p), row["text"].index(p) + len(p)) for p in row["phi"]]


def measure(path: Path) -> tuple[float, float, int, int]:
    """(recall of identifiers fully removed, precision of removed spans, identifiers, spans)."""
    found = caught = spans = good = 0
    for line in path.read_text().splitlines():
        row = json.loads(line)
        text, entities = row["text"], _entities(row)
        hits = find_phi(text)
        covered = {i for s in hits for i in range(s.start, s.end)}
        for a, b in entities:
            found += 1
            caught += all(i in covered for i in range(a, b) if text[i].isalnum())
        for s in hits:
            spans += 1
            good += any(s.start < b and a < s.end for a, b in entities)
    return caught / max(1, found), good / max(1, spans), found, spans


@pytest.mark.parametrize("name", sorted(LABELLED))
def test_free_text_deidentification_precision_and_recall(name: str) -> None:
    """Dates in any format, phones, national IDs, ward/bed and names in labelled header texts and
    questions (the held-out set was written before the rules were tuned)."""
    recall, precision, n, spans = measure(DATA / name)
    print(f"{name}: recall {recall:.3f} of {n} identifiers, precision {precision:.3f} of {spans} spans")
    assert recall >= LABELLED[name]
    assert precision >= 0.95


def test_clinical_text_is_left_alone() -> None:
    """Precision on text with no identifiers: the knowledge cards and clinical questions."""
    from copilot.kb.corpus import read_knowledge_cards

    cards = [p.text for p in read_knowledge_cards()]
    questions = [
        json.loads(line)["question"] for line in (DATA / "routing_questions.jsonl").read_text().splitlines()
    ]
    hits = [(t, find_phi(t)) for t in cards + questions]
    flagged = [(t[:60], [t[s.start : s.end] for s in spans]) for t, spans in hits if spans]
    assert len(flagged) <= len(hits) // 100, flagged


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        ("DOB 07/04/1981", "07/04/1981"),
        ("seen on 14 March 2024", "14 March 2024"),
        ("admitted 02-FEB-2022", "02-FEB-2022"),
        ("born 1958-11-30", "1958-11-30"),
        ("study of 20240315", "20240315"),
        ("call 555-867-5309", "555-867-5309"),
        ("call (+1) 617-555-0142", "617-555-0142"),
        ("SSN 123-45-6789", "123-45-6789"),
        ("NHS 943 476 5919", "943 476 5919"),
        ("Ward 7B bed 12", "7B"),
        ("daughter Priya visited", "Priya"),
        ("HUSBAND JOHN AT BEDSIDE", "JOHN"),
        ("ref Dr. Nakamura", "Nakamura"),
        ("a 95 year old", "95"),
        ("file /data/PACS/DOE_JANE/IM0001.dcm failed", "DOE_JANE"),
        ("file 'C:\\PACS\\Jane Doe\\a.dcm' failed", "Jane Doe"),
    ],
)
def test_identifier_patterns(text: str, gone: str) -> None:
    assert gone not in redact_text(text)


def test_known_identifiers_nicknames_and_institution_words() -> None:
    redact = Redactor(
        ["DOE^JENNIFER", "DOE", "JENNIFER", "MRN123456", "St Elsewhere Hospital"],
        institutions=["St Elsewhere Hospital"],
        paths=["/data/PACS/DOE_JENNIFER_77/IM0001.dcm"],
    )
    out = redact(
        "Jen Doe was at Elsewhere (MRN123456); see DOE_JENNIFER_77. Doesn't she have a hospital bed?"
    )
    for leak in ("Jen ", "Doe ", "Elsewhere", "MRN123456", "DOE_JENNIFER_77"):
        assert leak not in out, out
    assert "Doesn't" in out and "hospital" in out  # word edges; generic words kept


def test_trusted_endpoint_keeps_identifiers_but_never_paths() -> None:
    redact = Redactor(["DOE^JANE"], paths=["/pacs/DOE_JANE/a.dcm"], trusted=True)
    out = redact("DOE^JANE: error reading /pacs/DOE_JANE/a.dcm and /etc/passwd")
    assert "DOE^JANE" in out and "/pacs" not in out and "/etc/passwd" not in out


@pytest.fixture
def hostile_study(tmp_path: Path) -> Study:
    folder = tmp_path / "PACS" / "DOE_JENNIFER_MRN123456"
    path = make_dicom(
        folder / "IM0001.dcm",
        patient_id="MRN123456",
        patient_name="DOE^JENNIFER",
        institution="St Elsewhere Hospital",
        accession="ACC98765",
        study_description="CXR DOB 07/04/1981 call daughter Priya 555-867-5309",
    )
    set_header(path, SeriesDescription="PA - Nightingale Ward bed 3, husband Mark Whitfield")
    return index_folder(folder).studies[0]


QUESTION = (
    "Jen Doe (SSN 078-05-1120, call 555-201-3344) from Elsewhere, born 4/2/47 - "
    "her son Michael asks: any PTX?"
)
LEAKS = (
    "Jen",
    "Doe",
    "DOE",
    "JENNIFER",
    "MRN123456",
    "ACC98765",
    "Elsewhere",
    "07/04/1981",
    "1981",
    "Priya",
    "555-867-5309",
    "Nightingale",
    "Whitfield",
    "078-05-1120",
    "555-201-3344",
    "4/2/47",
    "Michael",
    "PACS",
    "IM0001",
    "/tmp",
)


def test_phi_in_headers_question_and_tool_details_never_reaches_the_llm(hostile_study: Study) -> None:
    llm = role_fake(plan_tools=["cxr_classifier", "leaky_tool"])
    copilot = Copilot(
        llm=llm, tools={"cxr_classifier": Classifier(), "leaky_tool": LeakyTool()}, persist=False
    )
    answer = copilot.ask(hostile_study, QUESTION)
    assert {t.name: t.status for t in answer.tools}.get("leaky_tool") == "error"
    leaky = next(t for t in answer.tools if t.name == "leaky_tool")
    assert "IM0001.dcm" in leaky.detail  # kept for the local user; never sent (below)
    sent = llm.all_text_received()
    assert "<study-data>" in sent and "tool-output" in sent
    for leak in LEAKS:
        assert leak not in sent, leak


def test_plan_with_an_llm_deidentifies_the_question() -> None:
    llm = role_fake()
    Copilot(llm=llm, tools={"cxr_classifier": Classifier()}, persist=False).plan(QUESTION)
    sent = llm.all_text_received()
    assert sent
    for leak in ("Jen", "Doe", "078-05-1120", "555-201-3344", "4/2/47", "Michael"):
        assert leak not in sent, leak


def test_plan_cli_with_llm_uses_the_same_redactor(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import copilot.api
    from copilot.cli import main

    llm = role_fake()
    monkeypatch.setattr(copilot.api, "load_llm", lambda spec, settings=None: llm)
    try:
        main(["plan", QUESTION, "--json", "--llm", "openai:gpt-4o-mini"])
    except SystemExit as exc:
        assert exc.code in (0, None)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["planner"] == "llm"
    sent = llm.all_text_received()
    for leak in ("Jen", "Doe", "078-05-1120", "Michael"):
        assert leak not in sent, leak


@pytest.mark.parametrize(
    ("burned_in", "allowed", "sent"),
    [("YES", False, 0), ("YES", True, 1), ("NO", False, 1), ("", False, 1)],
)
def test_burned_in_annotation_blocks_image_sending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, burned_in: str, allowed: bool, sent: int
) -> None:
    path = make_dicom(tmp_path / "s" / "a.dcm")
    if burned_in:
        set_header(path, BurnedInAnnotation=burned_in)
    study = index_folder(path).studies[0]
    assert study.primary_instance().burned_in_annotation == burned_in
    monkeypatch.setenv("COPILOT_LLM_SEND_IMAGES", "1")
    monkeypatch.setenv("COPILOT_LLM_SEND_BURNED_IN", "1" if allowed else "0")
    get_settings.cache_clear()
    llm = role_fake()
    Copilot(llm=llm, tools={"cxr_classifier": Classifier()}, persist=False).ask(
        study, "Is there cardiomegaly?"
    )
    assert llm.images_received() == sent


def test_secondary_captures_and_plain_images_count_as_annotated_when_unknown() -> None:
    base = {"path": "x", "size": 1, "mtime_ns": 0, "sop_uid": "1", "study_uid": "2", "series_uid": "3"}
    sc = InstanceRecord(**base, sop_class="1.2.840.10008.5.1.4.1.1.7", modality="OT")
    png = InstanceRecord(**base, kind="image", modality="OT")
    dx = InstanceRecord(**base, sop_class="1.2.840.10008.5.1.4.1.1.1.1", modality="DX")
    assert burned_in_risk(sc) and burned_in_risk(png) and burned_in_risk(dx) is None
    assert burned_in_risk(sc.model_copy(update={"burned_in_annotation": "NO"})) is None
    settings = get_settings().model_copy(update={"llm_send_images": True})
    assert not image_may_be_sent(sc, settings) and image_may_be_sent(dx, settings)
    assert not image_may_be_sent(dx, settings.model_copy(update={"llm_send_images": False}))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_stored_databases_are_owner_only(hostile_study: Study, tmp_path: Path) -> None:
    settings = get_settings()
    # A cache left world-readable by an older version is narrowed too.
    os.chmod(settings.cache_dir, 0o755)
    os.chmod(settings.index_cache_path, 0o644)
    index_folder(Path(hostile_study.primary_instance().path).parent)
    Copilot(tools={"cxr_classifier": Classifier()}).ask(
        hostile_study, "Is there cardiomegaly?", thread_id="t"
    )
    assert _mode(settings.data_dir / "threads.sqlite") == 0o600
    assert _mode(settings.data_dir) == 0o700
    assert _mode(settings.index_cache_path) == 0o600
    assert _mode(settings.cache_dir) == 0o700


# -- issue 21, item 6: an allow-list of what reaches an LLM; typed names as people type them --
#: Every identifier of the free-text PHI study below, and where it is.
FREE_TEXT_PHI = {
    "QUIXOTE": "PatientName (PN), question",
    "ZEBEDIAH": "PatientName (PN)",
    "Zeb": "question (nickname next to the surname)",
    "Zebby": "question (diminutive)",
    "MRN4471923": "PatientID (LO), folder name",
    "ACC55501": "AccessionNumber (SH)",
    "Thistlewaite": "InstitutionName (LO)",
    "Larkspur": "InstitutionalDepartmentName (LO)",
    "Gallowmere": "PatientAddress (LO), AdditionalPatientHistory (LT)",
    "Dunwick": "PatientAddress (LO)",
    "960123": "PatientTelephoneNumbers (SH)",
    "FENWICK": "ReferringPhysicianName (PN)",
    "OSWIN": "ReferringPhysicianName (PN)",
    "ABERNETHY": "RequestingPhysician (PN)",
    "Ottoline": "PatientComments (LT)",
    "Marigold": "AdditionalPatientHistory (LT)",
    "Quillfeather": "ImageComments (LT)",
    "XRAYSTN7": "StationName (SH)",
    "Pemberton": "SeriesDescription (LO)",
    "Henrietta": "StudyDescription (LO)",
    "Rainbow": "ward: folder name, StudyDescription, question",
    "Brambleford": "InstitutionAddress (ST)",
    "Cobblestone": "TextValue (UT)",
    "19690101": "PatientBirthDate (DA)",
    "20240311": "StudyDate (DA)",
    "PACS": "folder name",
    "IM0001": "file name",
}


@pytest.fixture
def free_text_phi_study(tmp_path: Path) -> Study:
    """Identifiers in every kind of header field (PN, LO, SH, LT, ST, UT, DA) and in the path."""
    folder = tmp_path / "PACS" / "Rainbow_Ward" / "QUIXOTE_ZEBEDIAH_MRN4471923"
    path = make_dicom(
        folder / "IM0001.dcm",
        patient_id="MRN4471923",
        patient_name="QUIXOTE^ZEBEDIAH",
        institution="Thistlewaite Infirmary",
        accession="ACC55501",
        study_description="CXR PA Rainbow, wife Henrietta at bedside",
        study_date="20240311",
    )
    set_header(
        path,
        SeriesDescription="PA erect - Dr Pemberton-Vale",
        OtherPatientNames="QUIXOTE^ZEB",
        PatientAddress="42 Gallowmere Lane, Dunwick",
        PatientTelephoneNumbers="01632 960123",
        ReferringPhysicianName="FENWICK^OSWIN",
        RequestingPhysician="ABERNETHY^CLOVIS",
        InstitutionalDepartmentName="Larkspur Unit",
        InstitutionAddress="1 Brambleford Road",
        StationName="XRAYSTN7",
        AdditionalPatientHistory="lives with sister Marigold at Gallowmere",
        PatientComments="NOK Ottoline",
        ImageComments="portable, nurse Quillfeather",
        TextValue="found at Cobblestone Yard",
    )
    return index_folder(folder).studies[0]


def test_free_text_phi_study_leaks_nothing_to_a_remote_openai_server(
    free_text_phi_study: Study, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole ask path (planner, reviewer, composer) against the OpenAI-compatible fake: the
    exact request bodies hold none of the study's identifiers, typed nicknames included."""
    from copilot.testing.openai_server import FakeOpenAIServer, Reply

    with FakeOpenAIServer(models=("fake",)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        monkeypatch.delenv("OPENAI_API_BASE", raising=False)
        get_settings.cache_clear()
        server.script(Reply.tool_call("cxr_classifier", "leaky_tool"))
        tools = {"cxr_classifier": Classifier(), "leaky_tool": LeakyTool()}
        copilot = Copilot(llm="openai:fake", tools=tools, persist=False)
        answer = copilot.ask(
            free_text_phi_study,
            "Does Zeb Quixote on Rainbow have cardiomegaly? Mr Zeb Q. (Zebby) asks; Dr Fenwick wants it",
        )
    assert answer.plan == ["cxr_classifier", "leaky_tool"]
    bodies = json.dumps(server.chat_requests, ensure_ascii=False)
    assert len(server.chat_requests) >= 2 and "<study-data>" in bodies and "cardiomegaly" in bodies
    leaked = {ident: where for ident, where in FREE_TEXT_PHI.items() if ident.lower() in bodies.lower()}
    assert not leaked, leaked


#: Fields of the index records that are on the allow-list, with values safe to send.
ALLOWED_VALUES = {"modality", "view", "body_part", "patient_age", "patient_sex"}
#: Fields that must keep their real value for the study to be read at all.
STRUCTURAL = {"path", "kind", "remote", "burned_in_annotation"}


def test_no_field_outside_the_allow_list_reaches_a_request(tmp_path: Path) -> None:
    """Every text field of the index record (instance, series, study) holds a marker; a request
    may carry only the allow-listed ones (and the descriptions, redacted). A field added to a
    prompt without the allow-list fails here."""
    from copilot.study.model import Series
    from copilot.study.privacy import LLM_STUDY_FIELDS

    assert set(LLM_STUDY_FIELDS) == {
        "Study.patient_age",
        "Study.patient_sex",
        "Study.description",
        "Series.modality",
        "Series.body_part",
        "Series.view",
        "Series.number",
        "Series.description",
        "Series.instances",
    }
    base = index_folder(make_dicom(tmp_path / "qvxfolder" / "qvxfile.dcm")).studies[0].primary_instance()
    marked: dict[str, Any] = {}
    for name, info in InstanceRecord.model_fields.items():
        if name in ALLOWED_VALUES | STRUCTURAL:
            continue
        if info.annotation is str:
            marked[name] = f"qvx{name.replace('_', '')}"
    marked["physicians"] = ["qvxphysicians"]
    record = base.model_copy(update=marked)
    series = Series(
        series_uid=record.series_uid,
        modality=record.modality,
        view=record.view,
        body_part=record.body_part,
        description="PA qvxseriesdescription",
        number=1,
        instances=[record],
    )
    study = Study(
        study_uid=record.study_uid,
        patient_id=record.patient_id,
        patient_name=record.patient_name,
        patient_age=record.patient_age,
        patient_sex=record.patient_sex,
        study_date=record.study_date,
        description="CHEST qvxstudydescription",
        series=[series],
    )
    llm = role_fake(plan_tools=["cxr_classifier", "leaky_tool"])
    tools = {"cxr_classifier": Classifier(), "leaky_tool": LeakyTool()}
    Copilot(llm=llm, tools=tools, persist=False).ask(study, "Is there cardiomegaly?")
    sent = llm.all_text_received()
    assert "digital radiograph of the chest PA view" in sent and "50-59 years, female" in sent
    assert "qvxstudydescription" in sent and "qvxseriesdescription" in sent  # allowed free text
    leaked = sorted(set(re.findall(r"qvx\w+", sent)) - {"qvxstudydescription", "qvxseriesdescription"})
    assert not leaked, leaked


PATIENTS = ["QUIXOTE^ZEBEDIAH", "SMITH^WILLIAM^ROBERT", "JONES^ELIZABETH", "BROWN^MARGARET"]


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        ("Does Zeb Quixote have an effusion?", ["Zeb", "Quixote"]),
        ("Quixote, Zeb: any effusion?", ["Zeb", "Quixote"]),
        ("Mr Zeb Q. was seen today", ["Zeb", "Q."]),
        ("is zebby breathless", ["zebby"]),
        ("Zebby looks unwell", ["Zebby"]),
        ("ZEB QUIXOTE CXR", ["ZEB", "QUIXOTE"]),
        ("Will Smith has an effusion", ["Will", "Smith"]),
        ("Smith, Will asks about the heart", ["Will", "Smith"]),
        ("Does Bill have a pneumothorax?", ["Bill"]),
        ("Liam says he is breathless", ["Liam"]),
        ("Is Billy or Bobby Smith here?", ["Billy", "Bobby"]),
        ("How is Liz today?", ["Liz"]),
        ("Beth Jones, Betty and Eliza", ["Beth", "Betty", "Eliza"]),
        ("ask Maggie or Peggy, or Meg Brown", ["Maggie", "Peggy", "Meg"]),
        ("nurse Ottoline Quixote called", ["Ottoline", "Quixote"]),
    ],
)
def test_typed_nicknames_and_tokens_next_to_a_name_are_redacted(text: str, gone: list[str]) -> None:
    out = Redactor(PATIENTS)(text)
    for word in gone:
        assert not re.search(rf"(?<!\w){re.escape(word)}(?!\w)", out), out


@pytest.mark.parametrize(
    "text",
    [
        "Will the effusion resolve?",
        "Is there a pneumothorax? Will it need a drain?",
        "Margin of the heart, will it be enlarged?",
        "Bill the study to the PA department",  # a word opening a sentence, next to no name
        "Any change since the PA film? Robust evidence of edema?",
        "Is the liver normal? Zebra stripes on the image?",
    ],
)
def test_clinical_words_are_not_taken_for_nicknames(text: str) -> None:
    assert Redactor(PATIENTS)(text) == text


def test_name_forms_redact_no_more_clinical_text_than_before() -> None:
    """Over the knowledge cards and the routing questions, the patients' name forms remove
    nothing the identifier-free pass keeps."""
    from copilot.kb.corpus import read_knowledge_cards

    texts = [p.text for p in read_knowledge_cards()] + [
        json.loads(line)["question"] for line in (DATA / "routing_questions.jsonl").read_text().splitlines()
    ]
    named = Redactor(PATIENTS)
    changed = [t[:80] for t in texts if named(t) != redact_text(t)]
    assert not changed, changed


def test_short_forms_come_from_the_tables_and_the_rules() -> None:
    from copilot.text.nicknames import is_short_form, nickname_forms

    assert {"zeb", "zebby"} <= nickname_forms("ZEBEDIAH")
    assert {"bill", "will", "billy", "liam"} <= nickname_forms("William")
    assert {"liz", "beth", "betty", "eliza"} <= nickname_forms("elizabeth")
    assert {"bob", "rob", "bobby"} <= nickname_forms("Robert")
    assert {"maggie", "meg", "peggy"} <= nickname_forms("Margaret")
    assert is_short_form("Ottol", "ottoline") and is_short_form("Ottie", "ottoline")
    assert is_short_form("Jonny", "jonathan") and is_short_form("Zebby", "zebediah")
    assert not is_short_form("Ot", "ottoline") and not is_short_form("Ottoline", "ottoline")
    assert not is_short_form("Zebra", "zebediah")


def test_folder_words_are_redacted_but_not_clinical_ones() -> None:
    """A ward or a name in a folder name is an identifier wherever it appears; generic and
    finding words of folder names ("Pneumothorax_cases", "export") are not."""
    redact = Redactor(paths=["/data/export/Pneumothorax_cases/RainbowWard-7B/Quixote/IM0001.dcm"])
    out = redact("Patient from rainbow ward (Quixote): is the pneumothorax larger? see the export cases")
    assert "rainbow" not in out.lower() and "Quixote" not in out
    assert "pneumothorax larger" in out and "export cases" in out
