"""Clients of a ``copilot serve`` server: its tools run there, the conversation stays here."""
