"""Limits per LLM call: a total deadline however the reply trickles in, and a bounded length.

    limits = call_limits("plan", settings)          # deadline, max_tokens, the setting's name
    reply = BoundedChatModel(model, limits).bind_tools(schemas).invoke(messages)
    for chunk in load_llm(spec).stream(messages): ...   # the composer's limits by default

A per-read timeout (``llm_timeout_s``) does not bound a call: a server sending one chunk every
second never trips it. Each call here runs in a worker thread and the caller stops waiting at
the deadline (:class:`~copilot.errors.LLMDeadlineError`); a stream given up is closed at its next
chunk, which closes the HTTP response (and a llama.cpp server stops generating).
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from copilot.config import Settings, get_settings
from copilot.errors import LLMDeadlineError

if TYPE_CHECKING:
    from langchain_core.language_models import LanguageModelInput
    from langchain_core.messages import AIMessage, AIMessageChunk
    from langchain_core.runnables import RunnableConfig

__all__ = ["BoundedChatModel", "CallKind", "CallLimits", "call_limits", "with_max_tokens"]

log = logging.getLogger(__name__)

CallKind = Literal["plan", "review", "compose"]


@dataclass(frozen=True)
class CallLimits:
    """The total deadline and the longest reply of one kind of call; ``what`` and ``setting``
    name the call and the setting that holds its deadline in the message past it."""

    what: str
    deadline_s: float
    max_tokens: int | None = None
    setting: str = ""


def call_limits(kind: CallKind, settings: Settings | None = None) -> CallLimits:
    """The limits of a planner (``plan``), review or composer (``compose``) call."""
    s = settings or get_settings()
    if kind == "plan":
        deadline, what = s.llm_plan_deadline_s, "the LLM planner"
    elif kind == "review":
        deadline, what = s.llm_review_deadline_s, "the LLM planner's review"
    else:
        deadline, what = s.llm_compose_deadline_s, "the LLM composer"
    tokens = s.llm_compose_max_tokens if kind == "compose" else s.llm_plan_max_tokens
    return CallLimits(what, deadline, tokens, f"COPILOT_LLM_{kind.upper()}_DEADLINE_S")


#: Fields by which LangChain chat models bound a reply's length (OpenAI-style, Ollama, HF, Google).
_LENGTH_FIELDS = ("max_tokens", "num_predict", "max_new_tokens", "max_output_tokens")
_OPENAI_HOST = "api.openai.com"


def with_max_tokens(model: Any, max_tokens: int | None) -> Any:
    """A copy of a LangChain chat model whose replies hold at most ``max_tokens`` tokens (a
    smaller bound the model already has is kept); a model with no such field is returned as it
    is. ``langchain-openai`` sends the bound as ``max_completion_tokens``; a server other than
    OpenAI's is also sent ``max_tokens`` (llama.cpp, vLLM and Ollama read that one)."""
    fields = getattr(type(model), "model_fields", None)
    if max_tokens is None or not isinstance(fields, dict):
        return model
    update: dict[str, Any] = {}
    name = next((f for f in _LENGTH_FIELDS if f in fields), None)
    if name is not None:
        current = getattr(model, name, None)
        update[name] = min(current, max_tokens) if isinstance(current, int) and current > 0 else max_tokens
    client = getattr(model, "root_client", None)  # langchain-openai: the URL it really calls
    base = str(getattr(client, "base_url", "") or getattr(model, "openai_api_base", "") or "")
    if "extra_body" in fields and base and _OPENAI_HOST not in base:
        update["extra_body"] = {
            **(getattr(model, "extra_body", None) or {}),
            "max_tokens": update.get(name or "", max_tokens),
        }
    return model.model_copy(update=update) if update else model


