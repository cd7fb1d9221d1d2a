"""What the fakes of SendGrid, Mailgun and Twilio share: the faults a test can order."""

from dataclasses import dataclass, field


@dataclass
class Faults:
    """Statuses the next calls answer with, in order, before the fake works again."""

    queued: list[int] = field(default_factory=list)
    calls: int = 0  # every authenticated call, answered or failed

    def fail_next(self, status: int, times: int = 1, *, after: int = 0) -> None:
        """The ``times`` calls after the next ``after`` answer ``status``."""
        self.queued.extend([0] * after + [status] * times)

    def next(self) -> int | None:
        self.calls += 1
        return (self.queued.pop(0) or None) if self.queued else None
