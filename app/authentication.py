"""Who is calling: one answer for the GraphQL endpoint and the REST routes alike."""

from starlette.requests import HTTPConnection

from auth.viewer import ANONYMOUS, TokenProblem, Viewer, authenticate
from services.errors import Unauthenticated

TOKEN_MESSAGES = {
    TokenProblem.EXPIRED: "Your access token has expired; refresh the session and try again.",
    TokenProblem.INVALID: (
        "Your access token is not valid or its session has ended; refresh the session, "
        "or sign in again."
    ),
}


async def authenticate_request(connection: HTTPConnection) -> tuple[Viewer, Exception | None]:
    """The viewer, and the error that refuses the request before anything runs: a token that
    did not verify, or whatever stopped us from finding out (the database, down while the
    session had to be looked up there)."""
    state = connection.app.state
    try:
        found = await authenticate(
            connection.headers.get("authorization"),
            state.services.session_policy.access_tokens,
            state.services.revoked_sessions,
        )
    except Exception as error:
        # Reported through the one error path, like any failure of the operation.
        return ANONYMOUS, error
    if found.problem is not None:
        return ANONYMOUS, Unauthenticated(TOKEN_MESSAGES[found.problem], reason=found.problem.value)
    return found.viewer, None
