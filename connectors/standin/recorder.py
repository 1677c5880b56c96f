"""What a stand-in remembers of its callers, and the faults a test asks it to answer with.

Each stand-in keeps one `Recorder`: every API call it received, in order (method, path, the
status it answered, when, the request body), and a list of armed faults. A fault answers the
next ``count`` API calls whose path contains ``path_contains`` (and whose method matches, if
one is given) with its status and body instead of the real answer: how a test makes the
client meet a 503, a 429 with ``Retry-After``, or a 422 it did not provoke.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


@dataclass(frozen=True)
class CallRecord:
    """One API call as the stand-in answered it."""

    method: str
    path: str
    query: str
    status: int
    time: float
    body: Any

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "time": self.time,
            "body": self.body,
        }


class FaultSpec(BaseModel):
    """A fault as the control API takes it (``POST /_standin/<api>/faults``)."""

    model_config = ConfigDict(extra="forbid")

    status: int = Field(ge=400, le=599)
    count: int = Field(default=1, ge=1)
    path_contains: str = ""
    method: str | None = None
    retry_after: float | None = Field(default=None, ge=0)
    body: Any = None


@dataclass
class Fault:
    """An armed fault and how many more calls it answers."""

    spec: FaultSpec
    remaining: int

    def matches(self, method: str, path: str) -> bool:
        if self.spec.method is not None and self.spec.method.upper() != method.upper():
            return False
        return self.spec.path_contains in path


@dataclass
class Recorder:
    """Calls received and faults armed, for one stand-in."""

    calls: list[CallRecord] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    def record(self, call: CallRecord) -> None:
        self.calls.append(call)

    def arm(self, spec: FaultSpec) -> None:
        self.faults.append(Fault(spec, spec.count))

    def take_fault(self, method: str, path: str) -> FaultSpec | None:
        """The first armed fault matching this call, spending one of its answers."""
        for fault in self.faults:
            if fault.matches(method, path):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self.faults.remove(fault)
                return fault.spec
        return None

    def clear(self) -> None:
        self.calls.clear()
        self.faults.clear()

    def calls_json(self) -> list[dict[str, Any]]:
        return [call.as_json() for call in self.calls]

    def faults_json(self) -> list[dict[str, Any]]:
        return [{**f.spec.model_dump(), "remaining": f.remaining} for f in self.faults]


def parse_body(raw: bytes, loads: Callable[[bytes], Any]) -> Any:
    """The request body for the call log: parsed JSON, the text when it is not JSON, or
    ``None`` when empty."""
    if not raw:
        return None
    try:
        return loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")
