"""``retriever``: background knowledge and other patients' reports, with citations.

Searches the IU chest X-ray reports and the shipped knowledge cards (plus users' corpora)
with the hybrid, negation-aware index of :mod:`copilot.kb.index`. When the classifier ran in
the same plan, its positive findings shape the query, so the knowledge returned is about what
was actually found; a follow-up is searched with the thread's earlier question (the planner's
``query`` argument).

Only passages that pass the index's relevance test are returned (similarity and a shared
word both required), from every corpus: a question outside the domain gets none, and a user's
document contributes only where it is about the question. Each citation says what it is
("Report that mentions cardiomegaly": its words matched, not its image), where it comes from
and its licence; passages are cut at sentence boundaries around the part that matches.
"""

from __future__ import annotations

import time
from typing import Any

from copilot.availability import Availability
from copilot.tools.contract import Citation, Tool, ToolInput, ToolManifest, ToolRequest, ToolResult
from copilot.tools.statements import Question, Statement

K_REPORTS = 3
K_KNOWLEDGE = 3
#: Passages per user corpus, at most (only relevant ones).
K_USER = 2
#: A passage scoring below this fraction of its corpus's best passage is dropped: "What causes
#: atelectasis?" keeps the atelectasis card (0.78) and the cards that name it among causes, not
#: the edema card (0.39).
RELATIVE_FLOOR = 0.6


class Retriever(Tool):
    """Hybrid dense + keyword retrieval over reports and knowledge cards."""

    manifest = ToolManifest(
        name="retriever",
        title="the knowledge-base search",
        description=(
            "Finds background knowledge about chest findings (definition, appearance, causes, "
            "differential diagnosis, next steps) and other patients' radiology reports that "
            "mention them (Indiana University chest X-ray collection), returning relevant "
            "passages with citations."
        ),
        version="1.1.0",
        needs_image=False,
        questions=(
            "What could cause this?",
            "What is the differential diagnosis?",
            "Find similar reports",
            "What does a pleural effusion look like?",
            "What should be done next?",
            "What is atelectasis?",
            "Explain this finding",
        ),
        labels=(),
        models=("all-minilm-l6-v2",),
        uses=("cxr_classifier",),
        question_dependent=True,
        intents=("knowledge",),
        would_add="background knowledge and other patients' reports on the findings, with citations",
        inputs=(ToolInput(name="query", description="What to look up (defaults to the question)."),),
    )

    def available(self) -> Availability:
        """Available when the embedding model is installed."""
        from copilot.models.registry import ModelRegistry

        return ModelRegistry(self.settings).availability(self.settings.embedding_model)

    def failure_words(self, result: ToolResult) -> str | None:
        """An index that is not built (yet) is said so, not "not installed"."""
        if result.status == "unavailable" and result.detail.startswith("the knowledge index is"):
            return f"the knowledge-base search is unavailable: {result.detail}"
        return None

    def cache_origin(self) -> str:
        """The weights (as every tool) and the index's state: a rebuilt or extended knowledge
        base never serves results found in the older one."""
        from copilot.kb.index import shared_index

        return f"{super().cache_origin()}|kb#{shared_index(self.settings).state()}"

    def load(self) -> None:
        """Load the index; never build it here (minutes, inside this tool's time limit): an
        index that is not built makes the tool unavailable at once, with the fix."""
        from copilot.errors import ToolUnavailableError
        from copilot.kb.index import shared_index

        index = shared_index(self.settings)
        missing = index.missing()
        if missing is not None:
            if index.building:
                raise ToolUnavailableError(
                    f"the knowledge index is being built in the background ({missing})",
                    "wait for the build to finish, or run 'copilot kb build'",
                )
            raise ToolUnavailableError(
                f"the knowledge index is not built yet ({missing})", "copilot kb build"
            )
        index.corpora()

    def run(self, request: ToolRequest) -> ToolResult:
        """Relevant citations for the question, focused on the classifier's positive findings."""
        from copilot.kb.corpus import IU_SOURCE, KB_SOURCE
        from copilot.kb.index import excerpt, shared_index

        start = time.perf_counter()
        index = shared_index(self.settings)
        positives: list[str] = []
        prior = request.prior.get("cxr_classifier")
        if prior is not None and prior.ok:
            positives = [f.label for f in prior.findings if f.above_threshold]
        focus = " and ".join(positives)
        question = str(request.options.get("query") or request.question).strip()
        knowledge_query = f"{focus}. {question}" if focus else question
        report_query = focus or question
        wanted = _present(knowledge_query)
        citations: list[Citation] = []
        seen: set[tuple[str, str]] = set()
        for label in positives:  # the card about each finding first, then what the search adds
            card = index.get(KB_SOURCE, label.lower().replace(" ", "-"))
            if card is not None:
                seen.add((card.source, card.id))
                citations.append(_citation(card, excerpt(card.text, knowledge_query), wanted))
        searches = [
            (knowledge_query, [KB_SOURCE], K_KNOWLEDGE),
            (report_query, [IU_SOURCE], K_REPORTS),
        ]
        for name in index.corpora():
            if name not in (KB_SOURCE, IU_SOURCE):
                searches.append((knowledge_query, [name], K_USER))
        for query, sources, k in searches:
            if not query:
                continue
            hits = index.search(query, k=k, sources=sources, relevant_only=True)
            floor = RELATIVE_FLOOR * hits[0].score if hits else 0.0
            for hit in hits:
                if hit.score < floor:
                    continue  # far below the best passage of this corpus: off the question
                if (hit.source, hit.id) in seen:
                    continue
                seen.add((hit.source, hit.id))
                citations.append(_citation(hit, hit.text, wanted))
        notes = []
        if focus:
            notes.append(f"query focused on classifier findings: {focus}")
        if question != request.question.strip():
            notes.append(f"query resolved against the conversation: {question}")
        if not citations:
            notes.append("no passage passed the relevance test (similarity and a shared word)")
        return ToolResult(
            tool=self.name,
            citations=citations,
            detail="; ".join(notes),
            provenance=self.provenance(time.perf_counter() - start),
        )

    def statements(self, result: ToolResult, question: Question) -> list[Statement]:
        """Each passage quoted as background (not a claim about this patient), saying what it
        is, where it comes from and its licence; no relevant passage is said plainly."""
        if not result.ok:
            return []
        if not result.citations:
            return [
                Statement(
                    text="The knowledge base holds no passage relevant to this question.",
                    tool=self.name,
                    section="answer" if "knowledge" in question.intents else "background",
                    assertion=False,
                )
            ]
        out = []
        synthesis = _synthesis(result, question)
        if synthesis:
            out.append(
                Statement(
                    text=f"Background, not a reading of this image: {synthesis}",
                    tool=self.name,
                    section="answer" if "knowledge" in question.intents else "background",
                    assertion=False,
                )
            )
        for c in result.citations:
            what = c.label or ("Similar case (its image matched)" if c.match == "image" else "Passage")
            origin = "; ".join(x for x in (c.reference or c.source, c.licence) if x)
            out.append(
                Statement(
                    text=f'{{ref}} {what}: "{c.text}" ({origin})',
                    tool=self.name,
                    section="background",
                    value=c.score,
                    assertion=False,
                    citation=c,
                )
            )
        return out


