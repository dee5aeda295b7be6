"""The planner graph (installed as ``copilot.agents``)."""
