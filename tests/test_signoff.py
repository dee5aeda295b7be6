"""Sign-off (issue 25): what the copilot writes waits as a draft for a person's approval.

A draft moves draft -> edited -> approved -> sent (or rejected) and nothing else; the graph
pauses before anything leaves the machine (LangGraph interrupt, kept by the checkpointer) and
resumes with the decision, in the same process or after a restart; the signed SR names the
approver as its verifying observer and keeps the agent's text beside the signed text;
`ask --sr` makes a draft, `drafts approve` writes the signed SR, and `push` refuses a draft or a
file no person approved unless `--unreviewed` (which the SR then says).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pydicom
import pytest

from copilot.api import Copilot
from copilot.dicomout.plain import plain_text
from copilot.dicomout.signoff import person_name
from copilot.dicomout.sr import read_sr
from copilot.drafts.diff import changed_sentences, unified_diff, word_changes
from copilot.drafts.model import Draft
from copilot.drafts.signing import DraftRequest
from copilot.drafts.store import DraftStore
from copilot.errors import DraftNotFoundError, DraftStateError
from copilot.schema import Answer
from copilot.study import index_folder
from copilot.study.model import Study
from copilot.testing.dicom import make_dicom
from tests.cli_runner import run_cli
from tests.support.orthanc import free_port

AGENT = "Heart size is normal. No pleural effusion. Lungs are clear."


@pytest.fixture
def study(tmp_path: Path) -> Study:
    make_dicom(tmp_path / "s" / "a.dcm", patient_id="P001", study_uid="1.2.3.1", patient_name="DOE^JANE")
    return index_folder(tmp_path / "s").studies[0]


def a_draft(**extra: object) -> Draft:
    answer = Answer(
        text=AGENT, study_uid="1.2.3.1", question="Draft a report", plan=[], planner="embedded", thread_id="t"
    )
    data: dict[str, object] = {
        "id": "d1",
        "thread_id": "t",
        "study_uid": "1.2.3.1",
        "question": "Draft a report",
        "agent_text": AGENT,
        "text": AGENT,
        "answer": answer,
    }
    return Draft.model_validate({**data, **extra})


def two_sentences_edited(text: str) -> str:
    return text.replace("Heart size is normal.", "Heart size is mildly enlarged.").replace(
        "Lungs are clear.", "Minor left basal atelectasis."
    )


# -- the draft's states ---------------------------------------------------------------------
def test_states_move_only_forward_and_keep_the_agents_text() -> None:
    draft = a_draft()
    edited = draft.edit(two_sentences_edited(AGENT))
    assert edited.state == "edited" and edited.agent_text == AGENT and edited.edited
    assert edited.edit(AGENT).state == "draft"  # undoing every edit is the agent's text again
    with pytest.raises(DraftStateError, match="--by NAME"):
        edited.approve("  ")
    approved = edited.approve("Dr Jane Smith", "St Elsewhere")
    assert (approved.state, approved.approver, approved.organization) == (
        "approved",
        "Dr Jane Smith",
        "St Elsewhere",
    )
    assert approved.approved_at is not None and approved.signed
    with pytest.raises(DraftStateError, match="only a draft or edited draft can be edited"):
        approved.edit("anything")
    with pytest.raises(DraftStateError, match="not approved"):
        draft.check_sendable()
    draft.check_sendable(unreviewed=True)  # the research pipeline's explicit choice
    sent = approved.sent("http://pacs/dicom-web", ["1.2.9"])
    assert sent.state == "sent" and not sent.unreviewed and sent.objects == ["1.2.9"]
    with pytest.raises(DraftStateError, match="sent already"):
        sent.reject("Dr X")
    rejected = draft.reject("Dr X", "wrong side")
    with pytest.raises(DraftStateError, match="rejected: it is never sent"):
        rejected.check_sendable(unreviewed=True)
    with pytest.raises(DraftStateError):
        rejected.approve("Dr X")


def test_store_survives_a_new_process_and_names_drafts_by_prefix(tmp_path: Path) -> None:
    store = DraftStore(tmp_path / "drafts")
    store.save(a_draft(id="abc12345"))
    store.save(a_draft(id="abd00000", thread_id="other"))
    again = DraftStore(tmp_path / "drafts")  # another process: only the files
    assert again.get("abc").id == "abc12345"
    assert [d.id for d in again.drafts(thread_id="other")] == ["abd00000"]
    with pytest.raises(DraftNotFoundError, match="names 2 drafts"):
        again.get("ab")
    with pytest.raises(DraftNotFoundError, match="no draft"):
        again.get("zzz")
    changed = again.update("abc12345", lambda d: d.edit("New text."))
    assert DraftStore(tmp_path / "drafts").get("abc12345").text == "New text." == changed.text
    assert (tmp_path / "drafts" / "abc12345").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "drafts" / "abc12345" / "draft.json").stat().st_mode & 0o777 == 0o600
    (tmp_path / "drafts" / "abd00000" / "draft.json").write_text("{broken")
    assert [d.id for d in DraftStore(tmp_path / "drafts").drafts()] == ["abc12345"]  # skipped, logged


def test_diff_shows_what_the_person_changed() -> None:
    signed = two_sentences_edited(AGENT)
    diff = unified_diff(AGENT, signed)
    assert diff.startswith("--- agent\n+++ signed") and f"-{AGENT}" in diff and f"+{signed}" in diff
    runs = word_changes(AGENT, signed)
    assert "".join(r.text for r in runs if r.kind != "removed") == signed
    assert "".join(r.text for r in runs if r.kind != "inserted") == AGENT
    assert {r.text.strip() for r in runs if r.kind == "inserted"} >= {"mildly enlarged."}
    assert changed_sentences(AGENT, signed) == 2 and unified_diff(AGENT, AGENT) == ""


def test_person_names_become_dicom_person_names() -> None:
    assert person_name("Dr Jane Smith") == "Smith^Jane^^Dr"
    assert person_name("Smith, Jane") == "Smith^Jane"
    assert person_name("Jane Smith") == "Smith^Jane"
    assert person_name("Smith") == "Smith^"
    assert person_name("Smith^Jane") == "Smith^Jane"


# -- the API: pause, approval, restart --------------------------------------------------------
def test_the_turn_pauses_and_approval_after_a_restart_resumes_it(study: Study, tmp_path: Path) -> None:
    out = tmp_path / "out" / "report-sr.dcm"
    answer = Copilot().ask(study, "Draft a report", "t-sign", draft=DraftRequest(sr_path=str(out)))
    assert answer.draft and answer.draft_error is None
    assert not out.exists()  # nothing is written before a person approves
    first = Copilot()  # a restart: the pause is in the thread's checkpoint, the draft on disk
    (paused,) = first.graph.get_state({"configurable": {"thread_id": "t-sign"}}).interrupts
    assert paused.value["draft"] == answer.draft
    draft = first.draft(answer.draft)
    assert draft.state == "draft" and draft.agent_text == answer.text and draft.study_uid == "1.2.3.1"
    signed_text = answer.text + "\n\nSigned with two edits. Heart size is mildly enlarged."
    first.edit_draft(answer.draft, signed_text)

    later = Copilot()  # approval in yet another session
    approved = later.approve(answer.draft, by="Dr Jane Smith", organization="St Elsewhere")
    assert approved.state == "approved" and approved.objects
    assert later.graph.get_state({"configurable": {"thread_id": "t-sign"}}).interrupts == ()
    (decision,) = later.decisions("t-sign")
    assert decision["draft"] == answer.draft and decision["state"] == "approved"
    assert decision["by"] == "Dr Jane Smith" and decision["edited"] is True

    sr = read_sr(out)
    assert (sr.verification, sr.completion) == ("VERIFIED", "COMPLETE")
    assert sr.verifier == "Smith^Jane^^Dr" and sr.verifier_organization == "St Elsewhere"
    assert sr.text("Answer") == plain_text(signed_text)
    assert sr.text("Agent answer") == plain_text(answer.text)
    assert "Approved by Dr Jane Smith" in (sr.text("Review") or "")
    assert str(pydicom.dcmread(out).SOPInstanceUID) in approved.objects
    # The next question moves the thread on; the decision stays recorded in it.
    Copilot().ask(study, "Is there cardiomegaly?", "t-sign")
    assert [d["draft"] for d in Copilot().decisions("t-sign")] == [answer.draft]


def test_a_new_question_moves_on_and_the_draft_can_still_be_rejected(
    study: Study, capsys: pytest.CaptureFixture[str]
) -> None:
    copilot = Copilot()
    answer = copilot.ask(study, "Draft a report", "t-rej", draft=DraftRequest())
    assert answer.draft is not None
    copilot.ask(study, "Is there cardiomegaly?", "t-rej")  # the pause is left behind
    assert copilot.graph.get_state({"configurable": {"thread_id": "t-rej"}}).interrupts == ()
    rejected = copilot.reject(answer.draft, by="Dr X", reason="not this study's report")
    assert rejected.state == "rejected" and rejected.reason == "not this study's report"
    with pytest.raises(DraftStateError, match="rejected"):
        copilot.push_draft(answer.draft, "http://127.0.0.1:1/dicom-web", unreviewed=True)
    code, out, _ = run_cli(["forget", "--thread", "t-rej"], capsys)  # drafts hold patient data too
    assert code == 0 and "1 draft(s)" in out and copilot.drafts() == []


def test_a_plain_image_cannot_become_a_draft_and_the_pause_ends(tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "png").mkdir()
    Image.new("L", (32, 32)).save(tmp_path / "png" / "x.png")
    (study,) = index_folder(tmp_path / "png").studies
    copilot = Copilot()
    answer = copilot.ask(study, "Draft a report", "t-png", draft=DraftRequest())
    assert answer.draft is None and "DICOM source image" in (answer.draft_error or "")
    assert copilot.drafts() == []
    assert copilot.graph.get_state({"configurable": {"thread_id": "t-png"}}).interrupts == ()


# -- the CLI ----------------------------------------------------------------------------------
def test_cli_ask_sr_makes_a_draft_and_push_refuses_it_until_approved(
    study: Study, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = Path(study.primary_instance().path).parent
    sr_path = tmp_path / "out" / "answer-sr.dcm"
    code, out, err = run_cli(["ask", str(folder), "Draft a report", "--json", "--sr", str(sr_path)], capsys)
    assert code == 0, err
    data = json.loads(out)
    draft_id = data["draft"]
    assert f"draft {draft_id} saved" in err and f"copilot drafts approve {draft_id} --by" in err
    assert not sr_path.exists()

    url = f"http://127.0.0.1:{free_port()}/dicom-web"  # nothing listens: a refusal sends nothing
    code, out, err = run_cli(["push", draft_id, "--to", url], capsys)
    assert code == 2 and "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert f"draft {draft_id} is not approved (draft)" in line and "--unreviewed" in line

    code, out, err = run_cli(["drafts", "list", "--json"], capsys)
    assert code == 0 and [d["id"] for d in json.loads(out)["drafts"]] == [draft_id]
    code, out, err = run_cli(["drafts", "show", draft_id], capsys)
    assert code == 0 and "state: draft" in out and "Draft a report" in out

    edited_file = tmp_path / "edited.txt"
    edited_file.write_text(data["answer"] + "\nHeart size is mildly enlarged.")
    code, out, err = run_cli(["drafts", "edit", draft_id, "--file", str(edited_file)], capsys)
    assert code == 0, err
    assert "+Heart size is mildly enlarged." in out  # the diff against the agent's text
    code, out, err = run_cli(["drafts", "approve", draft_id], capsys)
    assert code == 2 and "--by" in err  # approval names a person
    code, out, err = run_cli(["drafts", "approve", draft_id[:5], "--by", "Dr Jane Smith"], capsys)
    assert code == 0, err
    assert f"draft {draft_id} approved by Dr Jane Smith" in out and str(sr_path) in out
    sr = read_sr(sr_path)
    assert sr.verification == "VERIFIED" and sr.verifier == "Smith^Jane^^Dr"
    assert sr.text("Answer") == plain_text(edited_file.read_text())

    # The file the approval wrote is an approved object; a file no draft made is refused.
    code, out, err = run_cli(["push", str(sr_path), "--to", url, "--dry-run"], capsys)
    assert code == 0, err
    assert "would send" in out
    stranger = make_dicom(tmp_path / "x" / "x.dcm")
    code, out, err = run_cli(["push", str(stranger), "--to", url], capsys)
    assert code == 2 and "not an approved draft's object" in err
    code, out, err = run_cli(["drafts", "edit", draft_id, "--text", "late change"], capsys)
    assert code == 2 and "is approved" in err


def test_cli_unreviewed_is_explicit_and_recorded_in_the_sr(
    study: Study, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = Path(study.primary_instance().path).parent
    sr_path = tmp_path / "out" / "research-sr.dcm"
    code, out, err = run_cli(
        ["ask", str(folder), "Draft a report", "--sr", str(sr_path), "--unreviewed"], capsys
    )
    assert code == 0, err
    assert "unreviewed" in err and re.search(r"DICOM SR written: .*research-sr\.dcm", err)
    sr = read_sr(sr_path)
    assert sr.verification == "UNVERIFIED" and sr.verifier is None
    assert "Not reviewed by a person" in (sr.text("Review") or "")
    assert DraftStore.of(Copilot().settings).drafts() == []  # no draft: nothing waits
    url = f"http://127.0.0.1:{free_port()}/dicom-web"
    code, out, err = run_cli(["push", str(sr_path), "--to", url, "--dry-run"], capsys)
    assert code == 2 and "--unreviewed" in err
    code, out, err = run_cli(["push", str(sr_path), "--to", url, "--dry-run", "--unreviewed"], capsys)
    assert code == 0 and "would send" in out


def test_cli_drafts_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["drafts", "show", "nope"], capsys)
    assert code == 2 and err.strip().count("\n") == 0 and "no draft 'nope'" in err
    code, out, err = run_cli(["drafts", "list"], capsys)
    assert code == 0 and "no drafts" in out
