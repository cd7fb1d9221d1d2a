"""The websocket side of /graphql (graphql-transport-ws): strawberry's protocol handler, with
Roost's sign-in, limits, and a connection that ends with its credential.

- Sign-in is in ``connection_init``: ``{"authorization": "Bearer <accessToken>"}``, since a
  browser cannot set headers on a websocket (a non-browser client may send the header on the
  handshake instead). Without a token the connection is anonymous, for public queries; a
  subscription refuses it (UNAUTHENTICATED). A token that does not verify, has expired or whose
  session has ended closes the connection: 4401 Unauthorized.
- A connection lives as long as its access token plus a grace period, then closes with 4403
  Forbidden, which graphql-ws clients answer by reconnecting with fresh ``connectionParams`` and
  subscribing again. A client may instead send a newer token of the same user in a ``ping``'s
  payload (``{"authorization": ...}``), which extends the connection to that token's lifetime.
- A connection whose session ends (sign-out, password change, suspension) closes at once, 4401.
- At most ``max_subscriptions_per_connection`` operations are open at once; one more is answered
  with an ``error`` message (RATE_LIMITED). Protocol abuse gets the protocol's close codes from
  strawberry: 4400 a bad message, 4401 subscribe before the acknowledgement, 4409 an id in use,
  4429 a second init, 4408 no init in time.
"""

import asyncio
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    Message,
    PingMessage,
    SubscribeMessage,
)

from auth.revocations import RevokedSessions
from auth.tokens import AccessClaims
from auth.viewer import Viewer, authenticate
from db.loaders import Loaders
from db.outages import note_if_unreachable
from schema.context import Context

if TYPE_CHECKING:
    from app.graphql_view import RoostGraphQL

log = logging.getLogger("roost.websocket")

UNAUTHORIZED = 4401
FORBIDDEN = 4403
TRY_AGAIN_LATER = 1013  # graphql-ws clients retry it
MAX_OPERATION_ID = 128


class LiveConnections:
    """This process's signed-in websockets by session, so an ended session closes them."""

    def __init__(self, revoked: RevokedSessions) -> None:
        self._by_session: dict[uuid.UUID, set[RoostTransportWS]] = {}
        revoked.on_revoked(self._session_ended)

    def add(self, session_id: uuid.UUID, connection: "RoostTransportWS") -> None:
        self._by_session.setdefault(session_id, set()).add(connection)

    def discard(self, session_id: uuid.UUID, connection: "RoostTransportWS") -> None:
        connections = self._by_session.get(session_id)
        if connections is not None:
            connections.discard(connection)
            if not connections:
                del self._by_session[session_id]

    def _session_ended(self, session_id: uuid.UUID) -> None:
        for connection in list(self._by_session.get(session_id, ())):
            connection.end(UNAUTHORIZED, "Unauthorized: the session has ended")


