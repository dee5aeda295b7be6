"""Planners: which tools a question needs.

Two planners behind one interface (``plan(question, tools, focus) -> Plan``):

- :class:`EmbeddedPlanner` (default, offline): rules for the built-in experts, plus semantic
  routing with MiniLM over every tool's description and example questions (so paraphrases and
  third-party plug-ins are routed too), per part of a multi-part question.
- :class:`LLMPlanner`: any LangChain chat model, tool calling over the tools' manifests;
  malformed or unknown tool calls are repaired or rejected, and any failure falls back to the
  embedded planner.

Planners see only the question and tool manifests, never DICOM header text, so header text
cannot steer a plan.
"""

from __future__ import annotations

import difflib
import json
import logging
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from copilot.tools.contract import Tool

from copilot.config import Settings
from copilot.text.labeler import findings_in_question

log = logging.getLogger(__name__)

SEMANTIC_THRESHOLD = 0.55
GREETING = re.compile(
    r"^\s*(hi|hello|hey|thanks|thank you|good (morning|afternoon|evening)|ok|okay|bye)\b[\s!.?]*$",
    re.I,
)
METADATA = re.compile(
    r"\b(which|what|how many) (series|images|studies|views?|modalit\w*)\b|\bhow old\b|"
    r"\b(patient'?s? )?(age|sex|gender)\b|\bwhen was (the|this) (study|exam|film)\b|"
    r"\bwhat (body part|view|projection)\b|\bis (it|this) (a|an) (pa|ap|lateral)\b",
    re.I,
)
MEASURE = re.compile(
    r"\b(how (big|large|wide)|size of|measure\w*|ratio|ctr|area|width|extent|segment\w*|outline|mask)\b",
    re.I,
)
CAUSE = re.compile(
    r"\b(caus\w*|differential|why|explain|next step|management|what should|"
    r"recommend\w*|similar (reports?|cases?)|background|treat\w*|significan\w*)\b",
    re.I,
)
DEFINITION = re.compile(r"\bwhat (is|are|does) (an? )?[a-z]+", re.I)
REPORT = re.compile(r"\b(report|draft|impression|dictat\w*|write[- ]?up)\b", re.I)
OPEN = re.compile(
    r"\b(describe|what do you see|what can you see|tube|line|catheter|pacemaker|device|"
    r"where does|position of|which side)\b",
    re.I,
)
FINDINGS = re.compile(
    r"\b(finding\w*|abnormal\w*|normal|anything (wrong|abnormal)|what is wrong|"
    r"pathology|is there|are there|any\b|r/o|rule out|evidence of|signs? of)",
    re.I,
)
#: Built-in tools the rules above route; semantic routing adds them only when no rule fired.
RULED_TOOLS = frozenset({"cxr_classifier", "lesion_segmenter", "retriever", "report_generator", "vqa"})
PRONOUN = re.compile(r"\b(it|this|that|these|those|they|them)\b", re.I)
PART_SPLIT = re.compile(
    r"\?|;|\band (?:also )?(?=what|why|how|is|are|could|can|where|which|draft|write|describe)|\balso\b",
    re.I,
)

#: Expand clinical abbreviations before routing.
ABBREVIATIONS = {
    r"\br/o\b": "rule out",
    r"\bptx\b": "pneumothorax",
    r"\bcmg\b": "cardiomegaly",
    r"\bctr\b": "cardiothoracic ratio",
    r"\beff\b": "effusion",
    r"\bpna\b": "pneumonia",
    r"\bdx\b": "diagnosis",
    r"\bddx\b": "differential diagnosis",
    r"\bcxr\b": "chest x-ray",
    r"\bett\b": "endotracheal tube",
    r"\bngt\b": "nasogastric tube",
    r"\bfx\b": "fracture",
}


@dataclass
class Plan:
    """The tools a question needs, which planner chose them, and notes (repairs, rejections)."""

    tools: list[str]
    planner: str
    focus: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_contract(self) -> dict[str, Any]:
        """The JSON of ``copilot plan --json``."""
        return {"tools": self.tools, "planner": self.planner}


