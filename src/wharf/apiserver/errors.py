"""Kubernetes `Status` errors."""

from __future__ import annotations

from typing import Any

from aiohttp import web

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "AlreadyExists",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
}


class ApiError(Exception):
    def __init__(
        self,
        code: int,
        message: str,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details = details
        self.list_meta: dict[str, Any] = {}  # the Status's own metadata (a 410's continue)

    def status(self) -> dict[str, Any]:
        body = status_object("Failure", self.code, self.message, self.reason, self.details)
        body["metadata"] = self.list_meta
        return body

    def response(self) -> web.Response:
        return web.json_response(self.status(), status=self.code)


def status_object(
    status: str,
    code: int,
    message: str = "",
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": status,
        "code": code,
    }
    if message:
        body["message"] = message
    if reason:
        body["reason"] = reason
    if details:
        body["details"] = details
    return body


def _qualified(group: str, resource: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(group: str, resource: str, name: str) -> ApiError:
    return ApiError(
        404,
        f'{_qualified(group, resource)} "{name}" not found',
        "NotFound",
        {"name": name, "group": group, "kind": resource},
    )


def already_exists(group: str, resource: str, name: str) -> ApiError:
    return ApiError(
        409,
        f'{_qualified(group, resource)} "{name}" already exists',
        "AlreadyExists",
        {"name": name, "group": group, "kind": resource},
    )


def conflict(group: str, resource: str, name: str) -> ApiError:
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {_qualified(group, resource)} "{name}": the object '
        "has been modified; please apply your changes to the latest version and try again",
        "Conflict",
        {"name": name, "group": group, "kind": resource},
    )


def forbidden(
    user: str, verb: str, group: str, resource: str, namespace: str, name: str = ""
) -> ApiError:
    what = f'{_qualified(group, resource)} "{name}"' if name else _qualified(group, resource)
    scope = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    return ApiError(
        403,
        f'{what} is forbidden: User "{user}" cannot {verb} resource "{resource}" in API group '
        f'"{group}"{scope}',
        "Forbidden",
        {"name": name, "group": group, "kind": resource},
    )


def invalid(kind: str, group: str, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """422 Invalid; `causes` are (field, message) pairs."""
    text = "; ".join(f"{field}: {message}" for field, message in causes)
    return ApiError(
        422,
        f'{_qualified(group, kind)} "{name}" is invalid: {text}',
        "Invalid",
        {
            "name": name,
            "group": group,
            "kind": kind,
            "causes": [
                {"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes
            ],
        },
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, message, "BadRequest")


UNAUTHORIZED = ApiError(401, "Unauthorized", "Unauthorized")
