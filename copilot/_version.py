"""The package version, in the lowest layer: modules of every layer (the SR writer, the server's
health answer, ``copilot --version``) read it from here rather than from the package root, and
``pyproject.toml`` takes the distribution's version from it."""

__version__ = "0.1.0"
