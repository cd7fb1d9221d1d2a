"""Image uploads: who may upload, what is accepted, what is stored, and who may attach it."""

import asyncio
import io
import os
import uuid
from pathlib import Path

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer
from PIL import ExifTags, Image
from starlette.applications import Starlette

from db.database import Database
from gateways.storage import LocalStorage, S3Storage, StorageUnavailable
from services import uploads
from tests.accounts_helpers import bearer, register
from tests.helpers import free_port, gql
from tests.listing_helpers import create, host_token
from tests.upload_helpers import image_bytes, upload

SET_AVATAR = """
mutation($id: ID) { updateProfile(input: {avatarUploadId: $id}) { avatarUrl } }
"""


@pytest.fixture
async def token(client: httpx.AsyncClient, database: Database) -> str:
    return (await register(client))["accessToken"]


async def test_an_image_is_stored_and_served(client: httpx.AsyncClient, token: str) -> None:
    response = await upload(client, image_bytes(), token=token)
    assert response.status_code == 201
    body = response.json()
    assert set(body) >= {"id", "url"}
    path = httpx.URL(body["url"]).path
    served = await client.get(path)
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert Image.open(io.BytesIO(served.content)).size == (640, 480)
    thumbnail = await client.get(httpx.URL(body["thumbnailUrl"]).path)
    assert max(Image.open(io.BytesIO(thumbnail.content)).size) == 400


@pytest.mark.parametrize("pillow_format", ["JPEG", "PNG", "WEBP"])
async def test_gps_exif_is_stripped(
    client: httpx.AsyncClient, token: str, pillow_format: str
) -> None:
    original = image_bytes(pillow_format, gps=True)
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    body = (await upload(client, original, token=token)).json()
    stored = (await client.get(httpx.URL(body["url"]).path)).content
    exif = Image.open(io.BytesIO(stored)).getexif()
    assert not exif.get_ifd(ExifTags.IFD.GPSInfo)
    assert len(exif) == 0
    assert b"PhoneCo" not in stored


@pytest.mark.parametrize("pillow_format", ["PNG", "WEBP"])
async def test_png_and_webp_are_accepted(
    client: httpx.AsyncClient, token: str, pillow_format: str
) -> None:
    response = await upload(client, image_bytes(pillow_format), token=token, name="x.img")
    assert response.status_code == 201
    assert response.json()["contentType"] == f"image/{pillow_format.lower()}"


async def test_a_large_image_is_bounded(client: httpx.AsyncClient, token: str) -> None:
    response = await upload(client, image_bytes(size=(4000, 3000)), token=token)
    assert (response.json()["width"], response.json()["height"]) == (2048, 1536)


@pytest.mark.parametrize(
    "content",
    [
        b"#!/bin/sh\nrm -rf /\n",
        image_bytes("GIF"),
        b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10,
        b"",
    ],
    ids=["shell script", "gif", "fake png header", "empty"],
)
async def test_anything_but_a_real_image_is_refused_with_415(
    client: httpx.AsyncClient, token: str, content: bytes
) -> None:
    response = await upload(client, content, token=token, name="innocent.png")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


async def test_over_ten_megabytes_is_refused_with_413(
    client: httpx.AsyncClient, token: str
) -> None:
    response = await upload(client, os.urandom(10 * 1024 * 1024 + 100_000), token=token)
    assert response.status_code == 413


async def test_an_anonymous_upload_is_refused_with_401(client: httpx.AsyncClient) -> None:
    response = await upload(client, image_bytes(), token=None)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"


async def test_a_form_without_the_file_field_is_a_400(
    client: httpx.AsyncClient, token: str
) -> None:
    response = await client.post("/uploads", data={"other": "x"}, headers=bearer(token))
    assert response.status_code == 400


