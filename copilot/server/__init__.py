"""``copilot serve``: warm expert tools for many clinicians on one GPU server (Ray Serve).

Needs the ``ray`` extra; nothing here is imported by the in-process paths.
"""