def expand_abbreviations(question: str) -> str:
    """Spell out the abbreviations clinicians type ("r/o ptx" -> "rule out pneumothorax")."""
    out = question
    for pattern, full in ABBREVIATIONS.items():
        out = re.sub(pattern, full, out, flags=re.I)
    return out


def split_parts(question: str) -> list[str]:
    """Parts of a multi-part question ("is there X, and what could cause it?")."""
    parts = [p.strip(" ,.") for p in PART_SPLIT.split(question)]
    return [p for p in parts if len(p) > 2] or [question]


def order_by_dependencies(tools: set[str], available: dict[str, Tool]) -> list[str]:
    """Dependencies first (a tool after the tools it uses), then by name."""
    ordered: list[str] = []
    pending = sorted(tools)
    while pending:
        progressed = False
        for name in list(pending):
            deps = set(available[name].manifest.uses) & set(pending) - {name}
            if not deps:
                ordered.append(name)
                pending.remove(name)
                progressed = True
        if not progressed:  # a dependency cycle: keep the rest as they are
            ordered.extend(pending)
            break
    return ordered


class EmbeddedPlanner:
    """Rules plus MiniLM semantic routing, fully offline."""

    name = "embedded"

    def __init__(self, settings: Settings, use_semantics: bool = True) -> None:
        self.settings = settings
        self.use_semantics = use_semantics
        self._vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def _tool_vectors(self, tools: dict[str, Tool]) -> dict[str, np.ndarray]:
        from copilot.kb.embedder import Embedder

        with self._lock:
            missing = [n for n in tools if n not in self._vectors]
            if missing:
                embedder = Embedder(self.settings)
                for name in missing:
                    m = tools[name].manifest
                    texts = [*m.questions, m.description.split(". ")[0]]
                    self._vectors[name] = embedder.encode(texts)
            return {n: self._vectors[n] for n in tools}

    def _semantic(self, part: str, tools: dict[str, Tool]) -> dict[str, float]:
        if not self.use_semantics or not tools:
            return {}
        from copilot.kb.embedder import Embedder

        try:
            vectors = self._tool_vectors(tools)
            q = Embedder(self.settings).encode([part])[0]
        except Exception as exc:  # no embedding model: rules alone still plan
            log.warning("semantic routing unavailable: %s", exc)
            self.use_semantics = False
            return {}
        return {name: float(np.max(v @ q)) for name, v in vectors.items()}

    def plan(
        self,
        question: str,
        tools: dict[str, Tool],
        focus: list[str] | None = None,
        redact: Any = None,
    ) -> Plan:
        """Choose tools for ``question`` among ``tools``; ``focus`` resolves "it" in follow-ups."""
        text = expand_abbreviations(question)
        asked = findings_in_question(text)
        if not asked and focus and PRONOUN.search(text):
            asked = list(focus)
        if GREETING.match(text) or (METADATA.search(text) and not asked and not MEASURE.search(text)):
            return Plan(
                tools=[],
                planner=self.name,
                focus=asked,
                notes=["answered from the study's header, no expert needed"],
            )
        chosen: set[str] = set()
        notes: list[str] = []
        for part in split_parts(text):
            part_findings = findings_in_question(part) or (asked if PRONOUN.search(part) else [])
            rule_hits: set[str] = set()
            if REPORT.search(part):
                rule_hits |= {"report_generator", "cxr_classifier", "lesion_segmenter", "retriever"}
            if MEASURE.search(part):
                rule_hits.add("lesion_segmenter")
                if part_findings:
                    rule_hits.add("cxr_classifier")
            defines = DEFINITION.search(part) and not MEASURE.search(part) and not FINDINGS.search(part)
            if CAUSE.search(part) or defines:
                rule_hits.add("retriever")
                if part_findings:
                    rule_hits.add("cxr_classifier")
            if OPEN.search(part):
                rule_hits |= {"vqa", "cxr_classifier"}
            if part_findings or FINDINGS.search(part):
                rule_hits.add("cxr_classifier")
            scores = self._semantic(part, tools)
            # Rules decide for the built-in experts; semantics route plug-ins and fill gaps.
            semantic_hits = {
                n
                for n, s in scores.items()
                if s >= SEMANTIC_THRESHOLD and (n not in RULED_TOOLS or not rule_hits)
            }
            if semantic_hits - rule_hits:
                notes.append(f"semantic routing added {', '.join(sorted(semantic_hits - rule_hits))}")
            hits = rule_hits | semantic_hits
            if not hits and scores:
                best = max(scores, key=lambda n: scores[n])
                if scores[best] >= SEMANTIC_THRESHOLD - 0.15:
                    hits.add(best)
                    notes.append(f"closest tool {best} ({scores[best]:.2f})")
            chosen |= hits
        available = {n for n in chosen if n in tools}
        dropped = sorted(chosen - available)
        if dropped:
            notes.append(f"not installed: {', '.join(dropped)}")
        return Plan(
            tools=order_by_dependencies(available, tools), planner=self.name, focus=asked, notes=notes
        )


