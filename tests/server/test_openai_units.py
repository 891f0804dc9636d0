"""The OpenAI dialect's pieces without a server: error shapes and the retry policy, parameter names, sizes, model
names, masks and output formats."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from sdrest.server.errors import ApiError
from sdrest.server.openai_errors import RETRY_HEADER, openai_error
from sdrest.server.openai_images import auto_size, encode_output, redraw_mask
from sdrest.server.openai_request import parse_size, resolve_model


def answer(error: ApiError) -> tuple[int, dict, dict[str, str]]:
    response = openai_error(error)
    return response.status_code, json.loads(response.body)["error"], dict(response.headers)


@pytest.mark.parametrize(("status", "code", "expected_status", "expected_type", "retry"), [
    (422, "invalid", 400, "invalid_request_error", False),
    (415, "unsupported_media_type", 400, "invalid_request_error", False),
    (401, "unauthorized", 401, "authentication_error", False),
    (403, "forbidden", 403, "permission_error", False),
    (404, "model_not_found", 404, "not_found_error", False),
    (409, "job_cancelled", 409, "invalid_request_error", False),
    (429, "queue_full", 429, "rate_limit_error", True),
    (429, "too_many_jobs", 429, "rate_limit_error", True),
    (429, "too_many_attempts", 429, "rate_limit_error", False),  # failed logins: the same key fails again
    (500, "job_failed", 500, "server_error", False),
    (503, "unavailable", 503, "server_error", True),  # the server is stopping
    (503, "no_admin", 503, "server_error", False),
])
def test_statuses_types_and_the_retry_header(status: int, code: str, expected_status: int, expected_type: str,
                                             retry: bool) -> None:
    got_status, body, headers = answer(ApiError(status, "no", code=code, headers={"Retry-After": "3"}))
    assert (got_status, body["type"], body["code"]) == (expected_status, expected_type, code)
    assert set(body) == {"message", "type", "param", "code"}
    assert headers["retry-after"] == "3"
    assert (RETRY_HEADER not in headers) if retry else headers[RETRY_HEADER] == "false"


@pytest.mark.parametrize(("field", "message", "param", "reworded"), [
    ("batch_count", "batch_count: must be between 1 and 16, got 20", "n", "n: must be between 1 and 16, got 20"),
    ("width", "width: must be a multiple of 8, got 100", "size", "size: width must be a multiple of 8, got 100"),
    ("init_image", "init_image: not valid base64", "image", "image: not valid base64"),
    ("mask_image", "mask_image: size (8, 8) differs", "mask", "mask: size (8, 8) differs"),
    ("steps", "steps: must be between 1 and 500, got 0", "steps", "steps: must be between 1 and 500, got 0"),
    (None, "authentication required", None, "authentication required"),
])
def test_native_fields_are_named_as_the_openai_request_named_them(field: str | None, message: str,
                                                                  param: str | None, reworded: str) -> None:
    _, body, _ = answer(ApiError(422, message, field=field))
    assert (body["param"], body["message"]) == (param, reworded)


@pytest.mark.parametrize(("value", "expected"), [(None, None), ("auto", None), ("512x768", (512, 768))])
def test_sizes(value: object, expected: tuple[int, int] | None) -> None:
    assert parse_size(value) == expected


@pytest.mark.parametrize("value", ["512", "512x", "x512", "512X512", " 512x512", "1234567x8", 512, ["512x512"]])
def test_bad_sizes_are_400_naming_size(value: object) -> None:
    with pytest.raises(ApiError) as caught:
        parse_size(value)
    assert caught.value.status == 400 and caught.value.field == "size"


def test_openai_model_names_fall_back_to_the_default_unless_we_have_one_so_named() -> None:
    ours = {"sd1": "checkpoints/sd1", "dall-e-3": "checkpoints/dall-e-3"}
    asked: list[str] = []

    def find(ref: str) -> str:
        asked.append(ref)
        if ref == "gpt-image-1.5":
            raise KeyError("'gpt-image-1.5' is ambiguous: a/gpt-image-1.5, b/gpt-image-1.5")
        if ref not in ours:
            raise KeyError(f"no model named {ref!r}")
        return ours[ref]

    assert resolve_model("dall-e-3", find) == "dall-e-3"  # a model of ours by that name wins
    assert resolve_model("dall-e-2", find) is None
    assert resolve_model("gpt-image-1", find) is None
    assert resolve_model("chatgpt-image-latest", find) is None
    assert resolve_model("gpt-image-1.5", find) == "gpt-image-1.5"  # for the parser to say it is ambiguous
    assert asked == ["dall-e-3", "dall-e-2", "gpt-image-1", "chatgpt-image-latest", "gpt-image-1.5"]
    assert resolve_model("sd1", find) == "sd1" and resolve_model("no-such-model", find) == "no-such-model"
    assert len(asked) == 5  # other names are the parser's to resolve
    assert resolve_model(None, find) is None and resolve_model("", find) is None


def test_transparent_means_redraw_and_partial_stays_partial() -> None:
    alpha = Image.new("L", (3, 1))
    alpha.putdata([0, 128, 255])
    mask = redraw_mask(alpha)
    assert [mask.getpixel((x, 0)) for x in range(3)] == [255, 127, 0]


def test_auto_size_rounds_down_to_multiples_of_8() -> None:
    assert auto_size(Image.new("RGB", (1023, 770))) == (1016, 768)


def test_png_stays_as_it_is_and_jpeg_is_reencoded() -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (16, 16), (1, 2, 3, 4)).save(buffer, format="PNG")
    data = buffer.getvalue()
    assert encode_output(data, "png", 10) is data
    jpeg = Image.open(io.BytesIO(encode_output(data, "jpeg", 80)))
    assert jpeg.format == "JPEG" and jpeg.mode == "RGB" and jpeg.size == (16, 16)
