"""Bot API requests and error answers on the wire: form, JSON and multipart bodies decoded as PTB encodes them."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse

from tests.fakes.telegram_api.protocol import ApiError, Upload, bad

# How PTB (and Telegram) type the parameters: everything not listed is a plain string.
_JSON_FIELDS = frozenset(
    [
        "reply_markup",
        "reply_parameters",
        "entities",
        "caption_entities",
        "allowed_updates",
        "commands",
        "scope",
        "link_preview_options",
        "menu_button",
    ]
)
_INT_FIELDS = frozenset(
    [
        "chat_id",
        "message_id",
        "offset",
        "limit",
        "reply_to_message_id",
        "cache_time",
        "max_connections",
        "user_id",
        "message_thread_id",
    ]
)
_NUMBER_FIELDS = frozenset({"timeout"})
_BOOL_FIELDS = frozenset(
    [
        "show_alert",
        "drop_pending_updates",
        "disable_notification",
        "disable_web_page_preview",
        "protect_content",
        "allow_sending_without_reply",
        "has_spoiler",
        "show_caption_above_media",
    ]
)


async def decode_request(request: Request) -> tuple[dict[str, Any], dict[str, Upload]]:
    """The parameters (typed as PTB means them) and uploaded files of a request; 400 for a body it cannot parse."""
    raw: dict[str, Any] = dict(request.query_params)
    files: dict[str, Upload] = {}
    body = await request.body()
    ctype = request.headers.get("content-type", "")
    kind = ctype.split(";", 1)[0].strip().lower()
    if body:
        if kind == "application/json":
            try:
                data = json.loads(body)
            except json.JSONDecodeError as exc:
                raise bad("can't parse JSON encoded request") from exc
            if not isinstance(data, dict):
                raise bad("request body must be a JSON object")
            raw.update(data)
        elif kind == "multipart/form-data":
            fields, files = _parse_multipart(body, ctype)
            raw.update(fields)
        else:
            raw.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    params = {name: _coerce(name, value) for name, value in raw.items()}
    for name, upload in files.items():
        params.setdefault(name, {"file_name": upload.filename, "size": len(upload.data)})
    return params, files


def _coerce(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if name in _JSON_FIELDS:
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            what = "reply keyboard markup" if name == "reply_markup" else name
            raise bad(f"can't parse {what} JSON object") from exc
    if name in _INT_FIELDS:
        try:
            return int(value)
        except ValueError:
            return value
    if name in _NUMBER_FIELDS:
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() else number
    if name in _BOOL_FIELDS:
        return value.strip().lower() in {"true", "1"}
    return value


def _parse_multipart(body: bytes, content_type: str) -> tuple[dict[str, str], dict[str, Upload]]:
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        raise bad("multipart request without boundary")
    delimiter = b"\r\n--" + match.group(1).encode()
    fields: dict[str, str] = {}
    files: dict[str, Upload] = {}
    for chunk in (b"\r\n" + body).split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, content = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            continue
        headers = head.decode("utf-8", "replace")
        disposition = next((h for h in headers.split("\r\n") if h.lower().startswith("content-disposition")), "")
        name_m = re.search(r'(?<![a-z])name="([^"]*)"', disposition, flags=re.IGNORECASE)
        file_m = re.search(r'filename="([^"]*)"', disposition, flags=re.IGNORECASE)
        if name_m is None:
            continue
        if file_m is not None:
            files[name_m.group(1)] = Upload(name_m.group(1), file_m.group(1), content)
        else:
            fields[name_m.group(1)] = content.decode("utf-8", "replace")
    return fields, files


def int_param(value: Any, name: str) -> int:
    """An integer parameter; 400 naming it when it is not one."""
    if isinstance(value, bool):
        raise bad(f"wrong parameter {name} in request")
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError as exc:
        raise bad(f"wrong parameter {name} in request") from exc


def number_param(value: Any, name: str) -> float:
    """A numeric parameter; 400 naming it when it is not one."""
    if isinstance(value, bool):
        raise bad(f"wrong parameter {name} in request")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise bad(f"wrong parameter {name} in request") from exc


def error_response(error: ApiError) -> JSONResponse:
    """Telegram's error envelope for an ApiError."""
    body: dict[str, Any] = {"ok": False, "error_code": error.status, "description": error.description}
    if error.retry_after is not None:
        body["parameters"] = {"retry_after": error.retry_after}
    return JSONResponse(body, status_code=error.status)