class LLMPlanner:
    """Tool calling with any LangChain chat model; repairs or rejects bad calls."""

    name = "llm"

    def __init__(self, llm: Any, fallback: EmbeddedPlanner) -> None:
        self.llm = llm
        self.fallback = fallback

    @staticmethod
    def tool_schemas(tools: dict[str, Tool]) -> list[dict[str, Any]]:
        """OpenAI-style function schemas built from the manifests."""
        schemas = []
        for name, tool in tools.items():
            m = tool.manifest
            schemas.append(
                {
                    "type": "function",
                    "function": {
                        "name": name,
                        "description": f"{m.description} Example questions: {'; '.join(m.questions[:4])}",
                        "parameters": {
                            "type": "object",
                            "properties": {
                                "reason": {
                                    "type": "string",
                                    "description": "Why this tool is needed.",
                                }
                            },
                            "required": [],
                        },
                    },
                }
            )
        return schemas

    def _repair(self, raw: str, tools: dict[str, Tool]) -> str | None:
        name = re.sub(r"[^a-z0-9_]", "_", raw.strip().lower().replace("-", "_").replace(" ", "_"))
        if name in tools:
            return name
        close = difflib.get_close_matches(name, list(tools), n=1, cutoff=0.75)
        return close[0] if close else None

    def plan(
        self,
        question: str,
        tools: dict[str, Tool],
        focus: list[str] | None = None,
        redact: Any = None,
    ) -> Plan:
        """Ask the model (text passed through ``redact`` first); fall back on any failure."""
        from copilot.prompts import load_prompt
        from langchain_core.messages import HumanMessage, SystemMessage

        notes: list[str] = []
        try:
            bound = self.llm.bind_tools(self.tool_schemas(tools))
            focus_text = f"Earlier questions were about: {', '.join(focus)}." if focus else ""
            reply = bound.invoke(
                [
                    SystemMessage(content=load_prompt("planner")),
                    HumanMessage(content=(redact or str)(f"{focus_text}\nQuestion: {question}".strip())),
                ]
            )
        except Exception as exc:
            log.warning("LLM planner failed (%s); using the embedded planner", exc)
            plan = self.fallback.plan(question, tools, focus)
            plan.notes.append(f"LLM planner failed ({type(exc).__name__}); embedded plan used")
            return plan
        names: list[str] = []
        calls = list(getattr(reply, "tool_calls", None) or [])
        for bad in getattr(reply, "invalid_tool_calls", None) or []:
            calls.append({"name": bad.get("name") or "", "args": {}})
        if not calls and isinstance(reply.content, str) and reply.content.strip().startswith(("[", "{")):
            try:  # some servers put the calls in the text
                data = json.loads(reply.content)
                items = data if isinstance(data, list) else data.get("tools", [])
                calls = [{"name": i if isinstance(i, str) else i.get("name", "")} for i in items]
            except (ValueError, AttributeError):
                notes.append("unparseable planner reply rejected")
        for call in calls:
            raw = str(call.get("name") or "")
            fixed = self._repair(raw, tools)
            if fixed is None:
                notes.append(f"rejected unknown tool {raw!r}")
            else:
                if fixed != raw:
                    notes.append(f"repaired tool name {raw!r} -> {fixed!r}")
                names.append(fixed)
        asked = findings_in_question(expand_abbreviations(question)) or list(focus or [])
        return Plan(
            tools=order_by_dependencies(set(names), tools), planner=self.name, focus=asked, notes=notes
        )
