"""Photos on Cloudinary: the upload tests of the other backends, against a local stand-in of
Cloudinary's Upload API that checks every signature with the account's secret; thumbnails are
Cloudinary's URL transformations, and a store that fails leaves no upload behind."""

import io
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from PIL import ExifTags, Image
from pydantic import SecretStr
from sqlalchemy import func, select
from starlette.applications import Starlette

from app.settings import ConfigurationError, load_settings
from app.wiring import build_storage
from db.database import Database
from db.models import Upload
from gateways.storage import CloudinaryStorage, StorageUnavailable, cloudinary_signature
from services import uploads
from tests.accounts_helpers import bearer, register
from tests.fakes.cloudinary_api import API_KEY, API_SECRET, CLOUD_NAME, FakeCloudinary
from tests.helpers import committed, gql, serving
from tests.upload_helpers import image_bytes, upload

SET_AVATAR = """
mutation($id: ID) { updateProfile(input: {avatarUploadId: $id}) { avatarUrl } }
"""


def cloudinary_settings(url: str, secret: str = API_SECRET) -> dict[str, object]:
    return {
        "storage_backend": "cloudinary",
        "cloudinary_url": SecretStr(f"cloudinary://{API_KEY}:{secret}@{CLOUD_NAME}"),
        "cloudinary_api_base": url,
        "cloudinary_delivery_base": url,
    }


@pytest.fixture
async def fake() -> AsyncIterator[FakeCloudinary]:
    cloudinary = FakeCloudinary()
    async with serving(cloudinary.app()) as url:
        cloudinary.base_url = url
        yield cloudinary


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def use_storage(app: Starlette, storage: object) -> None:
    app.state.services = replace(app.state.services, storage=storage)


@pytest.fixture
async def on_cloudinary(
    app: Starlette, database: Database, fake: FakeCloudinary, http: httpx.AsyncClient
) -> AsyncIterator[FakeCloudinary]:
    """The app storing its uploads on the fake, as ROOST_STORAGE_BACKEND=cloudinary builds it."""
    settings = app.state.settings.model_copy(update=cloudinary_settings(fake.base_url))
    before = app.state.services.storage
    use_storage(app, build_storage(settings, http))
    try:
        yield fake
    finally:
        use_storage(app, before)


@pytest.fixture
async def token(client: httpx.AsyncClient, database: Database) -> str:
    return (await register(client))["accessToken"]


async def uploads_stored(database: Database) -> int:
    async with committed(database) as session:
        return (await session.execute(select(func.count()).select_from(Upload))).scalar_one()


def delivery(fake: FakeCloudinary) -> str:
    return f"{fake.base_url}/{CLOUD_NAME}/image/upload"


def test_the_signature_is_cloudinarys_documented_example() -> None:
    # Cloudinary's own worked example: these parameters and the secret "abcd".
    params = {
        "eager": "w_400,h_300,c_pad|w_260,h_200,c_crop",
        "public_id": "sample_image",
        "timestamp": "1315060510",
        "api_key": "1234",  # never signed
        "file": "https://www.example.com/sample.jpg",  # never signed
    }
    assert cloudinary_signature(params, "abcd") == "bfd09f95f331f558cbd1320e67aa8d488770583e"


async def test_an_image_is_uploaded_served_and_thumbnailed_by_transformation(
    client: httpx.AsyncClient,
    token: str,
    on_cloudinary: FakeCloudinary,
    http: httpx.AsyncClient,
    database: Database,
) -> None:
    response = await upload(client, image_bytes(), token=token)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["url"].startswith(f"{delivery(on_cloudinary)}/uploads/")
    key = body["url"].removeprefix(f"{delivery(on_cloudinary)}/")
    assert body["thumbnailUrl"] == f"{delivery(on_cloudinary)}/c_limit,w_400,h_400/{key}"
    # One asset: the thumbnail is derived by Cloudinary, not made and stored by us.
    [asset] = on_cloudinary.assets.values()
    assert asset.public_id == key.removesuffix(".jpg")
    assert (asset.format, asset.width, asset.height) == ("jpg", 640, 480)

    served = await http.get(body["url"])
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(served.content)).size == (640, 480)
    thumbnail = await http.get(body["thumbnailUrl"])
    assert thumbnail.status_code == 200
    assert Image.open(io.BytesIO(thumbnail.content)).size == (400, 300)
    assert await uploads_stored(database) == 1


@pytest.mark.parametrize("pillow_format", ["JPEG", "PNG", "WEBP"])
async def test_what_reaches_cloudinary_is_re_encoded_without_its_gps(
    client: httpx.AsyncClient, token: str, on_cloudinary: FakeCloudinary, pillow_format: str
) -> None:
    response = await upload(client, image_bytes(pillow_format, gps=True), token=token)
    assert response.status_code == 201
    [asset] = on_cloudinary.assets.values()
    exif = Image.open(io.BytesIO(asset.data)).getexif()
    assert not exif.get_ifd(ExifTags.IFD.GPSInfo)
    assert len(exif) == 0
    assert b"PhoneCo" not in asset.data
    assert response.json()["url"].endswith("." + asset.format)


