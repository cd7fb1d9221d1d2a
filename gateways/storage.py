"""Where uploaded files live: local files under ROOST_DATA_DIR (served at /media), S3, or
Cloudinary (which also makes every resized copy itself, from its delivery URL)."""

import asyncio
import hashlib
import logging
import time
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Protocol

import httpx

log = logging.getLogger("roost.storage")


class StorageUnavailable(Exception):
    """The store refused or did not answer (an error status, a timeout): nothing was kept."""


class Storage(Protocol):
    async def save(self, key: str, data: bytes, content_type: str) -> None: ...

    async def delete(self, key: str) -> None:
        """Removes what ``key`` names; a key already gone is not an error."""
        ...

    def url(self, key: str) -> str: ...

    @property
    def derives_thumbnails(self) -> bool:
        """Whether the store resizes images itself: then no thumbnail is made or saved."""
        ...

    def derived_thumbnail_key(self, image_key: str, side: int) -> str | None:
        """The key of a thumbnail the store derives from ``image_key`` itself, at most ``side``
        pixels each way; None when the caller must make and save the thumbnail."""
        ...


class LocalStorage:
    derives_thumbnails = False

    def __init__(self, root: Path, base_url: str) -> None:
        self.root = root.resolve()
        self.base_url = base_url.rstrip("/")

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError("a storage key must stay inside the storage root")
        return path

    async def save(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self._write, self.path(key), data)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, missing_ok=True)

    def url(self, key: str) -> str:
        return f"{self.base_url}/{key}"

    def derived_thumbnail_key(self, image_key: str, side: int) -> str | None:
        return None


class S3Storage:
    """Any S3-compatible object store (AWS S3, MinIO, ...), through boto3."""

    derives_thumbnails = False

    def __init__(
        self,
        *,
        bucket: str,
        public_base_url: str,
        region: str = "us-east-1",
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> None:
        import boto3  # imported late: only this backend needs it

        self.bucket = bucket
        self.public_base_url = public_base_url.rstrip("/")
        self._client = boto3.client(
            "s3",
            region_name=region,
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
        )

    async def save(self, key: str, data: bytes, content_type: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

        try:
            await asyncio.to_thread(
                self._client.put_object,
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                CacheControl="public, max-age=31536000, immutable",
            )
        except (BotoCoreError, ClientError) as error:
            raise StorageUnavailable(f"S3 refused the object: {error}") from None

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._client.delete_object, Bucket=self.bucket, Key=key)

    def url(self, key: str) -> str:
        return f"{self.public_base_url}/{key}"

    def derived_thumbnail_key(self, image_key: str, side: int) -> str | None:
        return None


def cloudinary_signature(params: Mapping[str, str], api_secret: str) -> str:
    """Cloudinary's request signature: the signed parameters sorted by name, joined as
    ``name=value`` with ``&``, the API secret appended, SHA-1 in hex. ``file``, ``cloud_name``,
    ``resource_type`` and ``api_key`` are never signed, nor empty values."""
    unsigned = {"file", "cloud_name", "resource_type", "api_key", "signature"}
    signed = "&".join(
        f"{name}={value}"
        for name, value in sorted(params.items())
        if name not in unsigned and value != ""
    )
    return hashlib.sha1((signed + api_secret).encode()).hexdigest()  # noqa: S324 (their protocol)


class CloudinaryStorage:
    """Cloudinary's Upload API (signed ``image/upload`` and ``image/destroy``) over httpx.

    A key such as ``uploads/2026/11/ab12.jpg`` is the asset ``uploads/2026/11/ab12`` delivered
    as JPEG: its URL is the key under ``{delivery}/{cloud}/image/upload/``. A thumbnail is not
    stored: its key is the same path behind a transformation (``c_limit,w_400,h_400/...``),
    which Cloudinary renders on first request and caches. (Not the official SDK: it is
    synchronous, on ``requests``, where every other provider here shares one httpx client.)
    """

    derives_thumbnails = True

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        cloud_name: str,
        api_key: str,
        api_secret: str,
        api_base: str = "https://api.cloudinary.com",
        delivery_base: str = "https://res.cloudinary.com",
        timeout: float = 30.0,
    ) -> None:
        self.http = http
        self.cloud_name, self.api_key = cloud_name, api_key
        self._api_secret = api_secret
        self.api_url = f"{api_base.rstrip('/')}/v1_1/{cloud_name}/image"
        self.delivery_url = f"{delivery_base.rstrip('/')}/{cloud_name}/image/upload"
        self.timeout = timeout

    def __repr__(self) -> str:  # never the secret, should the store end up in a log line
        return f"CloudinaryStorage(cloud_name={self.cloud_name!r}, api_key={self.api_key!r})"

    @staticmethod
    def public_id(key: str) -> str:
        """The asset's id: the key without its extension, which Cloudinary reads as a format."""
        path = PurePosixPath(key)
        return str(path.with_suffix("")) if path.suffix else key

    def _signed(self, params: dict[str, str]) -> dict[str, str]:
        params = {**params, "timestamp": str(int(time.time()))}
        signature = cloudinary_signature(params, self._api_secret)
        return {**params, "api_key": self.api_key, "signature": signature}

    async def _call(
        self,
        action: str,
        params: dict[str, str],
        files: dict[str, tuple[str, bytes, str]] | None = None,
    ) -> dict[str, object]:
        try:
            response = await self.http.post(
                f"{self.api_url}/{action}",
                data=self._signed(params),
                files=files,
                timeout=self.timeout,
            )
        except httpx.HTTPError as error:
            raise StorageUnavailable(f"Cloudinary unreachable: {type(error).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not response.is_success or not isinstance(body, dict):
            message = None
            if isinstance(body, dict) and isinstance(body.get("error"), dict):
                message = body["error"].get("message")
            detail = f"Cloudinary {action} answered {response.status_code}: {message or ''}"
            log.warning("%s", detail[:400])
            raise StorageUnavailable(detail[:400])
        return body

    async def save(self, key: str, data: bytes, content_type: str) -> None:
        # A key is new each time (a random stem): nothing is overwritten, so no invalidation.
        await self._call(
            "upload",
            {"public_id": self.public_id(key), "overwrite": "false"},
            files={"file": (PurePosixPath(key).name, data, content_type)},
        )

    async def delete(self, key: str) -> None:
        # Destroying the original drops its derived copies; invalidate empties the CDN's too.
        await self._call("destroy", {"public_id": self.public_id(key), "invalidate": "true"})

    def url(self, key: str) -> str:
        return f"{self.delivery_url}/{key}"

    def derived_thumbnail_key(self, image_key: str, side: int) -> str | None:
        return f"c_limit,w_{side},h_{side}/{image_key}"
