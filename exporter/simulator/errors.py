"""The one error type a simulated API function raises: it becomes a "failed" envelope."""

from __future__ import annotations


class ApiError(Exception):
    """A functional failure: HTTP 200, ``statusCode: "failed"``, ``error: {message, details}``."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_json(self) -> dict[str, str]:
        return {"message": self.message, "details": self.details}
