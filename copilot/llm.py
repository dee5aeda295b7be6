"""Chat models for planning and composing: spec parsing, provider checks, time limits.

    spec = parse_spec("ollama:medgemma")        # LLMSpec(provider="ollama", model="medgemma")
    llm = load_llm("openai:qwen2.5", settings)   # a LangChain chat model, or LLMError
    report = check_llm("openai:qwen2.5", settings)  # does it answer? does it call tools?

Rules:

- A spec is ``provider:model`` (LangChain's model strings); ``gpt-*``/``o1``/``o3`` and
  ``claude*`` may omit the provider. Provider packages are optional: a missing one is an
  :class:`LLMError` naming the extra to install (``pip install 'dicom-copilot[openai]'``).
- ``openai:`` reaches any OpenAI-compatible server through ``OPENAI_BASE_URL`` (or
  ``OPENAI_API_BASE``). A local server (loopback, private network, single-label host) needs no
  key: a placeholder is passed when ``OPENAI_API_KEY`` is unset. ``ollama:`` uses ``OLLAMA_HOST``.
- Every request has a time limit (``llm_timeout_s``) and a retry budget (``llm_max_retries``).
  After a request times out or cannot connect, the model counts as unreachable for
  :data:`UNREACHABLE_COOLDOWN_S`: further requests raise :class:`LLMUnreachableError` at once,
  so a dead server costs one wait per question, not one per planner and composer call.
- Failures are described in one line (:func:`describe_failure`), never a traceback.
- The copilot needs of a model only what :class:`ChatModel` names (tool binding, one reply,
  a stream of tokens): every LangChain chat model is one, and so is a test double.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol, overload
from urllib.parse import urlparse

from langchain_core.callbacks import BaseCallbackHandler

from copilot.config import Settings, get_settings
from copilot.errors import LLMError, LLMUnreachableError

if TYPE_CHECKING:
    from langchain_core.language_models import LanguageModelInput
    from langchain_core.messages import AIMessage, AIMessageChunk
    from langchain_core.runnables import Runnable, RunnableConfig

log = logging.getLogger(__name__)

#: Passed as the API key to a local OpenAI-compatible server when OPENAI_API_KEY is unset.
PLACEHOLDER_API_KEY = "sk-local-no-key-needed"
#: Seconds during which requests to a model that just timed out or refused fail at once.
UNREACHABLE_COOLDOWN_S = 30.0
DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"

#: provider -> (import name of its LangChain package, pip name, extra of dicom-copilot or None).
PROVIDERS: dict[str, tuple[str, str, str | None]] = {
    "openai": ("langchain_openai", "langchain-openai", "openai"),
    "azure_openai": ("langchain_openai", "langchain-openai", "openai"),
    "ollama": ("langchain_ollama", "langchain-ollama", "ollama"),
    "anthropic": ("langchain_anthropic", "langchain-anthropic", None),
    "google_genai": ("langchain_google_genai", "langchain-google-genai", None),
    "google_vertexai": ("langchain_google_vertexai", "langchain-google-vertexai", None),
    "huggingface": ("langchain_huggingface", "langchain-huggingface", None),
    "mistralai": ("langchain_mistralai", "langchain-mistralai", None),
    "groq": ("langchain_groq", "langchain-groq", None),
    "deepseek": ("langchain_deepseek", "langchain-deepseek", None),
    "xai": ("langchain_xai", "langchain-xai", None),
    "fireworks": ("langchain_fireworks", "langchain-fireworks", None),
    "together": ("langchain_together", "langchain-together", None),
    "bedrock": ("langchain_aws", "langchain-aws", None),
    "bedrock_converse": ("langchain_aws", "langchain-aws", None),
}
#: Providers whose chat model takes ``timeout`` and ``max_retries`` keyword arguments.
_TIMEOUT_KWARGS = {"openai", "azure_openai", "anthropic", "mistralai", "groq", "deepseek", "xai"}
_INFERRED = (
    ("gpt-", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("chatgpt", "openai"),
    ("claude", "anthropic"),
)
SPEC_HELP = "use provider:model, e.g. openai:gpt-4o-mini, ollama:medgemma (see docs/llm.md)"


@dataclass(frozen=True)
class LLMSpec:
    """A parsed model string."""

    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"


def parse_spec(spec: str) -> LLMSpec:
    """``provider:model`` -> :class:`LLMSpec`; the model part may hold colons (``ollama:qwen2.5:7b``)."""
    text = spec.strip()
    prefix, sep, rest = text.partition(":")
    if sep and prefix.lower() in PROVIDERS:
        if not rest.strip():
            raise LLMError(f"LLM spec {spec!r} names no model; {SPEC_HELP}")
        return LLMSpec(prefix.lower(), rest.strip())
    for start, provider in _INFERRED:
        if text.lower().startswith(start):
            return LLMSpec(provider, text)
    if not text:
        raise LLMError(f"empty LLM spec; {SPEC_HELP}")
    raise LLMError(f"LLM spec {spec!r} names no known provider ({', '.join(sorted(PROVIDERS))}); {SPEC_HELP}")


def install_hint(provider: str) -> str:
    """The pip command that installs a provider's LangChain package."""
    _module, package, extra = PROVIDERS.get(
        provider, (f"langchain_{provider}", f"langchain-{provider}", None)
    )
    return f"pip install 'dicom-copilot[{extra}]'" if extra else f"pip install {package}"


