"""Shared steps of the upload tests: an image, and uploading it."""

import io

import httpx
from PIL import ExifTags, Image

from tests.accounts_helpers import bearer


def image_bytes(
    pillow_format: str = "JPEG", size: tuple[int, int] = (640, 480), *, gps: bool = False
) -> bytes:
    image = Image.new("RGB", size, (200, 80, 40))
    exif = Image.Exif()
    if gps:
        exif[ExifTags.Base.Make] = "PhoneCo"
        gps_ifd = exif.get_ifd(ExifTags.IFD.GPSInfo)
        gps_ifd[ExifTags.GPS.GPSLatitudeRef] = "N"
        gps_ifd[ExifTags.GPS.GPSLatitude] = (38.0, 42.0, 36.0)
        gps_ifd[ExifTags.GPS.GPSLongitudeRef] = "W"
        gps_ifd[ExifTags.GPS.GPSLongitude] = (9.0, 8.0, 24.0)
    buffer = io.BytesIO()
    image.save(buffer, format=pillow_format, exif=exif)
    return buffer.getvalue()


async def upload(
    client: httpx.AsyncClient, content: bytes, *, token: str | None, name: str = "photo.jpg"
) -> httpx.Response:
    headers = bearer(token) if token else {}
    return await client.post(
        "/uploads", files={"file": (name, content, "image/jpeg")}, headers=headers
    )
