"""What every resolver can reach through ``info.context``."""

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry import Info as StrawberryInfo

from auth.viewer import Viewer
from db.database import Database
from db.loaders import Loaders


@dataclass
class Context:
    request: Request | WebSocket
    response: Response | None
    viewer: Viewer
    database: Database
    loaders: Loaders


Info = StrawberryInfo[Context, None]