class BoundedChatModel:
    """A chat model whose every call ends by its total deadline, with a bounded reply length.

    ``invoke`` and ``stream`` run the wrapped model in a daemon worker thread (the caller's
    context variables copied, so LangChain callbacks still see the run) and wait for it no
    longer than ``limits.deadline_s`` in all, then raise :class:`LLMDeadlineError`. A stream
    that is given up (deadline, or the reader stopped) is closed at its next chunk, which
    closes its HTTP response; a one-shot request that is given up finishes in the background
    within its read time limit. ``bind_tools`` returns a bounded model too; the rest of the
    wrapped model's attributes are read through.
    """

    def __init__(
        self,
        model: Any,
        limits: CallLimits,
        tools: Sequence[dict[str, Any]] | None = None,
        tool_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.limits = limits
        self._tools = list(tools) if tools is not None else None
        self._tool_kwargs = dict(tool_kwargs or {})

    def __getattr__(self, name: str) -> Any:
        if name in ("model", "limits", "_tools", "_tool_kwargs"):  # not set yet (copying)
            raise AttributeError(name)
        return getattr(self.model, name)

    def with_limits(self, limits: CallLimits) -> BoundedChatModel:
        """The same model (tools included) under other limits."""
        return BoundedChatModel(self.model, limits, self._tools, self._tool_kwargs)

    def bind_tools(self, tools: Sequence[dict[str, Any]], **kwargs: Any) -> BoundedChatModel:
        """The model with ``tools`` offered (bound at each call, after the length bound)."""
        return BoundedChatModel(self.model, self.limits, tools, kwargs)

    def runnable(self) -> Any:
        """The wrapped model with this call's length bound and tools applied."""
        model = with_max_tokens(self.model, self.limits.max_tokens)
        if self._tools is None:
            return model
        return model.bind_tools(self._tools, **self._tool_kwargs)

    def _late(self, started: bool = False) -> LLMDeadlineError:
        lim = self.limits
        head = f"answer from {lim.what} not finished" if started else f"no answer from {lim.what}"
        where = f" ({lim.setting})" if lim.setting else ""
        return LLMDeadlineError(f"{head} within {lim.deadline_s:g}s{where}")

    def _in_worker(self, work: Callable[[], None]) -> None:
        context = contextvars.copy_context()
        threading.Thread(target=context.run, args=(work,), name="llm-call", daemon=True).start()

    def invoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AIMessage:
        """One reply, or :class:`LLMDeadlineError` once the deadline has passed."""
        runnable = self.runnable()
        box: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)

        def work() -> None:
            try:
                box.put((True, runnable.invoke(input, config, **kwargs)))
            except BaseException as exc:  # handed to the caller, raised there
                box.put((False, exc))

        self._in_worker(work)
        try:
            ok, value = box.get(timeout=self.limits.deadline_s)
        except queue.Empty:
            log.info("%s", self._late())
            raise self._late() from None
        if not ok:
            raise value
        return value

    def stream(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[AIMessageChunk]:
        """The reply chunk by chunk; :class:`LLMDeadlineError` once the deadline has passed,
        however many chunks came before."""
        runnable = self.runnable()
        deadline = time.monotonic() + self.limits.deadline_s
        items: queue.Queue[tuple[str, Any]] = queue.Queue()
        stop = threading.Event()

        def work() -> None:
            chunks: Any = None
            try:
                chunks = runnable.stream(input, config, **kwargs)
                for chunk in chunks:
                    if stop.is_set():
                        break
                    items.put(("chunk", chunk))
                items.put(("end", None))
            except BaseException as exc:  # handed to the reader, raised there
                items.put(("error", exc))
            finally:
                close = getattr(chunks, "close", None)
                if callable(close):
                    close()  # ends the HTTP response of a stream given up

        self._in_worker(work)
        started = False
        try:
            while True:
                remaining = deadline - time.monotonic()
                try:
                    if remaining <= 0:
                        raise queue.Empty
                    kind, value = items.get(timeout=remaining)
                except queue.Empty:
                    log.info("%s", self._late(started))
                    raise self._late(started) from None
                if kind == "end":
                    return
                if kind == "error":
                    raise value
                started = True
                yield value
        finally:
            stop.set()
