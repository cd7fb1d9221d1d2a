"""A local stand-in for Cloudinary's Upload API and its delivery URLs, after Cloudinary's
documentation of them.

- ``POST /v1_1/{cloud_name}/image/upload`` and ``.../image/destroy``, form fields (multipart or
  URL-encoded) with ``api_key``, ``timestamp`` and ``signature``: the SHA-1 hex of every other
  parameter but ``file``, ``cloud_name``, ``resource_type`` and ``api_key``, sorted by name,
  joined as ``name=value`` with ``&``, the API secret appended. The signature is computed here
  again from what arrived, with the account's secret; a wrong one, an unknown key, or a
  timestamp over an hour away is a 401 with Cloudinary's ``{"error": {"message": ...}}``. A
  missing parameter is a 400 of the same shape; an unknown cloud a 404.
- ``upload`` takes ``file`` (the bytes, or a ``data:`` URI), ``public_id`` (else one is made)
  and ``overwrite``; it answers the asset (``public_id``, ``version``, ``format``, ``width``,
  ``height``, ``bytes``, ``secure_url``, ...). What is not an image is a 400.
- ``destroy`` takes ``public_id``: ``{"result": "ok"}``, or ``{"result": "not found"}``.
- ``GET /{cloud_name}/image/upload/[transformation/][v<version>/]<public_id>.<format>`` serves
  the asset, transformed on the way for ``c_limit``, ``c_fill`` and ``c_scale`` with ``w_``
  and ``h_``; a 404 for an unknown one.

``faults.fail_next(500)`` makes the next authenticated call answer that status;
``stall_next(seconds)`` makes it wait that long first.
"""

import asyncio
import base64
import binascii
import hashlib
import hmac
import io
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from PIL import Image, ImageOps, UnidentifiedImageError
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.messaging import Faults

CLOUD_NAME = "roost-test"
API_KEY = "614335564976464"
API_SECRET = "roost-test-secret-not-a-real-one"
STALE_AFTER_SECONDS = 3600

_UNSIGNED = frozenset({"file", "cloud_name", "resource_type", "api_key", "signature"})
_CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message}}, status_code=status)


@dataclass
class Asset:
    public_id: str
    data: bytes
    format: str
    width: int
    height: int
    version: int


