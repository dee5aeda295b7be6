"""Widgets of the terminal app, each with its own CSS."""
