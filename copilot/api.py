"""The Python agent API: ``from copilot import Copilot``.

    copilot = Copilot()                      # embedded planner, template composer, offline
    studies = copilot.open("/data/cxr")      # index a folder (read-only)
    answer = copilot.ask(studies[0], "Is there cardiomegaly?")   # studies: a sequence
    print(answer.text)

    listed = copilot.open("http://pacs:8042/dicom-web")          # a PACS: study-level QIDO only
    answer = copilot.ask(listed.studies[0], "Is there cardiomegaly?")   # that study opened now
    studies, study = copilot.select("http://pacs:8042/dicom-web", "ACC12345")  # one study (+ priors)

A server's studies are *listed* by ``open`` (``study.opened`` is False: no series yet), and
each is opened (series and headers read) only when something needs it: ``ask``, ``fetch``,
``analyze`` or :meth:`Copilot.open_study`. The cost of ``open`` is one request per 200
studies; the cost of a question is that study's requests, whatever the archive's size.

``Copilot(llm="openai:gpt-4o-mini")`` plugs any LangChain chat model in for planning and
composing; patient identifiers are removed from everything sent to it unless the settings
mark the endpoint trusted.

Collaborators are interfaces, each with an injection point: ``llm`` (a model string or any
:class:`~copilot.llm.ChatModel`), ``planner`` (any :class:`~copilot.agents.planner.Planner`),
``tools`` (name -> :class:`~copilot.tools.Tool`) and the studies opened (any
:class:`~copilot.study.source.StudySource`).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from copilot.config import Settings, get_settings
from copilot.errors import CopilotError, StudyError
from copilot.llm import ChatModel, load_llm
from copilot.schema import Analysis, AnalysisRow, Answer, CopilotEvent, ImageAnalysis, ToolResult, ToolRun
from copilot.study.model import InstanceRecord, Study, StudySet
from copilot.study.prior import PriorStudy
from copilot.study.query import StudyQuery
from copilot.tools.contract import Tool, ToolRequest
from copilot.tools.invoke import invoke_batch

if TYPE_CHECKING:
    from copilot.agents.context import Context
    from copilot.agents.graph import AgentGraph
    from copilot.agents.planner import Plan, Planner
    from copilot.agents.state import AgentState, Decision, Turn
    from copilot.dicomout.push import PushResult
    from copilot.drafts.model import Draft
    from copilot.drafts.signing import DraftRequest
    from copilot.drafts.store import DraftStore
    from copilot.study.source import StudySource

__all__ = ["Analysis", "AnalysisRow", "Answer", "Copilot", "EventSink", "ImageAnalysis", "ToolRun"]

log = logging.getLogger(__name__)

#: What ``on_event`` is called with while a question is answered.
EventSink = Callable[[CopilotEvent], None]
#: The same patient's listed (not yet opened) earlier studies opened to choose a prior from.
PRIORS_OPENED = 3
#: Listed studies kept opened (series and headers) for later questions about them.
OPENED_KEPT = 32


def _same_patient(target: Study | StudySet, study: Study) -> tuple[Study, ...] | None:
    """The other studies of ``study``'s patient opened with it (None: only the study was given)."""
    from copilot.study.prior import same_patient

    if isinstance(target, Study):
        return None
    return tuple(s for s in target.studies if s.study_uid != study.study_uid and same_patient(study, s))


