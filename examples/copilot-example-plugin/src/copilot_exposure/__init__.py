"""Example copilot plug-in: a radiograph exposure and contrast check."""
