"""``retriever``: similar reports and background knowledge, with citations.

Searches the IU chest X-ray reports and the shipped knowledge cards (plus users' corpora)
with the hybrid, negation-aware index of :mod:`copilot.kb.index`. When the classifier ran in
the same plan, its positive findings shape the query, so the knowledge returned is about what
was actually found.
"""

from __future__ import annotations

import time

from copilot.availability import Availability
from copilot.tools.contract import Citation, Tool, ToolInput, ToolManifest, ToolRequest, ToolResult
from copilot.tools.statements import Question, Statement

K_REPORTS = 3
K_KNOWLEDGE = 3


class Retriever(Tool):
    """Hybrid dense + keyword retrieval over reports and knowledge cards."""

    manifest = ToolManifest(
        name="retriever",
        description=(
            "Finds similar radiology reports (Indiana University chest X-ray collection) and "
            "background knowledge about chest findings (definition, appearance, causes, "
            "differential diagnosis, next steps), returning passages with citations."
        ),
        version="1.0.0",
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
        would_add="similar reports and background knowledge with citations",
        inputs=(ToolInput(name="query", description="What to look up (defaults to the question)."),),
    )

    def available(self) -> Availability:
        """Available when the embedding model is installed."""
        from copilot.models.registry import ModelRegistry

        return ModelRegistry(self.settings).availability(self.settings.embedding_model)

    def load(self) -> None:
        """Load or build the index (embedding the corpus on first use)."""
        from copilot.kb.index import shared_index

        shared_index(self.settings).corpora()

    def run(self, request: ToolRequest) -> ToolResult:
        """Citations for the question, focused on the classifier's positive findings if any."""
        from copilot.kb.index import shared_index

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
        citations: list[Citation] = []
        seen: set[tuple[str, str]] = set()
        for label in positives:  # the card about each finding first, then what the search adds
            card = index.get("knowledge", label.lower().replace(" ", "-"))
            if card is not None:
                seen.add((card.source, card.id))
                citations.append(Citation(source=card.source, id=card.id, score=card.score, text=card.text))
        searches = [
            (knowledge_query, ["knowledge"], K_KNOWLEDGE),
            (report_query, ["iu-xray"], K_REPORTS),
        ]
        for name in index.corpora():
            if name not in ("knowledge", "iu-xray"):
                searches.append((knowledge_query, [name], 2))
        for query, sources, k in searches:
            if not query:
                continue
            for hit in index.search(query, k=k, sources=sources):
                if (hit.source, hit.id) in seen:
                    continue
                seen.add((hit.source, hit.id))
                citations.append(Citation(source=hit.source, id=hit.id, score=hit.score, text=hit.text))
        detail = f"query focused on classifier findings: {focus}" if focus else ""
        return ToolResult(
            tool=self.name,
            citations=citations,
            detail=detail,
            provenance=self.provenance(time.perf_counter() - start),
        )

    def statements(self, result: ToolResult, question: Question) -> list[Statement]:
        """Each passage as background (not a claim about this patient), with its citation."""
        if not result.ok:
            return []
        kinds = {"knowledge": "Knowledge", "iu-xray": "Similar report"}
        out = []
        for c in result.citations:
            snippet = c.text if len(c.text) < 320 else c.text[:317].rsplit(" ", 1)[0] + "..."
            out.append(
                Statement(
                    text=f"{kinds.get(c.source, c.source)} {{ref}} {c.id}: {snippet}",
                    tool=self.name,
                    section="background",
                    value=c.score,
                    assertion=False,
                    citation=c,
                )
            )
        return out