class Copilot:
    """The clinical imaging copilot: open study folders, ask questions, analyse in bulk."""

    def __init__(
        self,
        llm: str | ChatModel | None = None,
        settings: Settings | None = None,
        *,
        tools: dict[str, Tool] | None = None,
        planner: Planner | None = None,
        persist: bool = True,
        server: str | None = None,
    ) -> None:
        """``llm``: a LangChain model string or chat model (default: the settings'; none: the
        embedded planner and template composer). ``tools``: the tools to use instead of the
        installed ones. ``planner``: the planner to use instead of the LLM or embedded one.
        ``persist``: keep conversation threads on disk. ``server``: a ``copilot serve`` URL."""
        self.settings = settings or get_settings()
        #: A ``copilot serve`` URL whose warm tools answer (None: tools run in this process).
        self.server = server or self.settings.server
        self._llm_spec = llm if llm is not None else self.settings.llm
        self._llm: ChatModel | None = None
        self._tools = tools
        self._persist = persist
        self._graph: AgentGraph | None = None
        self._planner: Planner | None = planner
        self._lock = threading.Lock()
        # Listed (not opened) studies -> the source that listed them (a URL's credentials
        # included), and the last studies opened on demand.
        self._studies_lock = threading.Lock()
        self._listed_by: dict[str, StudySource] = {}
        self._opened: OrderedDict[str, Study] = OrderedDict()
        from copilot.agents.context import ResultCache

        self.cache = ResultCache()

    # -- collaborators (lazy) ----------------------------------------------------------
    @property
    def llm(self) -> ChatModel | None:
        """The chat model, or None for the embedded planner and template composer."""
        if self._llm is None and self._llm_spec is not None:
            self._llm = load_llm(self._llm_spec, self.settings)
        return self._llm

    @property
    def llm_spec(self) -> str:
        """The LLM in use, as configured ("" for none; a model object by its class name)."""
        spec = self._llm_spec
        if spec is None:
            return ""
        return spec if isinstance(spec, str) else type(spec).__name__

    @property
    def uses_llm(self) -> bool:
        """True when an LLM is configured."""
        return self._llm_spec is not None

    @property
    def tools(self) -> dict[str, Tool]:
        """Every working tool (built-ins and plug-ins), created cheaply; with a server, the
        tools it offers (they run there: raises :class:`ServerError` when it cannot be reached)."""
        if self._tools is None:
            if self.server:
                from copilot.remote.client import ServerClient
                from copilot.remote.tool import remote_tools

                self._tools = remote_tools(ServerClient(self.server, self.settings), self.settings)
            else:
                from copilot.tools.discovery import create_tools

                self._tools = create_tools(self.settings)
        return self._tools

    @property
    def planner(self) -> Planner:
        """The planner in use: the one given, else the LLM planner when an LLM is configured,
        else the embedded one."""
        with self._lock:
            if self._planner is None:
                from copilot.agents.planner import EmbeddedPlanner, LLMPlanner

                embedded = EmbeddedPlanner(self.settings)
                llm = self.llm
                self._planner = LLMPlanner(llm, embedded) if llm is not None else embedded
            return self._planner

    @property
    def graph(self) -> AgentGraph:
        """The compiled planner graph with its checkpointer."""
        with self._lock:
            if self._graph is None:
                from copilot.agents.graph import build_graph
                from copilot.runtime.threads import open_checkpointer

                checkpointer, problem = open_checkpointer(self.settings, self._persist)
                if problem:
                    self._warn_in_memory(problem)
                self._graph = build_graph(checkpointer)
            return self._graph

    def _warn_in_memory(self, problem: str) -> None:
        """One line: turns are answered but not kept (a broken or unwritable data folder)."""
        log.warning("conversation threads are kept in memory only, not saved: %s", problem)

    def _degrade(self, problem: str) -> None:
        """Switch to an in-memory thread store after the persistent one failed mid-turn."""
        from copilot.agents.graph import build_graph
        from copilot.runtime.threads import memory_checkpointer

        with self._lock:
            self._graph = build_graph(memory_checkpointer())
        self._warn_in_memory(problem)

    # -- studies -------------------------------------------------------------------------
    def open(
        self,
        path: str | Path | StudySource,
        progress: Callable[[int, int], None] | None = None,
        *,
        query: StudyQuery | None = None,
    ) -> StudySet:
        """The studies of a folder, indexed (read-only; cached under the XDG cache dir), or of
        a DICOMweb server given its base URL (``http://host:8042/dicom-web``), *listed*:
        study-level QIDO-RS only, paged, so the cost does not grow with the studies' size. A
        listed study has no series (``study.opened`` is False) until something needs it:
        :meth:`ask`, :meth:`fetch` and :meth:`analyze` open it then (or call
        :meth:`open_study`). Any other :class:`~copilot.study.source.StudySource` is listed
        the same way. ``query`` keeps only the studies matching its patient, date and
        modality filters (sent to a server as QIDO-RS parameters)."""
        from copilot.study.source import open_source

        source = open_source(path, self.settings)
        studies = source.list_studies(query=query, progress=progress)
        self._remember(source, studies)
        return studies

    def select(
        self, target: str | Path | StudySource, key: str, *, date: str | None = None
    ) -> tuple[StudySet, Study]:
        """The one study ``key`` names, opened, and the set it belongs to (its patient's
        other studies, for priors). ``key``: a StudyInstanceUID (or a unique prefix, in a
        folder), an AccessionNumber or a patient ID; ``date`` a DICOM date or range narrowing
        it. A server is asked for that study only (and its patient's other studies, listed);
        a folder is indexed, then chosen from. Raises :class:`StudyError` when ``key`` names
        no study or several."""
        from copilot.study.source import open_source

        source = open_source(target, self.settings)
        studies, study = source.select(key, date=date)
        self._remember(source, studies)
        self._keep(study)
        return studies, study

    def open_study(self, study: Study) -> Study:
        """``study`` opened: its series and headers read (no pixels). An opened study (every
        study of a folder) is returned as it is; a study a server listed is read from that
        server now (that study's requests only) and kept for the next questions. Raises
        :class:`StudyError` when it has no readable image, or when this copilot did not list
        it (the fix is named), and a :class:`DicomwebError` subclass when the server cannot be
        used."""
        if study.opened:
            return study
        with self._studies_lock:
            kept = self._opened.get(study.study_uid)
            source = self._listed_by.get(study.study_uid)
        if kept is not None:
            return kept
        if source is None:
            raise StudyError(
                f"study {study.study_uid} was listed but not opened, and not by this copilot: "
                "open it with Copilot.select(URL, STUDY_UID)"
            )
        opened = source.open_study(study)
        self._keep(opened)
        return opened

    def _remember(self, source: StudySource, studies: StudySet) -> None:
        """Note which source listed each study that is not opened yet."""
        listed = {s.study_uid: source for s in studies.studies if not s.opened}
        if listed:
            with self._studies_lock:
                self._listed_by.update(listed)

    def _keep(self, study: Study) -> None:
        """Keep a server's opened study for the next questions about it (the last few)."""
        if study.series and study.series[0].instances and study.series[0].first.remote:
            with self._studies_lock:
                self._opened[study.study_uid] = study
                self._opened.move_to_end(study.study_uid)
                while len(self._opened) > OPENED_KEPT:
                    self._opened.popitem(last=False)

    def fetch(
        self,
        target: Study | Sequence[InstanceRecord],
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Path]:
        """Bring the instances a question needs into the local cache: a study's primary
        instance (what the tools analyse; a listed study is opened first), or the given
        instances. Instances of a folder are already local; those of a DICOMweb server are
        fetched once (WADO-RS), verified."""
        from copilot.study.dicomweb import fetch_instances

        records = [self.open_study(target).primary_instance()] if isinstance(target, Study) else list(target)
        return fetch_instances(records, self.settings, progress=progress)

    def _fetch_views(self, study: Study) -> None:
        """A DICOMweb study's other views that a tool declaring views reads (the primary image
        is fetched already); one that cannot be fetched is logged, and that tool's read of it
        fails alone."""
        from copilot.study.views import images_for

        wanted = {
            viewed.instance.sop_uid: viewed.instance
            for tool in self.tools.values()
            if tool.manifest.views
            for viewed in images_for(tool.manifest.views, study)
            if viewed.instance.remote
        }
        wanted.pop(study.primary_instance().sop_uid, None)
        if wanted:
            try:
                self.fetch(list(wanted.values()))
            except CopilotError as exc:
                log.warning("other views of %s could not be fetched: %s", study.study_uid, exc)

    @staticmethod
    def pick(target: Study | StudySet, study_uid: str | None = None) -> Study:
        """The study a question is about: the given one, ``study_uid``, or the only one."""
        if isinstance(target, Study):
            return target
        if study_uid:
            return target.get(study_uid)
        if len(target.studies) == 1:
            return target.studies[0]
        raise StudyError(
            f"{len(target.studies)} studies in {target.root}: choose one with --study (a UID "
            "prefix, a patient ID or a sub-folder; see 'copilot studies PATH')"
        )

    def plan(self, question: str) -> Plan:
        """The tools a question needs (``Plan``), without running them; an LLM planner is sent
        the question de-identified, as in :meth:`ask`."""
        from copilot.text.redact import Redactor

        return self.planner.plan(
            question, self.tools, None, redact=Redactor(trusted=self.settings.llm_trusted)
        )

    # -- asking --------------------------------------------------------------------------
    def _redactor(self, study: Study) -> Callable[[str], str]:
        """The de-identification pass of everything sent to the LLM about ``study``."""
        from copilot.text.redact import study_redactor

        return study_redactor(study, trusted=self.settings.llm_trusted)

    def ask(
        self,
        target: Study | StudySet,
        question: str,
        thread_id: str | None = None,
        *,
        study_uid: str | None = None,
        on_event: EventSink | None = None,
        draft: DraftRequest | None = None,
    ) -> Answer:
        """Answer ``question`` about a study (a listed one is opened first: see
        :meth:`open_study`); ``thread_id`` continues a conversation. ``on_event`` is called
        with each progress event (:data:`copilot.schema.CopilotEvent`), in order, on the
        calling thread.

        ``draft`` asks for the answer to become a draft for sign-off (an SR, a SEG): the turn
        pauses before anything leaves the machine (the thread's checkpoint holds the pause),
        the answer is kept as a :class:`~copilot.drafts.Draft` and ``answer.draft`` is its id;
        :meth:`approve` or :meth:`reject` ends the pause, in this process or a later one.
        When it cannot be kept, ``answer.draft_error`` says why (the answer is still given).

        A thread belongs to the study of its first question: continuing it on another study
        raises :class:`StudyError` (one patient's conversation never shapes another's answer).
        """
        from copilot.agents.context import Context

        if not question.strip():
            raise CopilotError("empty question")
        study = self.open_study(self.pick(target, study_uid))  # a listed study: opened now
        self.fetch(study)  # a DICOMweb study: its image now, so a vanished study fails here, once
        self._fetch_views(study)
        thread = thread_id or uuid.uuid4().hex
        others = _same_patient(target, study)
        context = Context(
            settings=self.settings,
            tools=self.tools,
            study=study,
            llm=self.llm,
            planner=self.planner,
            cache=self.cache,
            redact=self._redactor(study),
            others=others,
            # Looked up only when a comparing tool or the comparison note reads it: opening a
            # listed prior and fetching its image costs requests a plain question must not.
            prior_lookup=lambda: self._prior(study, others),
        )
        draft_id = self.draft_store.new_id() if draft is not None else ""
        if thread_id:  # one turn of a thread at a time, across processes
            from copilot.runtime.threads import thread_lock

            with thread_lock(self.settings, thread):
                state = self._run_turn(study, thread, True, question, context, on_event, draft_id)
        else:
            state = self._run_turn(study, thread, False, question, context, on_event, draft_id)
        prior = context.prior if "comparison" in state.intents else None
        answer = _answer_of(state, study, question, thread, prior)
        if draft is None:
            return answer
        return self._keep_draft(answer.model_copy(update={"draft": draft_id}), study, draft)

    # -- sign-off ------------------------------------------------------------------------
    @property
    def draft_store(self) -> DraftStore:
        """Where drafts are kept (``<data_dir>/drafts``; they survive restarts)."""
        from copilot.drafts.store import DraftStore

        return DraftStore.of(self.settings)

    def keep_draft(self, answer: Answer, study: Study, request: DraftRequest | None = None) -> Draft:
        """Keep a finished answer about ``study`` as a draft for sign-off (by default, an SR
        kept until approved): the terminal app's "review and sign". Raises
        :class:`~copilot.errors.DicomObjectError` when it could never become an SR."""
        from copilot.drafts.signing import DraftRequest, open_draft

        return open_draft(self.draft_store, answer, study, request or DraftRequest(), answer.draft)

    def _keep_draft(self, answer: Answer, study: Study, request: DraftRequest) -> Answer:
        """Keep the paused turn's answer as its draft; when it cannot be, end the pause
        (recorded as rejected by the copilot, with why) and say so in the answer."""
        assert answer.draft is not None
        try:
            self.keep_draft(answer, study, request)
        except CopilotError as exc:
            self._resume(answer.thread_id, answer.draft, "rejected", "copilot", edited=False)
            return answer.model_copy(update={"draft": None, "draft_error": str(exc)})
        return answer

    def drafts(self, thread_id: str | None = None) -> list[Draft]:
        """Every draft kept (a thread's only, with ``thread_id``), oldest first."""
        return self.draft_store.drafts(thread_id=thread_id)

    def draft(self, draft_id: str) -> Draft:
        """The draft with this id (or a unique prefix of it)."""
        return self.draft_store.get(draft_id)

    def edit_draft(self, draft_id: str, text: str) -> Draft:
        """The draft with the person's ``text`` (only before approval)."""
        from copilot.drafts.signing import edit

        return edit(self.draft_store, draft_id, text)

    def approve(self, draft_id: str, *, by: str, organization: str | None = None) -> Draft:
        """Approve a draft as ``by``: the signed SR is made (the approver as its verifying
        observer, the signed and the agent's text both kept), the thread's pause ends with the
        decision recorded, and the SR and SEG are written where the question asked. Raises
        :class:`~copilot.errors.DraftStateError` for a draft that cannot be approved, and
        :class:`~copilot.errors.DicomObjectError` when a destination refuses a file (the
        approval stands; the message says where the signed objects are kept)."""
        from copilot.drafts.signing import approve, release

        draft = approve(self.draft_store, draft_id, by, organization)
        self._resume(draft.thread_id, draft.id, "approved", draft.approver or by, edited=draft.edited)
        release(self.draft_store, draft)
        return draft

    def reject(self, draft_id: str, *, by: str, reason: str | None = None) -> Draft:
        """Reject a draft as ``by``: it is never sent; the thread's pause ends with the decision."""
        from copilot.drafts.signing import reject

        draft = reject(self.draft_store, draft_id, by, reason)
        self._resume(draft.thread_id, draft.id, "rejected", draft.approver or by, edited=draft.edited)
        return draft

    def push_draft(
        self, draft_id: str, url: str, *, unreviewed: bool = False, dry_run: bool = False
    ) -> tuple[Draft, PushResult]:
        """Send an approved draft's DICOM objects to the DICOMweb server at ``url`` (STOW-RS).
        Raises :class:`~copilot.errors.DraftStateError` for a draft no person approved, unless
        ``unreviewed`` (its SR then says it was not reviewed); the draft is marked sent once
        the server stored everything."""
        from copilot.dicomout.push import plan_push, push
        from copilot.drafts.signing import mark_sent, sendable
        from copilot.study.dicomweb import safe_url

        draft, files = sendable(self.draft_store, draft_id, unreviewed=unreviewed)
        result = push(plan_push(files), url, self.settings, dry_run=dry_run)
        if not dry_run and not result.failed:
            draft = mark_sent(self.draft_store, draft.id, safe_url(url), files, unreviewed=unreviewed)
        return draft, result

    def _resume(self, thread: str, draft_id: str, decision: str, by: str, *, edited: bool) -> None:
        """End the thread's pause for ``draft_id`` with the decision (LangGraph's resume); a
        thread that moved on (or a store that cannot be used) keeps the decision in the draft
        store only."""
        from datetime import UTC, datetime

        from langgraph.types import Command

        from copilot.runtime.threads import thread_lock

        config: Any = {"configurable": {"thread_id": thread}}
        value = {
            "draft": draft_id,
            "state": decision,
            "by": by,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "edited": edited,
        }
        try:
            with thread_lock(self.settings, thread):
                snapshot = self.graph.get_state(config)
                waiting = [
                    i
                    for i in snapshot.interrupts
                    if isinstance(i.value, dict) and i.value.get("draft") == draft_id
                ]
                if not waiting:
                    log.debug("thread %s no longer waits on draft %s", thread, draft_id)
                    return
                for _ in self.graph.stream(Command(resume=value), config, stream_mode="values"):
                    pass
        except sqlite3.Error as exc:
            log.warning("the decision on draft %s is kept in the draft store only: %s", draft_id, exc)

    def decisions(self, thread_id: str) -> list[Decision]:
        """The sign-off decisions recorded in a thread (each a
        :class:`~copilot.agents.state.Decision`)."""
        snapshot = self.graph.get_state({"configurable": {"thread_id": thread_id}})
        return list(snapshot.values.get("decisions") or []) if snapshot else []

    def _prior(self, study: Study, others: tuple[Study, ...] | None) -> PriorStudy | None:
        """The prior for ``study`` (:func:`copilot.study.prior.find_prior`): the same patient's
        earlier studies a server only listed are opened first (the :data:`PRIORS_OPENED` most
        recent), and the prior's image is fetched. A prior that cannot be opened or fetched is
        left out (logged), never a failure of the question."""
        from copilot.study.prior import find_prior

        if others is None:
            return None
        mine = study.study_date.strip()
        listed = sorted(
            (o for o in others if not o.opened and o.study_date.strip() and o.study_date.strip() <= mine),
            key=lambda o: o.study_date,
            reverse=True,
        )[:PRIORS_OPENED]
        opened = {}
        for other in listed:
            try:
                opened[other.study_uid] = self.open_study(other)
            except CopilotError as exc:
                log.warning("prior study %s could not be opened: %s", other.study_uid, exc)
        usable = tuple(opened.get(o.study_uid, o) for o in others)
        prior = find_prior(study, usable)
        if prior.instance is not None:
            try:
                self.fetch([prior.instance])
            except CopilotError as exc:
                log.warning("prior image %s could not be fetched: %s", prior.instance.sop_uid, exc)
                failed = prior.study.study_uid if prior.study is not None else ""
                return find_prior(study, tuple(o for o in usable if o.study_uid != failed))
        return prior

    def _run_turn(
        self,
        study: Study,
        thread: str,
        resumed: bool,
        question: str,
        context: Context,
        on_event: EventSink | None,
        draft: str = "",
    ) -> AgentState:
        """Run one turn; when the thread store fails, run it again on an in-memory thread."""
        for attempt in (1, 2):
            try:
                owner = self.thread_study(thread) if resumed else None
                if owner is not None and owner != study.study_uid:
                    raise StudyError(
                        f"thread {thread!r} belongs to another study (UID {owner}), not "
                        f"{study.study_uid}; start a new conversation (omit --thread) to ask about this one"
                    )
                return self._stream_turn(thread, question, context, on_event, draft)
            except sqlite3.Error as exc:
                if attempt == 2:
                    raise CopilotError(f"conversation store failed: {exc}") from exc
                self._degrade(f"{type(exc).__name__}: {exc}")
        raise AssertionError("unreachable")

    def _stream_turn(
        self, thread: str, question: str, context: Context, on_event: EventSink | None, draft: str = ""
    ) -> AgentState:
        """Run one turn of the graph: the events its nodes write (LangGraph's custom stream) go
        to ``on_event``; the state after the last node is returned (a turn paused for sign-off:
        the state at the pause)."""
        from copilot.agents.state import AgentState, InputState

        final: AgentState | dict[str, Any] | None = None
        for mode, chunk in self.graph.stream(
            InputState(question=question, draft=draft),
            {"configurable": {"thread_id": thread}},
            context=context,
            stream_mode=["custom", "values"],
        ):
            if mode == "custom":
                if on_event is not None:
                    on_event(cast("CopilotEvent", chunk))  # what the nodes' stream writer wrote
            else:
                final = cast("AgentState | dict[str, Any]", chunk)  # the state's values
                if isinstance(final, dict) and "__interrupt__" in final:  # paused for sign-off
                    final = {k: v for k, v in final.items() if k != "__interrupt__"}
        if isinstance(final, AgentState):
            return final
        return AgentState(**(final or {}))

    async def astream(
        self,
        target: Study | StudySet,
        question: str,
        thread_id: str | None = None,
        *,
        study_uid: str | None = None,
    ) -> AsyncIterator[CopilotEvent | Answer]:
        """Yield typed events while the question is answered, then the :class:`Answer`."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[CopilotEvent | Answer | BaseException] = asyncio.Queue()

        def emit(event: CopilotEvent) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        def work() -> None:
            try:
                answer = self.ask(target, question, thread_id, study_uid=study_uid, on_event=emit)
                loop.call_soon_threadsafe(queue.put_nowait, answer)
            except BaseException as exc:
                loop.call_soon_threadsafe(queue.put_nowait, exc)

        task = loop.run_in_executor(None, work)
        while True:
            item = await queue.get()
            if isinstance(item, BaseException):
                await task
                raise item
            yield item
            if isinstance(item, Answer):
                break
        await task

    def history(self, thread_id: str) -> list[Turn]:
        """The finished turns of a conversation thread (survives restarts): each a
        :class:`~copilot.agents.state.Turn` with ``question`` and ``answer``. Show them before
        resuming a thread, so no earlier turn the user cannot see shapes an answer."""
        snapshot = self.graph.get_state({"configurable": {"thread_id": thread_id}})
        return list(snapshot.values.get("history") or []) if snapshot else []

    def thread_study(self, thread_id: str) -> str | None:
        """The Study Instance UID a thread belongs to, or None for a new thread."""
        snapshot = self.graph.get_state({"configurable": {"thread_id": thread_id}})
        owner = snapshot.values.get("study_uid") if snapshot else None
        return str(owner) if owner else None

    # -- bulk analysis -------------------------------------------------------------------
    def analyze(
        self,
        studies: StudySet | Sequence[Study],
        *,
        batch_size: int = 16,
        progress: Callable[[int, int], None] | None = None,
        tools: list[str] | None = None,
    ) -> Analysis:
        """Run every applicable image tool on every series' first image, batched per tool
        (listed studies are opened first; one that cannot be is left out, with a warning).

        Tools run in dependency order, so a tool that uses another's output (the segmenter's
        MedSAM prompts from the classifier's saliency) gets it for the same image; a tool that
        compares studies gets each image's prior among the studies analysed. Each batch
        has the per-tool time limit (``tool_timeout_s``); a tool that exceeds it is abandoned
        (it cannot keep the process alive) and its remaining images are reported, not sent.

        The result is an :class:`~copilot.schema.Analysis`: a sequence of
        :class:`~copilot.schema.ImageAnalysis` rows (one per series' first image, with each
        tool's typed :class:`~copilot.schema.ToolResult`), with ``to_records()``,
        ``to_pandas()`` and ``to_contract()`` (the JSONL lines of ``copilot analyze``).
        """
        from copilot.study.prior import priors_of
        from copilot.tools.ordering import dependency_order

        items = self._opened_all(studies.studies if isinstance(studies, StudySet) else studies)
        targets = [(study, series.first) for study in items for series in study.series]
        self.fetch([inst for _, inst in targets])  # DICOMweb studies: only these images
        priors = priors_of(items)  # each study's prior among those analysed
        chosen = {
            n: t
            for n, t in self.tools.items()
            if (tools is None or n in tools) and t.manifest.needs_image and not t.manifest.question_dependent
        }
        results: list[dict[str, ToolResult]] = [{} for _ in targets]  # per image, tools in run order
        hung: dict[str, str] = {}  # tools that timed out: their later batches are not sent
        total, done = len(targets) * max(1, len(chosen)), 0
        for name in dependency_order(chosen, chosen):
            tool = chosen[name]
            for start in range(0, len(targets), batch_size):
                chunk = range(start, min(start + batch_size, len(targets)))
                requests = [
                    ToolRequest(
                        instance=targets[i][1],
                        prior={k: v for k, v in results[i].items() if k in tool.manifest.uses and v.ok},
                        prior_study=priors.get(targets[i][0].study_uid),
                    )
                    for i in chunk
                ]
                for i, result in zip(chunk, self._timed_batch(tool, requests, hung), strict=True):
                    results[i][name] = result
                done += len(chunk)
                if progress:
                    progress(done, total)
        return Analysis(
            rows=[
                ImageAnalysis(
                    study_uid=s.study_uid,
                    series_uid=inst.series_uid,
                    sop_uid=inst.sop_uid,
                    path=inst.path,
                    view=inst.view,
                    tools=found,
                )
                for (s, inst), found in zip(targets, results, strict=True)
            ]
        )

    def _opened_all(self, studies: Sequence[Study]) -> list[Study]:
        """``studies`` opened; a listed study that cannot be opened is left out (logged)."""
        opened: list[Study] = []
        for study in studies:
            try:
                opened.append(self.open_study(study))
            except StudyError as exc:
                log.warning("not analysed: %s", exc)
        return opened

    def _timed_batch(self, tool: Tool, requests: list[ToolRequest], hung: dict[str, str]) -> list[ToolResult]:
        """``invoke_batch`` within the per-tool time limit; error results when it is exceeded."""
        from copilot.runtime.deadline import call_with_timeout

        timeout = self.settings.tool_timeout_s
        if tool.name in hung:
            detail, seconds = f"not run: {tool.name} {hung[tool.name]} on an earlier batch", 0.0
        else:
            finished, batch = call_with_timeout(lambda: invoke_batch(tool, requests), timeout)
            if finished and batch is not None:
                return batch
            detail, seconds = f"timed out after {timeout:g}s", timeout
            hung[tool.name] = detail
            log.warning("%s %s; its remaining images are not sent to it", tool.name, detail)
        return [ToolResult(tool=tool.name, status="error", detail=detail, seconds=seconds) for _ in requests]


def _answer_of(
    state: AgentState, study: Study, question: str, thread: str, prior: PriorStudy | None = None
) -> Answer:
    """The :class:`Answer` of a finished turn: every tool's findings and artifacts (each with its
    ``tool``), in plan order, with the composer's statements and citations, and the prior."""
    from copilot.schema.answer import PriorUsed

    findings, artifacts = [], []
    for name, res in state.results.items():
        reads = state.view_results.get(name, [])
        if len(reads) > 1:
            for read in reads:
                where = {"tool": name, "image": read.image.sop_uid, "view": read.image.view}
                findings += [f.model_copy(update=where) for f in read.result.findings]
                artifacts += [a.model_copy(update={"tool": name}) for a in read.result.artifacts]
            continue
        findings += [f.model_copy(update={"tool": name}) for f in res.findings]
        artifacts += [a.model_copy(update={"tool": name}) for a in res.artifacts]
    return Answer(
        text=state.answer,
        study_uid=study.study_uid,
        question=question,
        plan=list(state.plan),
        planner=state.planner,
        thread_id=thread,
        tools=[
            ToolRun(
                name=n,
                status=r.status,
                seconds=r.seconds,
                detail=r.detail,
                fix=r.fix,
                images=list(state.images.get(n, [])),
            )
            for n, r in state.results.items()
        ],
        prior_tools=_prior_runs(state, prior),
        findings=findings,
        citations=list(state.citations),
        artifacts=artifacts,
        statements=list(state.statements),
        verification=list(state.verification),
        plan_notes=list(state.plan_notes),
        provenance={n: r.provenance for n, r in state.results.items() if r.provenance is not None},
        prior=None
        if prior is None or "comparison" not in state.intents
        else PriorUsed(
            study_uid=prior.study.study_uid if prior.study else "",
            date=prior.date,
            description=prior.study.description if prior.study else "",
            view=prior.instance.view if prior.instance else "",
            reason=prior.reason,
        ),
    )


def _prior_runs(state: AgentState, prior: PriorStudy | None) -> list[ToolRun]:
    """The runs on the prior's image a comparison made, each naming that image."""
    if prior is None or prior.instance is None or not state.prior_results:
        return []
    from copilot.schema import ImageRead
    from copilot.study.views import view_of

    image = ImageRead(
        sop_uid=prior.instance.sop_uid,
        series_uid=prior.instance.series_uid,
        view=view_of(prior.instance).view,
    )
    return [
        ToolRun(name=n, status=r.status, seconds=r.seconds, detail=r.detail, fix=r.fix, images=[image])
        for n, r in state.prior_results.items()
    ]