def require_provider(spec: LLMSpec) -> None:
    """Raise :class:`LLMError` with the install command when the provider package is missing."""
    module = PROVIDERS.get(spec.provider, (f"langchain_{spec.provider}", "", None))[0]
    if importlib.util.find_spec(module) is None:
        raise LLMError(
            f"the {spec.provider} provider package ({module.replace('_', '-')}) is not installed; "
            f"install it with: {install_hint(spec.provider)}"
        )


def is_local_url(url: str) -> bool:
    """True for loopback, private-network and single-label hosts (a server on this site)."""
    host = (urlparse(url if "//" in url else f"//{url}").hostname or "").lower()
    if not host:
        return False
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal", ".lan")):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return "." not in host  # a single-label name: a container or LAN host
    return ip.is_loopback or ip.is_private or ip.is_link_local


def endpoint(spec: LLMSpec) -> str | None:
    """The URL requests for ``spec`` go to, where the provider has one we can tell."""
    if spec.provider == "openai":
        return (
            os.environ.get("OPENAI_API_BASE")
            or os.environ.get("OPENAI_BASE_URL")
            or "https://api.openai.com/v1"
        )
    if spec.provider == "ollama":
        host = os.environ.get("OLLAMA_HOST") or DEFAULT_OLLAMA_HOST
        return host if "//" in host else f"http://{host}"
    return None


def _provider_kwargs(spec: LLMSpec, timeout_s: float, max_retries: int) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if spec.provider in _TIMEOUT_KWARGS:
        kwargs.update(timeout=timeout_s, max_retries=max_retries)
    elif spec.provider == "ollama":
        kwargs["client_kwargs"] = {"timeout": timeout_s}
    if spec.provider == "openai" and not os.environ.get("OPENAI_API_KEY"):
        url = endpoint(spec) or ""
        if not is_local_url(url):
            raise LLMError(
                f"OPENAI_API_KEY is not set for {url}; set it, or point OPENAI_BASE_URL at a local "
                "OpenAI-compatible server (see docs/llm.md)"
            )
        kwargs["api_key"] = PLACEHOLDER_API_KEY
    return kwargs


