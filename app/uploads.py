"""``POST /uploads``: one image per request, for the signed-in user, answered as ``{id, url}``."""

from functools import partial

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from strawberry.relay import to_base64

from app.authentication import authenticate_request
from app.rest import error_response
from services import accounts, uploads
from services.errors import Unauthenticated

# The form's own framing around the file: boundaries, headers, the field name.
MULTIPART_ALLOWANCE = 64 * 1024
MAX_REQUEST_BYTES = uploads.MAX_UPLOAD_BYTES + MULTIPART_ALLOWANCE


async def upload_image(request: Request) -> Response:
    services = request.app.state.services
    database = request.app.state.database
    viewer, refusal = await authenticate_request(request)
    if refusal is not None:
        raise refusal
    if viewer.user_id is None:
        raise Unauthenticated()
    async with database.read_session() as session:
        user = await accounts.active_user(session, viewer.user_id)

    # Files over a megabyte spool to disk while they stream in; the body limit stops a big one.
    async with request.form(max_files=1, max_fields=5) as form:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            return error_response(400, "BAD_REQUEST", "Send the image as the form field `file`.")
        data = await file.read(uploads.MAX_UPLOAD_BYTES + 1)

    clean, image_key, thumbnail_key = await uploads.store_image(services.storage, data)
    try:
        upload = await database.transaction(
            partial(
                uploads.record_upload,
                owner_id=user.id,
                clean=clean,
                image_key=image_key,
                thumbnail_key=thumbnail_key,
            )
        )
    except Exception:
        await uploads.discard_image(services.storage, image_key, thumbnail_key)
        raise
    return JSONResponse(
        {
            "id": to_base64("Upload", upload.id),
            "url": services.storage.url(image_key),
            "thumbnailUrl": services.storage.url(thumbnail_key),
            "width": clean.width,
            "height": clean.height,
            "contentType": clean.content_type,
        },
        status_code=201,
    )
