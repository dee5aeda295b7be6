"""Model strings, provider packages, endpoints and keys, loading, and failures in one line
(the rules are in :mod:`copilot.llm`)."""

from __future__ import annotations

import importlib.util
import ipaddress
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, overload
from urllib.parse import urlparse

from langchain_core.callbacks import BaseCallbackHandler

from copilot.config import Settings, get_settings
from copilot.errors import LLMDeadlineError, LLMError, LLMUnreachableError
from copilot.llm.bounded import BoundedChatModel, call_limits

if TYPE_CHECKING:
    from langchain_core.language_models import LanguageModelInput
    from langchain_core.messages import AIMessage, AIMessageChunk
    from langchain_core.runnables import RunnableConfig

log = logging.getLogger(__name__)

#: Passed as the API key to a local OpenAI-compatible server when OPENAI_API_KEY is unset.
PLACEHOLDER_API_KEY = "sk-local-no-key-needed"
#: Seconds during which requests to a model that just refused a connection fail at once.
UNREACHABLE_COOLDOWN_S = 5.0
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


class Replier(Protocol):
    """A model with tools bound: one reply per call."""

    def invoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AIMessage:
        """One reply to ``input``."""
        ...


class ChatModel(Protocol):
    """The LLM collaborator: what the planner and the composer call on a chat model.

    Any LangChain chat model (``BaseChatModel``) satisfies it; so do
    :class:`BoundedChatModel` and :class:`copilot.testing.FakeChatModel`.
    """

    def bind_tools(self, tools: Sequence[dict[str, Any]], **kwargs: Any) -> Replier:
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
) -> BoundedChatModel: ...
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
) -> BoundedChatModel | None:
    """A LangChain chat model from a model string, with the settings' time limit and retries,
    wrapped in :class:`BoundedChatModel` (the composer's limits; :meth:`~BoundedChatModel.
    with_limits` gives other calls theirs).

    ``None`` is returned as it is; a model instance is wrapped (once). Raises :class:`LLMError`
    (one line) when the spec is bad, the provider package is missing or the model cannot be
    created.
    """
    if spec is None:
        return None
    settings = settings or get_settings()
    if isinstance(spec, BoundedChatModel):
        return spec
    if not isinstance(spec, str):
        return BoundedChatModel(spec, call_limits("compose", settings))
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
    return BoundedChatModel(model, call_limits("compose", settings))


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


def is_refused(exc: BaseException) -> bool:
    """True when ``exc`` (or its cause) is a refused connection: nothing listens there."""
    chain = _chain(exc)
    names = {c.__name__ for e in chain for c in type(e).__mro__}
    return "ConnectionRefusedError" in names or (
        bool(names & _CONNECT_NAMES) and "refused" in " ".join(str(e).lower() for e in chain)
    )


def describe_failure(exc: BaseException, where: str | None, timeout_s: float) -> str:
    """One line saying why a request failed: timeout, refused connection, key, model, other."""
    at = where or "the LLM"
    chain = _chain(exc)
    names = {c.__name__ for e in chain for c in type(e).__mro__}
    status = next((getattr(e, "status_code", None) for e in chain if getattr(e, "status_code", None)), None)
    for e in chain:
        if isinstance(e, (LLMUnreachableError, LLMDeadlineError)):
            return str(e)
    if names & _TIMEOUT_NAMES:
        return f"no answer from {at} within {timeout_s:g}s per read (COPILOT_LLM_TIMEOUT_S)"
    if names & _CONNECT_NAMES:
        return f"cannot reach {at}: {'connection refused' if is_refused(exc) else 'connection failed'}"
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
    """A LangChain callback that fails requests at once while a model refuses connections.

    Attached by :func:`load_llm`. A refused connection marks the model unreachable for
    ``cooldown_s``; meanwhile a new request raises :class:`LLMUnreachableError` before any
    network call. A timeout, a slow or looping reply or a bad one never marks it: the next
    question asks the model again. Any answer clears the mark.
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
        """Mark the model unreachable after a refused connection (and only then)."""
        if is_refused(error) and not isinstance(error, LLMUnreachableError):
            with self._lock:
                self._failed_at = time.monotonic()
                self._reason = "connection refused"
            # info, not warning: the caller reports the failure in its own words, in one line.
            log.info("%s refused the connection; requests skipped for %.0fs", self.name, self.cooldown_s)
