"""Text utilities: the rule-based report labeler and PHI redaction."""

from copilot.text.labeler import find_mentions, findings_in_question, label_text

__all__ = ["find_mentions", "findings_in_question", "label_text"]
