"""A scripted chat model for tests: emits given messages (tool calls included) and records
every prompt it received, so tests can assert what would have left the machine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from pydantic import Field


class FakeChatModel(GenericFakeChatModel):
    """LangChain's GenericFakeChatModel, plus ``bind_tools`` (the original raises) and a log
    of received messages in ``received``."""

    received: list[list[BaseMessage]] = Field(default_factory=list)
    bound_tools: list[Any] = Field(default_factory=list)

    @classmethod
    def scripted(cls, replies: Sequence[AIMessage | str]) -> FakeChatModel:
        """A model answering with ``replies`` in order."""
        messages = [r if isinstance(r, AIMessage) else AIMessage(content=r) for r in replies]
        return cls(messages=iter(messages))

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> FakeChatModel:
        """Accept tool schemas (recorded) and return self, as a real chat model would bind."""
        self.bound_tools = list(tools)
        return self

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        self.received.append(list(messages))
        return super()._generate(messages, *args, **kwargs)

    def all_text_received(self) -> str:
        """Everything the model was sent, as one string."""
        return "\n".join(str(m.content) for batch in self.received for m in batch)
