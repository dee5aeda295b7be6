"""What plug-in authors test their tools with; shipped with the package, documented in
docs/plugins.md and docs/llm.md.

- :func:`check_tool` / :class:`ContractReport` (``copilot.testing.contract``): the tool contract
  (complete manifest, cheap constructor, availability with a reason and fix, result shape,
  ``run_batch`` equal to ``run``), checked on a tool class.
- :func:`make_dicom` (``copilot.testing.dicom``): a small valid DICOM file with the header
  fields a test names.
- ``copilot.testing.chat.FakeChatModel``: a scripted LangChain chat model (tool calls
  included) for planner tests; needs langchain-core, so it is imported from its module.
- ``copilot.testing.openai_server.FakeOpenAIServer``: a loopback OpenAI-compatible server
  (standard library only) for tests of ``--llm openai:...``.

Fixtures only this project's suite and ``bench/`` use (phantoms, tiny MONAI bundles,
real-format checkpoints, a fake model hub, an Orthanc launcher, a ``copilot serve`` launcher)
live in ``tests/support/``, outside the installed package.
"""

from copilot.testing.contract import ContractReport, check_tool
from copilot.testing.dicom import make_dicom

__all__ = ["ContractReport", "check_tool", "make_dicom"]