async def test_a_large_image_is_bounded_before_it_is_sent(
    client: httpx.AsyncClient, token: str, on_cloudinary: FakeCloudinary
) -> None:
    response = await upload(client, image_bytes(size=(4000, 3000)), token=token)
    assert (response.json()["width"], response.json()["height"]) == (2048, 1536)
    [asset] = on_cloudinary.assets.values()
    assert (asset.width, asset.height) == (2048, 1536)


async def test_what_is_not_an_image_never_reaches_cloudinary(
    client: httpx.AsyncClient, token: str, on_cloudinary: FakeCloudinary
) -> None:
    response = await upload(client, b"#!/bin/sh\nrm -rf /\n", token=token, name="a.png")
    assert response.status_code == 415
    assert on_cloudinary.faults.calls == 0


async def test_the_avatar_is_the_transformation_of_the_upload(
    client: httpx.AsyncClient, on_cloudinary: FakeCloudinary, http: httpx.AsyncClient
) -> None:
    owner = await register(client)
    body = (await upload(client, image_bytes(), token=owner["accessToken"])).json()
    answer = await gql(client, SET_AVATAR, {"id": body["id"]}, headers=bearer(owner["accessToken"]))
    avatar = answer["data"]["updateProfile"]["avatarUrl"]
    assert avatar == body["thumbnailUrl"]
    assert (await http.get(avatar)).status_code == 200


async def test_deleting_an_upload_destroys_its_asset(
    client: httpx.AsyncClient, on_cloudinary: FakeCloudinary, database: Database
) -> None:
    owner = await register(client)
    body = (await upload(client, image_bytes(), token=owner["accessToken"])).json()
    assert len(on_cloudinary.assets) == 1
    deleted = await gql(
        client,
        "mutation($id: ID!) { deleteUpload(id: $id) }",
        {"id": body["id"]},
        headers=bearer(owner["accessToken"]),
    )
    assert deleted == {"data": {"deleteUpload": True}}
    assert on_cloudinary.assets == {}
    assert await uploads_stored(database) == 0


