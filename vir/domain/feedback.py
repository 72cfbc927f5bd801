"""What Veilig Thuis may tell the reporters a consultation found: a fixed set of codes.

After consulting the index, Veilig Thuis tells the reporters it found what it did with
the case, as the law expects it to inform the professionals involved (Wmo 2015 art.
4.1.1; the *terugkoppeling* of the Meldcode). The message is a code, never text: the
index holds no case content, so the codes say only where Veilig Thuis's involvement
stands, not what it found. Each code is given at most once per consultation, and
nothing after ``closed``.
"""

from __future__ import annotations

import enum
from typing import Final

# How long after a consultation Veilig Thuis may give feedback on it (days): the five
# working days of triage plus the ten weeks an investigation may take (Wmo 2015 art.
# 4.1.1; Besluit Wmo 2015 art. 4.2), with a week to spare.
FEEDBACK_DAYS: Final = 91


class FeedbackCode(enum.StrEnum):
    """Where Veilig Thuis's involvement stands, as the reporters are told."""

    TAKEN_UP = "taken_up"  # a safety assessment or investigation started
    HANDED_OVER = "handed_over"  # handed to the local care (wijkteam, jeugdhulp)
    CLOSED = "closed"  # Veilig Thuis's involvement ended

    @property
    def label(self) -> str:
        """The Dutch label a professional reads."""
        return LABELS[self]


LABELS: Final[dict[FeedbackCode, str]] = {
    FeedbackCode.TAKEN_UP: "Veilig Thuis heeft de zaak in behandeling genomen",
    FeedbackCode.HANDED_OVER: "Veilig Thuis heeft de zaak overgedragen aan het lokale veld",
    FeedbackCode.CLOSED: "Veilig Thuis heeft zijn betrokkenheid beëindigd",
}


def refusal(given: frozenset[FeedbackCode], code: FeedbackCode) -> str | None:
    """Why ``code`` may not follow the codes ``given`` on one consultation; None when it
    may. A repeat tells the reporters nothing new, and after ``closed`` there is
    nothing left to tell: both are refused, so feedback cannot be used to flood them."""
    if FeedbackCode.CLOSED in given:
        return "Veilig Thuis closed its involvement in this consultation already"
    if code in given:
        return "this feedback was given on this consultation already"
    return None
