"""Errors in OpenAI's shape, for the ``/v1`` routes: ``{"error": {"message", "type", "param", "code"}}``.

Our :class:`~sdrest.server.errors.ApiError` keeps its meaning; only the answer changes:

- ``type`` is OpenAI's (``invalid_request_error``, ``authentication_error``, ``permission_error``,
  ``not_found_error``, ``rate_limit_error``, ``server_error``), so the official clients raise the right class;
- ``param`` is the request parameter at fault, by the name the OpenAI request used (``n``, not ``batch_count``);
- a refused field (422) or an image in a format we do not read (415) is a 400, as OpenAI answers them (the
  official client raises ``BadRequestError`` for it);
- every error but a full queue, a user's limits (429) and a stopping server (503) carries
  ``x-should-retry: false``: the official client retries 5xx, 409 and 429 on its own (twice by default), and a
  retried failed generation queues the same work again.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from sdrest.server.errors import ApiError

#: our status -> the status an OpenAI client gets
STATUS = {415: 400, 422: 400}
#: the OpenAI error ``type`` of a status (after :data:`STATUS`); 5xx are ``server_error``
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 409: "invalid_request_error", 413: "invalid_request_error",
               421: "invalid_request_error", 429: "rate_limit_error"}
#: a native request field -> the OpenAI parameter it came from, and what to call the field in the message
PARAMS: dict[str, tuple[str, str]] = {
    "batch_count": ("n", ""), "width": ("size", "width "), "height": ("size", "height "),
    "init_image": ("image", ""), "source_image": ("image", ""), "mask_image": ("mask", ""),
    "sampling_method": ("sampler", ""),
}
#: (status, code) of the errors a client may retry as it likes: nothing was queued, and waiting helps
RETRYABLE = {(429, "queue_full"), (429, "too_many_jobs"), (429, "rate_limited"), (503, "unavailable")}
RETRY_HEADER = "x-should-retry"


def error_type(status: int) -> str:
    """OpenAI's error ``type`` for an HTTP status."""
    if status >= 500:
        return "server_error"
    return ERROR_TYPES.get(status, "invalid_request_error")


def openai_param(field: str | None, message: str) -> tuple[str | None, str]:
    """The OpenAI parameter a native ``field`` came from, and ``message`` (which starts with the field's name)
    reworded to name that parameter."""
    if field is None or field not in PARAMS:
        return field, message
    param, called = PARAMS[field]
    prefix = f"{field}: "
    if message.startswith(prefix):
        message = f"{param}: {called}{message[len(prefix):]}"
    return param, message


def may_retry(error: ApiError) -> bool:
    """Whether a client may send the same request again: only when nothing was queued and waiting helps."""
    return (error.status, error.code) in RETRYABLE


def openai_error(error: ApiError) -> JSONResponse:
    """``error`` as OpenAI answers one (an :data:`sdrest.server.errors.ErrorFormat` for ``ApiRoute``)."""
    status = STATUS.get(error.status, error.status)
    param, message = openai_param(error.field, error.message)
    body: dict[str, Any] = {"message": message, "type": error_type(status), "param": param, "code": error.code}
    headers = dict(error.headers or {})
    if not may_retry(error):
        headers[RETRY_HEADER] = "false"
    return JSONResponse({"error": body}, status_code=status, headers=headers)