async def test_delete_removes_the_asset(
    fake: FakeCloudinary, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    storage = cloudinary_storage(fake, http)
    data = image_bytes("PNG")
    await storage.save("uploads/2026/11/abc.png", data, "image/png")
    assert fake.assets["uploads/2026/11/abc"].data == data
    assert (await http.get(storage.url("uploads/2026/11/abc.png"))).status_code == 200

    await storage.delete("uploads/2026/11/abc.png")
    assert fake.assets == {}
    assert (await http.get(storage.url("uploads/2026/11/abc.png"))).status_code == 404
    await storage.delete("uploads/2026/11/abc.png")  # already gone: not an error


def cloudinary_storage(
    fake: FakeCloudinary, http: httpx.AsyncClient, *, secret: str = API_SECRET, timeout: float = 10
) -> CloudinaryStorage:
    return CloudinaryStorage(
        http,
        cloud_name=CLOUD_NAME,
        api_key=API_KEY,
        api_secret=secret,
        api_base=fake.base_url,
        delivery_base=fake.base_url,
        timeout=timeout,
    )


async def test_a_wrong_secret_is_refused_by_cloudinary_and_answered_cleanly(
    app: Starlette,
    client: httpx.AsyncClient,
    token: str,
    fake: FakeCloudinary,
    http: httpx.AsyncClient,
    database: Database,
) -> None:
    before = app.state.services.storage
    use_storage(app, cloudinary_storage(fake, http, secret="not-the-secret"))
    try:
        response = await upload(client, image_bytes(), token=token)
    finally:
        use_storage(app, before)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert "not-the-secret" not in response.text
    assert fake.assets == {}
    assert await uploads_stored(database) == 0


async def test_the_fake_checks_signatures_and_timestamps_for_real(
    fake: FakeCloudinary, http: httpx.AsyncClient
) -> None:
    url = f"{fake.base_url}/v1_1/{CLOUD_NAME}/image/destroy"

    def signed(params: dict[str, str], secret: str = API_SECRET) -> dict[str, str]:
        return {**params, "api_key": API_KEY, "signature": cloudinary_signature(params, secret)}

    now = str(int(time.time()))
    good = await http.post(url, data=signed({"public_id": "x", "timestamp": now}))
    assert good.json() == {"result": "not found"}

    forged = signed({"public_id": "x", "timestamp": now}) | {"public_id": "y"}
    refused = await http.post(url, data=forged)
    assert refused.status_code == 401
    assert refused.json()["error"]["message"].startswith("Invalid Signature")

    stale = str(int(time.time()) - 3700)
    refused = await http.post(url, data=signed({"public_id": "x", "timestamp": stale}))
    assert refused.status_code == 401
    assert refused.json()["error"]["message"].startswith("Stale request")

    wrong_key = signed({"public_id": "x", "timestamp": now}) | {"api_key": "1"}
    assert (await http.post(url, data=wrong_key)).status_code == 401


@pytest.mark.parametrize("status", [500, 503, 400])
async def test_a_provider_error_is_a_clean_503_and_no_upload(
    client: httpx.AsyncClient,
    token: str,
    on_cloudinary: FakeCloudinary,
    database: Database,
    status: int,
) -> None:
    on_cloudinary.faults.fail_next(status)
    response = await upload(client, image_bytes(), token=token)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert on_cloudinary.assets == {}
    assert await uploads_stored(database) == 0
    # Cloudinary is back: the next upload goes through.
    assert (await upload(client, image_bytes(), token=token)).status_code == 201


async def test_a_slow_cloudinary_is_cut_off_cleanly(
    app: Starlette,
    client: httpx.AsyncClient,
    token: str,
    fake: FakeCloudinary,
    http: httpx.AsyncClient,
    database: Database,
) -> None:
    before = app.state.services.storage
    use_storage(app, cloudinary_storage(fake, http, timeout=0.5))
    fake.stall_next(2)
    try:
        response = await upload(client, image_bytes(), token=token)
    finally:
        use_storage(app, before)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert await uploads_stored(database) == 0
    # The upload that timed out landed after all: it was taken back.
    assert fake.assets == {}


async def test_an_upload_whose_row_cannot_be_written_is_taken_back(
    client: httpx.AsyncClient,
    token: str,
    on_cloudinary: FakeCloudinary,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def failing(*args: object, **kwargs: object) -> Upload:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(uploads, "record_upload", failing)
    response = await upload(client, image_bytes(), token=token)
    assert response.status_code == 500  # a bug of ours, masked; the image is not left behind
    assert on_cloudinary.faults.calls == 2  # the upload, then its destroy
    assert on_cloudinary.assets == {}


async def test_a_store_that_fails_is_a_storage_error(
    fake: FakeCloudinary, http: httpx.AsyncClient
) -> None:
    fake.faults.fail_next(502)
    with pytest.raises(StorageUnavailable, match="502"):
        await cloudinary_storage(fake, http).save("uploads/a.jpg", image_bytes(), "image/jpeg")


# Configuration


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in (
        "ROOST_ENV",
        "JWT_SECRET",
        "ROOST_FIELD_ENCRYPTION_KEY",
        "CLOUDINARY_URL",
        "CLOUDINARY_CLOUD_NAME",
        "CLOUDINARY_API_KEY",
        "CLOUDINARY_API_SECRET",
        "CLOUDINARY_API_BASE",
        "CLOUDINARY_DELIVERY_BASE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ROOST_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ROOST_STORAGE_BACKEND", "cloudinary")
    return monkeypatch


def test_cloudinary_without_credentials_refuses_to_start(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="needs CLOUDINARY_URL") as refused:
        load_settings()
    assert "CLOUDINARY_API_SECRET" in str(refused.value)


def test_cloudinary_url_gives_the_account(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CLOUDINARY_URL", "cloudinary://1234:s3cr%40t@my-cloud")
    settings = load_settings()
    account = settings.cloudinary_account()
    assert (account.cloud_name, account.api_key) == ("my-cloud", "1234")
    assert account.api_secret.get_secret_value() == "s3cr@t"
    assert "s3cr" not in repr(settings)
    storage = build_storage(settings, httpx.AsyncClient())
    assert isinstance(storage, CloudinaryStorage)
    assert storage.api_url == "https://api.cloudinary.com/v1_1/my-cloud/image"
    assert storage.url("a/b.jpg") == "https://res.cloudinary.com/my-cloud/image/upload/a/b.jpg"
    assert "s3cr" not in repr(storage)


def test_the_separate_settings_are_enough_and_win_over_the_url(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("CLOUDINARY_CLOUD_NAME", "other-cloud")
    clean_env.setenv("CLOUDINARY_API_KEY", "99")
    clean_env.setenv("CLOUDINARY_API_SECRET", "shh")
    account = load_settings().cloudinary_account()
    assert (account.cloud_name, account.api_key) == ("other-cloud", "99")
    clean_env.setenv("CLOUDINARY_URL", "cloudinary://1234:s3cret@my-cloud")
    account = load_settings().cloudinary_account()
    assert (account.cloud_name, account.api_key) == ("other-cloud", "99")
    assert account.api_secret.get_secret_value() == "shh"


@pytest.mark.parametrize(
    "url", ["https://1234:s3cret@my-cloud", "cloudinary://1234@my-cloud", "cloudinary://"]
)
def test_a_malformed_cloudinary_url_is_refused_without_echoing_it(
    clean_env: pytest.MonkeyPatch, url: str
) -> None:
    clean_env.setenv("CLOUDINARY_URL", url)
    with pytest.raises(ConfigurationError, match="CLOUDINARY") as refused:
        load_settings()
    assert "s3cret" not in str(refused.value)


def test_local_storage_needs_no_cloudinary_settings(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ROOST_STORAGE_BACKEND", "local")
    assert load_settings().storage_backend == "local"
