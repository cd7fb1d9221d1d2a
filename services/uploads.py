"""Uploaded images: accepted by what they are, not what they are called, and stored clean.

Every image is decoded and encoded anew, which drops its metadata (EXIF with its GPS position,
comments, colour profiles) and anything hidden after the pixels; it is turned upright first,
bounded in size, and given a thumbnail (made here, or by a store that resizes on delivery).
"""

import asyncio
import io
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ListingPhoto, Upload
from db.rows import Actor
from gateways.storage import Storage, StorageUnavailable
from services.errors import Conflict, DomainError, NotFound, ServiceUnavailable

log = logging.getLogger("roost.uploads")

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_SOURCE_PIXELS = 50_000_000  # refuses decompression bombs before decoding them
MAX_SIDE = 2_048
THUMBNAIL_SIDE = 400

# Pillow format -> (content type, file extension, save options)
_FORMATS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "JPEG": ("image/jpeg", "jpg", {"quality": 85, "optimize": True}),
    "PNG": ("image/png", "png", {"optimize": True}),
    "WEBP": ("image/webp", "webp", {"quality": 85}),
}


class UnsupportedImage(DomainError):
    code = "UNSUPPORTED_MEDIA_TYPE"
    http_status = 415
    default_message = "Only JPEG, PNG and WebP images are accepted."


class UploadTooLarge(DomainError):
    code = "PAYLOAD_TOO_LARGE"
    http_status = 413
    default_message = f"An upload may be at most {MAX_UPLOAD_BYTES // (1024 * 1024)} MB."


class StorageDown(ServiceUnavailable):
    default_message = "The image could not be stored right now; try again shortly."


@dataclass(frozen=True)
class CleanImage:
    content_type: str
    extension: str
    image: bytes
    thumbnail: bytes | None  # None when the store makes its own
    width: int
    height: int


def _encode(image: Image.Image, pillow_format: str) -> bytes:
    _, _, options = _FORMATS[pillow_format]
    if pillow_format == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    buffer = io.BytesIO()
    # No exif=, no icc_profile=, no pnginfo=: nothing but pixels is written.
    image.save(buffer, format=pillow_format, **options)
    return buffer.getvalue()


def clean_image(data: bytes, *, thumbnail: bool = True) -> CleanImage:
    """Decodes, checks and re-encodes one image, with a thumbnail if asked; raises
    UnsupportedImage for anything else."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadTooLarge()
    try:
        with Image.open(io.BytesIO(data)) as source:
            pillow_format = source.format
            if pillow_format not in _FORMATS:
                raise UnsupportedImage()
            if source.width * source.height > MAX_SOURCE_PIXELS:
                raise UnsupportedImage("The image has too many pixels.")
            upright = ImageOps.exif_transpose(source)
            upright.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise UnsupportedImage() from None
    upright.info.clear()  # some encoders would write back what decoding read (EXIF, text)
    if upright.mode not in ("RGB", "RGBA", "L", "LA"):
        upright = upright.convert("RGBA" if "A" in upright.getbands() else "RGB")
    upright.thumbnail((MAX_SIDE, MAX_SIDE))
    small = None
    if thumbnail:
        small = upright.copy()
        small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    content_type, extension, _ = _FORMATS[pillow_format]
    return CleanImage(
        content_type=content_type,
        extension=extension,
        image=_encode(upright, pillow_format),
        thumbnail=_encode(small, pillow_format) if small is not None else None,
        width=upright.width,
        height=upright.height,
    )


async def store_image(storage: Storage, data: bytes) -> tuple[CleanImage, str, str]:
    """Cleans the image off the event loop and stores it; answers it with its two keys.

    A store that derives thumbnails itself gets the image alone. Either all is stored or,
    when the store fails, what was stored is taken back and ``StorageDown`` raised."""
    clean = await asyncio.to_thread(clean_image, data, thumbnail=not storage.derives_thumbnails)
    stem = f"uploads/{datetime.now(UTC):%Y/%m}/{uuid.uuid4().hex}"
    image_key = f"{stem}.{clean.extension}"
    derived = storage.derived_thumbnail_key(image_key, THUMBNAIL_SIDE)
    thumbnail_key = derived or f"{stem}-thumb.{clean.extension}"
    try:
        await storage.save(image_key, clean.image, clean.content_type)
        if clean.thumbnail is not None and derived is None:
            await storage.save(thumbnail_key, clean.thumbnail, clean.content_type)
    except StorageUnavailable as error:
        log.warning("an upload was not stored: %s", error)
        # A timed-out upload may still have landed.
        await discard_image(storage, image_key, thumbnail_key)
        raise StorageDown() from None
    return clean, image_key, thumbnail_key


async def discard_image(storage: Storage, image_key: str, thumbnail_key: str) -> None:
    """Removes what ``store_image`` stored, when no upload row will name it. Best effort: a
    store that is down now leaves an orphan file, never an upload row without its image."""
    derived = storage.derived_thumbnail_key(image_key, THUMBNAIL_SIDE)
    for key in (image_key, thumbnail_key):
        if key == derived:
            continue  # nothing of its own to remove: it goes with the image
        try:
            await storage.delete(key)
        except Exception as error:  # any store's failure: logged, never raised
            log.warning("an orphaned upload %s stays in storage: %s", key, error)


async def record_upload(
    session: AsyncSession, *, owner_id: int, clean: CleanImage, image_key: str, thumbnail_key: str
) -> Upload:
    upload = Upload(
        owner_id=owner_id,
        storage_key=image_key,
        thumbnail_key=thumbnail_key,
        content_type=clean.content_type,
        width=clean.width,
        height=clean.height,
        byte_size=len(clean.image),
    )
    session.add(upload)
    await session.flush()
    return upload


async def delete_upload(session: AsyncSession, *, actor: Actor, upload_id: int) -> tuple[str, str]:
    """The owner's upload forgotten, unless a listing shows it (an avatar made of it is
    cleared). Answers its image and thumbnail keys, for ``discard_image`` once this commits:
    the files go only when no row can name them any more."""
    # Locked: a listing taking the photo meanwhile waits on its foreign key, then fails.
    upload = await session.get(Upload, upload_id, with_for_update=True)
    if upload is None or upload.owner_id != actor.id:
        raise NotFound("No such upload.")
    if await session.scalar(select(exists().where(ListingPhoto.upload_id == upload_id))):
        raise Conflict("A listing shows this photo: take it off the listing first.")
    await session.delete(upload)
    await session.flush()
    return upload.storage_key, upload.thumbnail_key
