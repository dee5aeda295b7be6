"""Chat models for planning and composing: spec parsing, provider checks, time limits.

    spec = parse_spec("ollama:medgemma")        # LLMSpec(provider="ollama", model="medgemma")
    llm = load_llm("openai:qwen2.5", settings)   # a LangChain chat model, or LLMError
    report = check_llm("openai:qwen2.5", settings)  # does it answer? does it call tools?
    calls = read_tool_calls(reply)               # native calls, or calls written as text

Modules: :mod:`~copilot.llm.models` (specs, providers, loading, failures),
:mod:`~copilot.llm.bounded` (deadlines and reply lengths per call),
:mod:`~copilot.llm.tool_calls` (tool calls in every shape models write them),
:mod:`~copilot.llm.check` (``copilot llm check``).

Rules:

- A spec is ``provider:model`` (LangChain's model strings); ``gpt-*``/``o1``/``o3`` and
  ``claude*`` may omit the provider. Provider packages are optional: a missing one is an
  :class:`LLMError` naming the extra to install (``pip install 'dicom-copilot[openai]'``).
- ``openai:`` reaches any OpenAI-compatible server through ``OPENAI_BASE_URL`` (or
  ``OPENAI_API_BASE``). A local server (loopback, private network, single-label host) needs no
  key: a placeholder is passed when ``OPENAI_API_KEY`` is unset. ``ollama:`` uses ``OLLAMA_HOST``.
- Every call has a total deadline and a bounded reply (:class:`CallLimits`, from the settings:
  ``llm_plan_deadline_s``/``llm_review_deadline_s``/``llm_compose_deadline_s`` and
  ``llm_plan_max_tokens``/``llm_compose_max_tokens``): :class:`BoundedChatModel` runs each call
  in a worker thread and gives up at the deadline however slowly the reply trickles in (a
  streamed reply's connection is closed at the next chunk). ``llm_timeout_s`` is the time limit
  of each read, ``llm_max_retries`` the retries within the deadline.
- A refused connection marks the model unreachable for :data:`UNREACHABLE_COOLDOWN_S` (a few
  seconds: a dead server costs one refusal per question, not one per planner and composer
  call). A slow, looping or unparseable reply never does: the next question asks the model again.
- Tool calls are read as models write them (:func:`read_tool_calls`): native ``tool_calls``, or
  text holding a JSON object or list, a fenced ```` ```json ```` block or Qwen's
  ``<tool_call>...</tool_call>``; a call whose arguments are not a JSON object is dropped with
  a note.
- Failures are described in one line (:func:`describe_failure`), never a traceback.
- The copilot needs of a model only what :class:`ChatModel` names (tool binding, one reply,
  a stream of tokens): every LangChain chat model is one, and so is a test double.
  :func:`load_llm` wraps every model, a given instance included, in :class:`BoundedChatModel`.
"""

from copilot.llm.bounded import BoundedChatModel, CallKind, CallLimits, call_limits, with_max_tokens
from copilot.llm.check import LLMCheck, check_llm
from copilot.llm.models import (
    PLACEHOLDER_API_KEY,
    PROVIDERS,
    UNREACHABLE_COOLDOWN_S,
    ChatModel,
    LLMSpec,
    ReachabilityGuard,
    Replier,
    describe_failure,
    endpoint,
    install_hint,
    is_local_url,
    is_refused,
    is_unreachable,
    load_llm,
    parse_spec,
    require_provider,
)
from copilot.llm.tool_calls import ReadCalls, ToolCall, known_name, read_tool_calls

__all__ = [
    "PLACEHOLDER_API_KEY",
    "PROVIDERS",
    "UNREACHABLE_COOLDOWN_S",
    "BoundedChatModel",
    "CallKind",
    "CallLimits",
    "ChatModel",
    "LLMCheck",
    "LLMSpec",
    "ReachabilityGuard",
    "ReadCalls",
    "Replier",
    "ToolCall",
    "call_limits",
    "check_llm",
    "describe_failure",
    "endpoint",
    "install_hint",
    "is_local_url",
    "is_refused",
    "is_unreachable",
    "known_name",
    "load_llm",
    "parse_spec",
    "read_tool_calls",
    "require_provider",
    "with_max_tokens",
]
