"""The fake Bot API's checks of reply markup and its reading of image sizes, as Telegram does them."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from tests.fakes.telegram_api.images import image_size, thumb_size
from tests.fakes.telegram_api.markup import callback_datas, check_markup
from tests.fakes.telegram_api.protocol import ApiError

_BUTTON = {"text": "Go", "callback_data": "go"}
_BAD_BUTTON = "can't parse inline keyboard button: "


@pytest.mark.parametrize(
    ("markup", "inline_only", "error"),
    [
        ("[]", False, "can't parse reply keyboard markup JSON object"),
        ({"keyboard": [[{"text": "a"}]]}, True, "inline keyboard expected"),
        ({"inline_keyboard": "rows"}, False, 'field "inline_keyboard" of the InlineKeyboardMarkup must be an Array'),
        ({"inline_keyboard": [[_BUTTON] * 10] * 11}, False, "reply markup is too long"),
        ({"inline_keyboard": [["Go"]]}, False, _BAD_BUTTON + "InlineKeyboardButton must be an Object"),
        ({"inline_keyboard": [[{"text": "", "url": "https://x.y"}]]}, False, _BAD_BUTTON + "Text must be non-empty"),
        (
            {"inline_keyboard": [[{"text": "Go"}]]},
            False,
            _BAD_BUTTON + "Text buttons are unallowed in the inline keyboard",
        ),
        ({"inline_keyboard": [[{"text": "Go", "url": "ftp://x.y"}]]}, False, "BUTTON_URL_INVALID"),
        ({"inline_keyboard": [[{"text": "Go", "callback_data": "é" * 33}]]}, False, "BUTTON_DATA_INVALID"),  # 66 bytes
    ],
)
def test_markup_telegram_refuses_answers_400(markup: Any, inline_only: bool, error: str) -> None:
    with pytest.raises(ApiError) as caught:
        check_markup(markup, inline_only=inline_only)
    assert (caught.value.status, caught.value.description) == (400, f"Bad Request: {error}")


def test_markup_telegram_accepts_is_kept() -> None:
    reply_keyboard = {"keyboard": [[{"text": "a"}]]}
    full = {"inline_keyboard": [[_BUTTON] * 10] * 10}
    assert check_markup(None) is None
    assert check_markup(reply_keyboard) == reply_keyboard  # a reply keyboard is fine where not editing
    assert check_markup(full) == full
    assert callback_datas(full) == {"go"}
    assert callback_datas(None) == set()


def _jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x00" * 9
    filler = b"\x00\xff"  # a stray byte and a fill byte before the next marker, both skipped
    sof0 = b"\xff\xc0" + struct.pack(">HBHH", 17, 8, height, width) + b"\x00" * 12
    return b"\xff\xd8" + app0 + filler + sof0


@pytest.mark.parametrize(
    ("data", "size"),
    [
        (b"GIF89a" + struct.pack("<HH", 7, 9), (7, 9)),
        (b"BM" + b"\x00" * 16 + struct.pack("<ii", 40, -30), (40, 30)),  # a top-down BMP has a negative height
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", (512, 512)),
        (_jpeg(640, 480), (640, 480)),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 20, (800, 600)),  # a JPEG whose frame header is not found
        (b"not an image", None),
    ],
)
def test_image_size_reads_the_header(data: bytes, size: tuple[int, int] | None) -> None:
    assert image_size(data) == size


def test_thumbnail_fits_90_pixels() -> None:
    assert thumb_size(640, 480) == (90, 68)
    assert thumb_size(1, 4000) == (1, 90)