async def test_an_upload_becomes_the_avatar_of_its_owner_only(
    client: httpx.AsyncClient, database: Database
) -> None:
    owner = await register(client)
    upload_id = (await upload(client, image_bytes(), token=owner["accessToken"])).json()["id"]

    body = await gql(client, SET_AVATAR, {"id": upload_id}, headers=bearer(owner["accessToken"]))
    assert body["data"]["updateProfile"]["avatarUrl"].endswith("-thumb.jpg")

    thief = await register(client)
    body = await gql(client, SET_AVATAR, {"id": upload_id}, headers=bearer(thief["accessToken"]))
    assert body["errors"][0]["extensions"] == {
        "code": "BAD_USER_INPUT",
        "fields": {"avatarUploadId": "is not an upload of yours"},
    }
    cleared = await gql(client, SET_AVATAR, {"id": None}, headers=bearer(owner["accessToken"]))
    assert cleared["data"]["updateProfile"]["avatarUrl"] is None


DELETE_UPLOAD = "mutation($id: ID!) { deleteUpload(id: $id) }"
AVATAR = "{ me { avatarUrl } }"


async def test_its_owner_deletes_an_upload_and_its_files_go(
    client: httpx.AsyncClient, app: Starlette
) -> None:
    owner = await register(client)
    headers = bearer(owner["accessToken"])
    body = (await upload(client, image_bytes(), token=owner["accessToken"])).json()
    await gql(client, SET_AVATAR, {"id": body["id"]}, headers=headers)

    stranger = await register(client)
    refused = await gql(
        client, DELETE_UPLOAD, {"id": body["id"]}, headers=bearer(stranger["accessToken"])
    )
    assert refused["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert (await client.get(httpx.URL(body["url"]).path)).status_code == 200

    deleted = await gql(client, DELETE_UPLOAD, {"id": body["id"]}, headers=headers)
    assert deleted == {"data": {"deleteUpload": True}}
    for url in (body["url"], body["thumbnailUrl"]):
        assert (await client.get(httpx.URL(url).path)).status_code == 404
    assert (await gql(client, AVATAR, headers=headers))["data"]["me"]["avatarUrl"] is None
    again = await gql(client, DELETE_UPLOAD, {"id": body["id"]}, headers=headers)
    assert again["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_photo_a_listing_shows_is_not_deleted(client: httpx.AsyncClient) -> None:
    token = await host_token(client)
    body = (await upload(client, image_bytes(), token=token)).json()
    await create(client, token, photoUploadIds=[body["id"]])

    refused = await gql(client, DELETE_UPLOAD, {"id": body["id"]}, headers=bearer(token))
    assert refused["errors"][0]["extensions"]["code"] == "CONFLICT"
    assert (await client.get(httpx.URL(body["url"]).path)).status_code == 200


async def test_s3_storage_puts_the_object_in_the_bucket(app: Starlette) -> None:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        credentials = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
        admin = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **credentials)
        bucket = f"roost-{uuid.uuid4().hex[:8]}"
        admin.create_bucket(Bucket=bucket)
        storage = S3Storage(
            bucket=bucket,
            public_base_url=f"{endpoint}/{bucket}",
            endpoint_url=endpoint,
            access_key_id="test",
            secret_access_key="test",
        )
        await storage.save("uploads/a.jpg", b"jpeg bytes", "image/jpeg")
        stored = await asyncio.to_thread(admin.get_object, Bucket=bucket, Key="uploads/a.jpg")
        assert stored["Body"].read() == b"jpeg bytes"
        assert stored["ContentType"] == "image/jpeg"
        assert storage.url("uploads/a.jpg") == f"{endpoint}/{bucket}/uploads/a.jpg"
        await storage.delete("uploads/a.jpg")
        listed = await asyncio.to_thread(admin.list_objects_v2, Bucket=bucket)
        assert listed.get("KeyCount") == 0
        missing = S3Storage(
            bucket=f"{bucket}-missing",
            public_base_url=endpoint,
            endpoint_url=endpoint,
            access_key_id="test",
            secret_access_key="test",
        )
        with pytest.raises(StorageUnavailable, match="NoSuchBucket"):
            await missing.save("uploads/a.jpg", b"jpeg bytes", "image/jpeg")
    finally:
        server.stop()


async def test_a_discarded_local_upload_leaves_no_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path, "http://media.example")
    _, image_key, thumbnail_key = await uploads.store_image(storage, image_bytes())
    assert storage.path(image_key).exists() and storage.path(thumbnail_key).exists()
    await uploads.discard_image(storage, image_key, thumbnail_key)
    assert not storage.path(image_key).exists()
    assert not storage.path(thumbnail_key).exists()