def _synthesis(result: ToolResult, question: Question) -> str:
    """The sentences of the background sources that answer ``question``, each followed by a
    ``{cite:SOURCE/ID}`` mark the composer turns into that source's number; "" when none
    does. Other patients' reports are never quoted here (their sentences read as findings)."""
    from copilot.kb.corpus import IU_SOURCE, KB_SOURCE
    from copilot.kb.synthesis import Source, pick_sentences

    sources = [
        Source((c.source, c.id), c.text, _title(c) if c.source == KB_SOURCE else "")
        for c in result.citations
        if c.source != IU_SOURCE
    ]
    picked = pick_sentences(question.text, sources, extra_terms=question.findings)
    return " ".join(f"{p.sentence} {{cite:{p.key[0]}/{p.key[1]}}}" for p in picked)


def _title(citation: Citation) -> str:
    """A knowledge card's title, from its label ("Background on pleural effusion")."""
    return citation.label.removeprefix("Background on ")


def _present(text: str) -> list[str]:
    """Finding labels ``text`` names as present or uncertain (what a report should mention)."""
    from copilot.text.labeler import label_text

    return [label for label, status in label_text(text).items() if status != "absent"]


def _citation(hit: Any, text: str, wanted: list[str]) -> Citation:
    """A search hit as a citation labelled for what it is."""
    from copilot.kb.corpus import IU_SOURCE, KB_SOURCE

    if hit.source == KB_SOURCE:
        label = f"Background on {(hit.title or hit.id).lower()}"
    elif hit.source == IU_SOURCE:
        mentioned = [w.lower() for w in wanted if w in _present(text)]
        words = " and ".join(mentioned)
        label = f"Report that mentions {words}" if words else "Report that matches the question's words"
    else:
        label = "Quoted from your documents"
    return Citation(
        source=hit.source,
        id=hit.id,
        score=hit.score,
        text=text,
        reference=hit.reference,
        licence=hit.licence,
        label=label,
        match="text",
    )