class ChatModel(Protocol):
    """The LLM collaborator: what the planner and the composer call on a chat model.

    Any LangChain chat model (``BaseChatModel``) satisfies it; so does
    :class:`copilot.testing.FakeChatModel`.
    """

    def bind_tools(
        self, tools: Sequence[dict[str, Any]], **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """The model with these OpenAI-style function schemas offered to it (the planner)."""
        ...

    def invoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AIMessage:
        """One reply to ``input``."""
        ...

    def stream(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[AIMessageChunk]:
        """The reply to ``input`` token by token (the composer)."""
        ...


@overload
def load_llm(
    spec: str | ChatModel,
    settings: Settings | None = None,
    *,
    timeout_s: float | None = None,
    max_retries: int | None = None,
) -> ChatModel: ...
@overload
def load_llm(
    spec: None,
    settings: Settings | None = None,
    *,
    timeout_s: float | None = None,
    max_retries: int | None = None,
) -> None: ...
def load_llm(
    spec: str | ChatModel | None,
    settings: Settings | None = None,
    *,
    timeout_s: float | None = None,
    max_retries: int | None = None,
) -> ChatModel | None:
    """A LangChain chat model from a model string, with the settings' time limit and retries.

    ``None`` and model instances are returned as they are. Raises :class:`LLMError` (one line)
    when the spec is bad, the provider package is missing or the model cannot be created.
    """
    if spec is None or not isinstance(spec, str):
        return spec
    settings = settings or get_settings()
    parsed = parse_spec(spec)
    require_provider(parsed)
    timeout = timeout_s if timeout_s is not None else settings.llm_timeout_s
    retries = max_retries if max_retries is not None else settings.llm_max_retries
    kwargs = _provider_kwargs(parsed, timeout, retries)
    try:
        from langchain.chat_models import init_chat_model

        model = init_chat_model(parsed.model, model_provider=parsed.provider, **kwargs)
    except ImportError as exc:
        raise LLMError(
            f"cannot load LLM {spec!r}: {_first_line(exc)}; install with: {install_hint(parsed.provider)}"
        ) from exc
    except Exception as exc:
        raise LLMError(f"cannot load LLM {spec!r}: {_first_line(exc)}") from exc
    model.callbacks = [*(model.callbacks or []), ReachabilityGuard(str(parsed), UNREACHABLE_COOLDOWN_S)]
    log.info("LLM %s at %s (timeout %.1fs, %d retries)", parsed, endpoint(parsed) or "-", timeout, retries)
    return model


# -- failures -------------------------------------------------------------------------------
_TIMEOUT_NAMES = {"APITimeoutError", "TimeoutException", "ReadTimeout", "ConnectTimeout", "TimeoutError"}
_CONNECT_NAMES = {"APIConnectionError", "ConnectError", "ConnectionRefusedError", "ConnectionError"}


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def is_unreachable(exc: BaseException) -> bool:
    """True when ``exc`` (or its cause) is a timeout or a failed connection."""
    return any(
        isinstance(e, LLMUnreachableError)
        or {c.__name__ for c in type(e).__mro__} & (_TIMEOUT_NAMES | _CONNECT_NAMES)
        for e in _chain(exc)
    )


def describe_failure(exc: BaseException, where: str | None, timeout_s: float) -> str:
    """One line saying why a request failed: timeout, refused connection, key, model, other."""
    at = where or "the LLM"
    chain = _chain(exc)
    names = {c.__name__ for e in chain for c in type(e).__mro__}
    status = next((getattr(e, "status_code", None) for e in chain if getattr(e, "status_code", None)), None)
    if any(isinstance(e, LLMUnreachableError) for e in chain):
        return str(next(e for e in chain if isinstance(e, LLMUnreachableError)))
    if names & _TIMEOUT_NAMES:
        return f"no answer from {at} within {timeout_s:g}s (COPILOT_LLM_TIMEOUT_S)"
    if names & _CONNECT_NAMES:
        refused = "ConnectionRefusedError" in names or "refused" in " ".join(str(e).lower() for e in chain)
        return f"cannot reach {at}: {'connection refused' if refused else 'connection failed'}"
    if status in (401, 403):
        return f"{at} rejected the credentials (HTTP {status}; check OPENAI_API_KEY or the server's key)"
    if status == 404:
        return f"{at} does not serve this model (HTTP 404): {_first_line(exc)}"
    return f"{at} failed: {_first_line(exc)}"


class _QuietGuard(logging.Filter):
    """Drops LangChain's warning about the guard's deliberate refusal (the refusal is the
    message: the caller reports it, and the guard logged the cause once)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.args, tuple) and record.args[:1] == ("ReachabilityGuard",))


_callback_log = logging.getLogger("langchain_core.callbacks.manager")
if not any(isinstance(f, _QuietGuard) for f in _callback_log.filters):
    _callback_log.addFilter(_QuietGuard())


class ReachabilityGuard(BaseCallbackHandler):
    """A LangChain callback that fails requests at once while a model is unreachable.

    Attached by :func:`load_llm`. A timeout or connection failure marks the model unreachable
    for ``cooldown_s``; meanwhile a new request raises :class:`LLMUnreachableError` before any
    network call. Any answer clears the mark.
    """

    raise_error = True
    run_inline = True

    def __init__(self, name: str, cooldown_s: float) -> None:
        self.name = name
        self.cooldown_s = cooldown_s
        self._failed_at: float | None = None
        self._reason = ""
        self._lock = threading.Lock()

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        """Refuse the request while the model is marked unreachable."""
        with self._lock:
            if self._failed_at is not None and time.monotonic() - self._failed_at < self.cooldown_s:
                raise LLMUnreachableError(f"{self.name} is unreachable ({self._reason}); request skipped")

    def on_llm_start(self, *args: Any, **kwargs: Any) -> None:
        """Same rule for completion-style models."""
        self.on_chat_model_start()

    def on_llm_end(self, *args: Any, **kwargs: Any) -> None:
        """An answer arrived: the model is reachable."""
        with self._lock:
            self._failed_at = None

    def on_llm_error(self, error: BaseException, *args: Any, **kwargs: Any) -> None:
        """Mark the model unreachable after a timeout or a failed connection."""
        if is_unreachable(error) and not isinstance(error, LLMUnreachableError):
            with self._lock:
                self._failed_at = time.monotonic()
                self._reason = type(error).__name__
            # info, not warning: the caller reports the failure in its own words, in one line.
            log.info(
                "%s unreachable (%s); requests skipped for %.0fs", self.name, self._reason, self.cooldown_s
            )


# -- check ----------------------------------------------------------------------------------
PROBE_PROMPT = "Reply with the single word: ready"
PROBE_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "report_status",
        "description": "Report that the model is ready. Call it whenever asked to.",
        "parameters": {
            "type": "object",
            "properties": {"status": {"type": "string", "description": "The word ready."}},
            "required": ["status"],
        },
    },
}
TOOL_PROMPT = "Call the report_status tool with status 'ready'. Do not answer in text."


@dataclass
class LLMCheck:
    """What ``copilot llm check`` found out about a model."""

    spec: str
    endpoint: str | None
    answers: bool
    latency_s: float | None = None
    reply: str = ""
    tool_calling: bool | None = None
    tool_latency_s: float | None = None
    tool_detail: str = ""
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON of ``copilot llm check --json``."""
        return asdict(self)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p if isinstance(p, str) else str(p.get("text", "")) for p in content)
    return str(content)


def check_llm(spec: str, settings: Settings | None = None, *, timeout_s: float | None = None) -> LLMCheck:
    """Ask the model a tiny question, then offer it one tool; never retries, never hangs.

    Raises :class:`LLMError` when the model cannot be loaded (bad spec, missing package); an
    unreachable model gives ``answers=False`` with ``error`` set.
    """
    from langchain_core.messages import HumanMessage

    settings = settings or get_settings()
    timeout = timeout_s if timeout_s is not None else settings.llm_timeout_s
    parsed = parse_spec(spec)
    llm = load_llm(spec, settings, timeout_s=timeout, max_retries=0)
    report = LLMCheck(spec=str(parsed), endpoint=endpoint(parsed), answers=False)
    start = time.perf_counter()
    try:
        reply = llm.invoke([HumanMessage(content=PROBE_PROMPT)])
    except Exception as exc:
        report.error = describe_failure(exc, report.endpoint or str(parsed), timeout)
        return report
    report.answers = True
    report.latency_s = round(time.perf_counter() - start, 3)
    report.reply = _text(reply.content).strip()[:120]
    start = time.perf_counter()
    try:
        tool_reply = llm.bind_tools([PROBE_TOOL]).invoke([HumanMessage(content=TOOL_PROMPT)])
    except NotImplementedError:
        report.tool_calling, report.tool_detail = False, "this chat model class has no tool calling"
        return report
    except Exception as exc:
        report.tool_calling = False
        report.tool_detail = "request with a tool failed: " + describe_failure(exc, report.endpoint, timeout)
        return report
    report.tool_latency_s = round(time.perf_counter() - start, 3)
    calls = list(getattr(tool_reply, "tool_calls", None) or [])
    invalid = list(getattr(tool_reply, "invalid_tool_calls", None) or [])
    if any(c.get("name") == "report_status" for c in calls):
        report.tool_calling, report.tool_detail = True, "called the offered tool"
    elif invalid:
        bad = invalid[0]
        report.tool_calling = False
        report.tool_detail = (
            f"malformed tool call ({bad.get('name') or 'no name'}: {bad.get('error') or 'bad arguments'})"
        )
    elif calls:
        report.tool_calling = False
        report.tool_detail = f"called a tool it was not offered ({calls[0].get('name')!r})"
    else:
        report.tool_calling = False
        report.tool_detail = "answered in text without calling the offered tool"
    return report
