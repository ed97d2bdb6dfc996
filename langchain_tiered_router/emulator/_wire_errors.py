"""Bedrock-shaped error replies, as the service sends them.

An HTTP error from Bedrock Runtime is a status code, an ``x-amzn-ErrorType`` header
naming the exception and a JSON body ``{"message": ...}``; botocore reads the code
from the header. Inside an event stream the same errors travel as ``exception``
frames whose ``:exception-type`` is the camelCase member name of the stream union.
The status codes below are those of botocore's service model for bedrock-runtime.
"""

from __future__ import annotations

__all__ = ["WireError", "STATUS_BY_CODE", "STREAM_EXCEPTIONS", "stream_member_name"]

# From botocore/data/bedrock-runtime/2023-09-30/service-2.json ("error": httpStatusCode).
STATUS_BY_CODE: dict[str, int] = {
    "AccessDeniedException": 403,
    "InternalServerException": 500,
    "ModelErrorException": 424,
    "ModelNotReadyException": 429,
    "ModelStreamErrorException": 424,
    "ModelTimeoutException": 408,
    "ResourceNotFoundException": 404,
    "ServiceQuotaExceededException": 400,
    "ServiceUnavailableException": 503,
    "ThrottlingException": 429,
    "ValidationException": 400,
    "UnknownOperationException": 404,
}

# The exception members of each stream's union (ConverseStreamOutput, ResponseStream) in the
# same service model: botocore reads any other ``:exception-type`` with an empty error code.
STREAM_EXCEPTIONS: dict[str, tuple[str, ...]] = {
    "ConverseStream": ("internalServerException", "modelStreamErrorException", "validationException",
                       "throttlingException", "serviceUnavailableException"),
    "InvokeModelWithResponseStream": ("internalServerException", "modelStreamErrorException",
                                      "validationException", "throttlingException", "modelTimeoutException",
                                      "serviceUnavailableException"),
}


class WireError(Exception):
    """An error the emulator answers with instead of a result.

    Raised inside the request pipeline and turned into an HTTP reply at the edge,
    so any step can refuse a request the way Bedrock would.
    """

    def __init__(self, code: str, message: str, *, status: int | None = None,
                 headers: dict[str, str] | None = None):
        self.code = code
        self.message = message
        self.headers = dict(headers or {})  # e.g. Retry-After on a throttle
        self.status = status if status is not None else STATUS_BY_CODE.get(code, 400)
        super().__init__(f"{code} ({self.status}): {message}")

    @classmethod
    def validation(cls, message: str) -> "WireError":
        return cls("ValidationException", message)


def stream_member_name(code: str) -> str:
    """``ThrottlingException`` -> ``throttlingException``, the event-stream member name."""
    return code[:1].lower() + code[1:]