@dataclass
class FakeCloudinary:
    cloud_name: str = CLOUD_NAME
    api_key: str = API_KEY
    api_secret: str = API_SECRET
    faults: Faults = field(default_factory=Faults)
    assets: dict[str, Asset] = field(default_factory=dict)
    stalls: list[float] = field(default_factory=list)
    base_url: str = ""  # where the test serves it, for the asset URLs it answers

    def stall_next(self, seconds: float) -> None:
        self.stalls.append(seconds)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1_1/{cloud}/image/upload", self.upload, methods=["POST"]),
                Route("/v1_1/{cloud}/image/destroy", self.destroy, methods=["POST"]),
                Route("/{cloud}/image/upload/{path:path}", self.deliver, methods=["GET"]),
            ]
        )

    def string_to_sign(self, params: dict[str, str]) -> str:
        return "&".join(
            f"{name}={value}"
            for name, value in sorted(params.items())
            if name not in _UNSIGNED and value != ""
        )

    async def _signed_form(
        self, request: Request
    ) -> tuple[dict[str, str], UploadFile | None] | Response:
        """The form's fields once its signature holds, or the refusal Cloudinary would send."""
        if request.path_params["cloud"] != self.cloud_name:
            return _error(404, f"Invalid cloud_name {request.path_params['cloud']}")
        form = await request.form(max_part_size=20 * 1024 * 1024)
        upload: UploadFile | None = None
        params: dict[str, str] = {}
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                upload = value
            else:
                params[name] = value
        for required in ("api_key", "timestamp", "signature"):
            if not params.get(required):
                return _error(400, f"Missing required parameter - {required}")
        if params["api_key"] != self.api_key:
            return _error(401, f"Invalid api_key {params['api_key']}")
        try:
            timestamp = int(params["timestamp"])
        except ValueError:
            return _error(400, "Invalid timestamp")
        now = int(time.time())
        if abs(now - timestamp) > STALE_AFTER_SECONDS:
            return _error(
                401,
                f"Stale request - reported time is {timestamp} which is more than 1 hour "
                f"ago; current time is {now}",
            )
        to_sign = self.string_to_sign(params)
        expected = hashlib.sha1((to_sign + self.api_secret).encode()).hexdigest()  # noqa: S324
        if not hmac.compare_digest(expected, params["signature"]):
            return _error(
                401, f"Invalid Signature {params['signature']}. String to sign - '{to_sign}'."
            )
        fault = self.faults.next()
        if self.stalls:
            await asyncio.sleep(self.stalls.pop(0))
        if fault is not None:
            return _error(fault, "fault ordered by the test")
        return params, upload

    async def upload(self, request: Request) -> Response:
        checked = await self._signed_form(request)
        if isinstance(checked, Response):
            return checked
        params, file = checked
        if file is not None:
            data = await file.read()
        elif params.get("file", "").startswith("data:"):
            try:
                data = base64.b64decode(params["file"].split(",", 1)[1], validate=True)
            except (IndexError, binascii.Error):
                return _error(400, "Invalid image file")
        else:
            return _error(400, "Missing required parameter - file")
        public_id = params.get("public_id") or secrets.token_hex(10)
        existing = self.assets.get(public_id)
        if existing is not None and params.get("overwrite") == "false":
            return JSONResponse({**self._described(existing), "existing": True})
        try:
            with Image.open(io.BytesIO(data)) as image:
                image_format = _FORMATS.get(image.format or "")
                width, height = image.size
        except (UnidentifiedImageError, OSError):
            image_format = None
        if image_format is None:
            return _error(400, "Invalid image file")
        asset = Asset(public_id, data, image_format, width, height, version=int(time.time()))
        self.assets[public_id] = asset
        return JSONResponse(self._described(asset))

    def _described(self, asset: Asset) -> dict[str, object]:
        url = f"{self.base_url}/{self.cloud_name}/image/upload/v{asset.version}/"
        return {
            "asset_id": hashlib.md5(asset.public_id.encode()).hexdigest(),  # noqa: S324
            "public_id": asset.public_id,
            "version": asset.version,
            "signature": hashlib.sha1(  # noqa: S324
                f"public_id={asset.public_id}&version={asset.version}{self.api_secret}".encode()
            ).hexdigest(),
            "width": asset.width,
            "height": asset.height,
            "format": asset.format,
            "resource_type": "image",
            "type": "upload",
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "bytes": len(asset.data),
            "url": f"{url}{asset.public_id}.{asset.format}",
            "secure_url": f"{url}{asset.public_id}.{asset.format}",
        }

    async def destroy(self, request: Request) -> Response:
        checked = await self._signed_form(request)
        if isinstance(checked, Response):
            return checked
        params, _ = checked
        if not params.get("public_id"):
            return _error(400, "Missing required parameter - public_id")
        removed = self.assets.pop(params["public_id"], None)
        return JSONResponse({"result": "ok" if removed is not None else "not found"})

    async def deliver(self, request: Request) -> Response:
        if request.path_params["cloud"] != self.cloud_name:
            return Response(status_code=404)
        segments = request.path_params["path"].split("/")
        transformation: dict[str, str] = {}
        if _is_transformation(segments):
            transformation = dict(part.split("_", 1) for part in segments.pop(0).split(","))
        if segments and segments[0].startswith("v") and segments[0][1:].isdigit():
            segments.pop(0)
        public_id, _, extension = "/".join(segments).rpartition(".")
        asset = self.assets.get(public_id)
        if asset is None or extension not in _CONTENT_TYPES:
            return Response(status_code=404, headers={"x-cld-error": "Resource not found"})
        data = asset.data
        if transformation or extension != asset.format:
            data = _transformed(asset, transformation, extension)
        return Response(data, media_type=_CONTENT_TYPES[extension])


def _is_transformation(segments: list[str]) -> bool:
    first = segments[0] if segments else ""
    return len(segments) > 1 and all(
        len(part) > 2 and part[1] == "_" and part[0] in "cwh" for part in first.split(",")
    )


def _transformed(asset: Asset, transformation: dict[str, str], extension: str) -> bytes:
    with Image.open(io.BytesIO(asset.data)) as source:
        image = source.copy()
    width = int(transformation.get("w", image.width))
    height = int(transformation.get("h", image.height))
    crop = transformation.get("c", "scale")
    if crop == "limit":
        image.thumbnail((width, height))
    elif crop == "fill":
        image = ImageOps.fit(image, (width, height))
    else:
        image = image.resize((width, height))
    pillow_format = {value: key for key, value in _FORMATS.items()}[extension]
    buffer = io.BytesIO()
    image.save(buffer, format=pillow_format)
    return buffer.getvalue()
