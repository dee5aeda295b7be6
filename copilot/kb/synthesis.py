"""Extractive synthesis: the few sentences of retrieved passages that answer a question.

With no LLM, a knowledge answer leads with two or three sentences taken word for word from the
best background sources (knowledge cards, a user's documents; never other patients' reports,
whose sentences would read as findings), then lists the sources. A sentence is chosen for
the question's informative words it contains (:func:`copilot.kb.index.query_terms`), and for
answering the kind of question asked: causes ("what causes..."), the next step or the
guideline's recommendation ("what should be done", "what does Fleischner recommend"), a
definition ("what is..."). A sentence that shares no word with the question and answers no
such kind is never chosen (the relevance floor), so an off-topic passage contributes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from copilot.kb.index import query_terms, sentences
from copilot.kb.kinds import KIND_WORDS, answered_kinds, asked_kinds

#: Sentences in a synthesis, at most, and from one source.
MAX_SENTENCES = 3
PER_SOURCE = 2
#: A sentence shorter than this (in words) is a heading ("Nodule."), not an answer.
MIN_WORDS = 4
#: A sentence scoring below this share of the best one is left out.
FLOOR = 0.6
#: Words that ask for a kind of answer rather than name a topic (stemmed as query terms are).
KIND_TERMS = query_terms(KIND_WORDS)


@dataclass(frozen=True)
class Source:
    """One retrieved background passage, in rank order: its key, (excerpt) text and title."""

    key: tuple[str, str]
    text: str
    title: str = ""


@dataclass(frozen=True)
class Picked:
    """A sentence chosen for the synthesis and the source it is quoted from."""

    sentence: str
    key: tuple[str, str]
    score: float


def _clean(sentence: str) -> str:
    return sentence.strip().strip("…").strip()


def pick_sentences(question: str, sources: Sequence[Source], extra_terms: Sequence[str] = ()) -> list[Picked]:
    """The sentences that best answer ``question`` from ``sources`` (in rank order), best
    first: at most :data:`MAX_SENTENCES`, :data:`PER_SOURCE` from one source, none scoring
    below :data:`FLOOR` of the best. ``extra_terms``: more words that count as the question's
    (the findings it is about).

    The rules: sources whose title names the question's subject are used when there are any,
    else sources whose text does (a sentence from one of those must name it itself); when the
    question asks for a kind of answer (causes, the next step...), only sentences that give it
    are chosen, if any do; a "what is..." question takes the opening of the best source."""
    topic = set(query_terms(question))
    for extra in extra_terms:
        topic |= query_terms(extra)
    echoes = topic & KIND_TERMS  # the question's own kind words ("recommend") said back
    topic -= KIND_TERMS  # "next", "causes": what kind of answer, not what it is about
    kinds = asked_kinds(question)
    wanted = [k for k in kinds if k != "definition"]
    titled = [r for r, src in enumerate(sources) if topic & query_terms(src.title)]
    pool = titled or [r for r, src in enumerate(sources) if topic & query_terms(f"{src.title} {src.text}")]
    candidates: list[tuple[Picked, int]] = []
    for rank in pool:
        source = sources[rank]
        for position, raw in enumerate(sentences(source.text)):
            sentence = _clean(raw)
            if len(sentence.split()) < MIN_WORDS:
                continue
            shared = len(topic & query_terms(sentence))
            if not titled and not shared:
                continue  # a passage about something else: only its sentences on the subject
            answers = len(answered_kinds(sentence, wanted))
            opening = "definition" in kinds and rank == pool[0] and position <= 1 and not raw.startswith("…")
            echoed = 0.5 * len(echoes & query_terms(sentence))
            score = 1.5 * answers + shared + echoed + (1.5 if opening else 0) - 0.5 * rank - 0.05 * position
            candidates.append((Picked(sentence, source.key, score), answers + opening))
    if wanted and any(n for _, n in candidates):
        candidates = [(p, n) for p, n in candidates if n]  # asked for causes: sentences giving them
    elif not any(n for _, n in candidates):
        candidates = [(p, n) for p, n in candidates if topic & query_terms(p.sentence)]
    if not candidates:
        return []
    ranked = sorted((p for p, _ in candidates), key=lambda p: -p.score)
    floor = FLOOR * ranked[0].score
    chosen: list[Picked] = []
    per: dict[tuple[str, str], int] = {}
    for pick in ranked:
        if len(chosen) == MAX_SENTENCES or pick.score < floor:
            break
        if per.get(pick.key, 0) >= PER_SOURCE or any(pick.sentence == c.sentence for c in chosen):
            continue
        per[pick.key] = per.get(pick.key, 0) + 1
        chosen.append(pick)
    return chosen
