"""``copilot eval``: question suites run through the real agent, scored, with controls.

- :mod:`~copilot.eval.suite`: the suite formats (multiple choice, yes/no, side, open, routing).
- :mod:`~copilot.eval.probes`: paired probes built from labelled chest X-rays (NIH ChestX-ray14).
- :mod:`~copilot.eval.predict`: what an answer says, read from its tools' typed findings.
- :mod:`~copilot.eval.controls`: the blank-image control (does the answer depend on the image?).
- :mod:`~copilot.eval.runner`: one fresh thread per case, every answer kept, resumable.
- :mod:`~copilot.eval.scorecard`: counts per category, pair scoring, Wilson intervals.

``docs/eval.md`` documents the formats and the scoring rules.
"""
