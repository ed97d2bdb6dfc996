"""Bedrock clients that check a call's parameters only when they cannot be sent.

botocore checks every call's parameters against the service model before it
serialises them: about 50 µs of CPU per Converse call (5 % of the whole call on a
local server), work that Bedrock does again on its side. With ``transport.validate_params``
off (the default) the router's clients skip it. A malformed parameter then comes back
as Bedrock's ``ValidationException``, which the router reports as a typed, not
escalated, error; one that botocore cannot even serialise (an unknown key in a nested
structure, a wrong type) is checked at that moment, so the caller still gets botocore's
clear ``ParamValidationError`` naming it, not a bare ``KeyError`` from the serialiser.
"""

from __future__ import annotations

from typing import Any

__all__ = ["check_params_on_failure"]


class _CheckOnFailure:
    """botocore's serialiser, with its parameter check run only after it failed."""

    def __init__(self, serializer: Any):
        from botocore.validate import ParamValidator

        self._serializer = serializer
        self._validator = ParamValidator()

    def serialize_to_request(self, parameters: Any, operation_model: Any) -> Any:
        try:
            return self._serializer.serialize_to_request(parameters, operation_model)
        except Exception:
            shape = operation_model.input_shape
            if shape is not None:
                report = self._validator.validate(parameters, shape)
                if report.has_errors():
                    from botocore.exceptions import ParamValidationError

                    raise ParamValidationError(report=report.generate_report()) from None
            raise


def check_params_on_failure(client: Any) -> bool:
    """Give a client made with ``parameter_validation=False`` the check back for calls
    its serialiser rejects. False (and the client unchanged) when this botocore keeps
    its serialiser elsewhere: the caller then turns validation back on."""
    serializer = getattr(client, "_serializer", None)  # botocore.client.BaseClient's since 1.0
    if serializer is None or not callable(getattr(serializer, "serialize_to_request", None)):
        return False
    client._serializer = _CheckOnFailure(serializer)
    return True
