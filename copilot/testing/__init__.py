"""Helpers for plug-in authors and tests: contract check, synthetic DICOM, fake chat model.

``FakeChatModel`` needs langchain-core and is imported from ``copilot.testing.chat``.
"""

from copilot.testing.contract import ContractReport, check_tool
from copilot.testing.dicom import make_dicom

__all__ = ["ContractReport", "check_tool", "make_dicom"]