class RoostTransportWS(BaseGraphQLTransportWSHandler[Context, None]):
    view: "RoostGraphQL"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._user_id: int | None = None
        self._session_id: uuid.UUID | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._ending: asyncio.Task[None] | None = None

    @property
    def _state(self) -> Any:
        return self.context.request.app.state

    async def handle_message(self, message: Message) -> None:
        # Strawberry reads any JSON as a message; an array or a number would raise past it.
        raw: object = message
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            await self.handle_invalid_message("A message is a JSON object with a type")
            return
        if raw["type"] == "complete" and not isinstance(raw.get("id"), str):
            await self.handle_invalid_message("Invalid complete message")
            return
        await super().handle_message(message)

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        payload = message.get("payload", {})
        if (
            self.connection_timed_out
            or self.connection_init_received
            or not isinstance(payload, dict)
        ):
            await super().handle_connection_init(message)  # its 4429, or 4400
            return
        credential = payload.get("authorization", payload.get("Authorization"))
        if credential is None:
            credential = self.context.request.headers.get("authorization")
        if credential is not None and not await self._sign_in(credential):
            return
        await super().handle_connection_init(message)

    async def _sign_in(self, credential: object) -> bool:
        """Takes the viewer from ``credential``; closes the connection and answers False when
        it is no good."""
        found = await self._authenticate(credential)
        if found is None:
            return False
        viewer, claims = found
        self._user_id = viewer.user_id
        self.context.viewer = viewer
        self.context.refusal = None
        return await self._hold(claims)

    async def _hold(self, claims: AccessClaims) -> bool:
        """Keeps the connection as long as the token's session and lifetime allow."""
        connections: LiveConnections = self._state.live_connections
        if self._session_id is not None and self._session_id != claims.session_id:
            connections.discard(self._session_id, self)
        self._session_id = claims.session_id
        connections.add(claims.session_id, self)
        # A revocation heard between the check and the registration would be missed.
        if await self._state.services.revoked_sessions.is_revoked(claims.session_id):
            self.end(UNAUTHORIZED, "Unauthorized: the session has ended")
            return False
        self._expire_at(claims.expires_at)
        return True

    async def _authenticate(self, credential: object) -> tuple[Viewer, AccessClaims] | None:
        services = self._state.services
        try:
            found = await authenticate(
                credential if isinstance(credential, str) else "",
                services.session_policy.access_tokens,
                services.revoked_sessions,
            )
        except Exception as error:
            if not note_if_unreachable(error):
                log.exception("a websocket could not be signed in")
            self.end(TRY_AGAIN_LATER, "Try again later")
            return None
        if found.problem is not None or found.claims is None:
            self.end(UNAUTHORIZED, f"Unauthorized: {found.problem or 'no token'}")
            return None
        return found.viewer, found.claims

    def _expire_at(self, expires_at: float) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        grace = self.view.websocket_token_grace_seconds
        self._deadline = asyncio.get_running_loop().call_later(
            max(0.0, expires_at + grace - time.time()),
            self.end,
            FORBIDDEN,
            "Forbidden: the access token has expired",
        )

    async def handle_ping(self, message: PingMessage) -> None:
        payload = message.get("payload")
        if isinstance(payload, dict) and "authorization" in payload and self._user_id is not None:
            found = await self._authenticate(payload["authorization"])
            if found is None:
                return
            viewer, claims = found
            if viewer.user_id != self._user_id:
                self.end(UNAUTHORIZED, "Unauthorized: a token of another user")
                return
            if not await self._hold(claims):
                return
        await super().handle_ping(message)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if not self.connection_acknowledged:
            await super().handle_subscribe(message)  # its 4401
            return
        operation_id = message.get("id")
        payload = message.get("payload")
        if not (
            isinstance(operation_id, str)
            and 0 < len(operation_id) <= MAX_OPERATION_ID
            and isinstance(payload, dict)
            and isinstance(payload.get("query"), str)
            and isinstance(payload.get("variables"), dict | None)
            and isinstance(payload.get("operationName"), str | None)
        ):
            await self.handle_invalid_message("Invalid subscribe message")
            return
        limit = self.view.max_subscriptions_per_connection
        if (
            operation_id not in self.operations
            and limit is not None
            and len(self.operations) >= limit
        ):
            await self.send_message(
                {
                    "id": operation_id,
                    "type": "error",
                    "payload": [
                        {
                            "message": f"A connection holds at most {limit} operations at once; "
                            "complete one first.",
                            "extensions": {"code": "RATE_LIMITED"},
                        }
                    ],
                }
            )
            return
        # What the connection's operations read is read afresh for each.
        self.context.loaders = Loaders(self.context.database)
        await super().handle_subscribe(message)

    def end(self, code: int, reason: str) -> None:
        """Stops every operation and closes the connection (once)."""
        if self._ending is None:
            self._ending = asyncio.create_task(self._end(code, reason))

    async def _end(self, code: int, reason: str) -> None:
        for operation_id in list(self.operations):
            await self.cleanup_operation(operation_id)
        try:
            await self.websocket.close(code=code, reason=reason)
        except Exception:  # the client left first
            log.debug("closing a websocket that had gone", exc_info=True)

    async def shutdown(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        if self._session_id is not None:
            self._state.live_connections.discard(self._session_id, self)
        await super().shutdown()
        if self._ending is not None:
            await self._ending
