"""The Textual terminal app (installed as ``copilot.tui``); the core never imports it."""
