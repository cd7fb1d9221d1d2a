"""Sign-in with Google and Facebook: the authorization-code flow with PKCE, over httpx.

The frontend sends the user to the provider and gets a code back; Roost trades the code for
tokens at the provider, and trusts only what it verified itself: Google's ID token (signature
against Google's published keys, issuer, audience, expiry) or Facebook's Graph API answer to a
request signed with the app secret.
"""

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx
import jwt


@dataclass(frozen=True)
class OAuthProfile:
    provider: str  # GOOGLE | FACEBOOK
    subject: str
    email: str | None
    email_verified: bool
    first_name: str
    last_name: str


@dataclass(frozen=True)
class AuthorizationRequest:
    url: str
    state: str
    code_verifier: str


class OAuthProvider(Protocol):
    name: str

    def authorization_request(self, redirect_uri: str) -> AuthorizationRequest: ...

    async def profile(
        self, *, code: str, redirect_uri: str, code_verifier: str | None
    ) -> OAuthProfile: ...


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class OAuthRefused(Exception):
    """The provider did not vouch for the sign-in; the message says so to the user."""


def _refused(provider: str) -> OAuthRefused:
    return OAuthRefused(f"{provider.title()} did not confirm this sign-in; try again.")


class _Provider:
    name: str
    scope: str

    def __init__(
        self, *, client_id: str, client_secret: str, auth_url: str, http: httpx.AsyncClient
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.auth_url = auth_url
        self.http = http

    def authorization_request(self, redirect_uri: str) -> AuthorizationRequest:
        state = secrets.token_urlsafe(24)
        verifier, challenge = pkce_pair()
        query = urlencode(
            {
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "response_type": "code",
                "scope": self.scope,
                "state": state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        return AuthorizationRequest(f"{self.auth_url}?{query}", state, verifier)

    async def _json(self, request: httpx.Request) -> dict[str, Any]:
        try:
            response = await self.http.send(request)
        except httpx.HTTPError:
            raise _refused(self.name) from None
        if response.status_code != 200:
            raise _refused(self.name)
        try:
            body = response.json()
        except ValueError:
            raise _refused(self.name) from None
        if not isinstance(body, dict):
            raise _refused(self.name)
        return body


class GoogleProvider(_Provider):
    name = "GOOGLE"
    scope = "openid email profile"
    _JWKS_TTL_SECONDS = 3600

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        auth_url: str,
        token_url: str,
        jwks_url: str,
        issuers: tuple[str, ...],
        http: httpx.AsyncClient,
    ) -> None:
        super().__init__(
            client_id=client_id, client_secret=client_secret, auth_url=auth_url, http=http
        )
        self.token_url = token_url
        self.jwks_url = jwks_url
        self.issuers = issuers
        self._jwks: dict[str, Any] = {}
        self._jwks_fetched_at = 0.0

    async def profile(
        self, *, code: str, redirect_uri: str, code_verifier: str | None
    ) -> OAuthProfile:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        if code_verifier:
            form["code_verifier"] = code_verifier
        tokens = await self._json(self.http.build_request("POST", self.token_url, data=form))
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise _refused(self.name)
        claims = await self._verified_claims(id_token)
        if claims.get("email_verified") is not True:
            # An unverified address could be anyone's: it neither links nor signs up.
            raise OAuthRefused("Verify your email address with Google first.")
        return OAuthProfile(
            provider=self.name,
            subject=str(claims["sub"]),
            email=claims.get("email"),
            email_verified=True,
            first_name=str(claims.get("given_name") or claims.get("name") or "Google user"),
            last_name=str(claims.get("family_name") or ""),
        )

    async def _verified_claims(self, id_token: str) -> dict[str, Any]:
        try:
            key_id = jwt.get_unverified_header(id_token).get("kid")
            if not isinstance(key_id, str):
                raise _refused(self.name)
            key = await self._signing_key(key_id)
            return jwt.decode(
                id_token,
                key,
                algorithms=["RS256"],
                audience=self.client_id,
                issuer=self.issuers,
                options={"require": ["iss", "aud", "sub", "exp", "iat"]},
                leeway=30,
            )
        except (jwt.PyJWTError, KeyError, ValueError):
            raise _refused(self.name) from None

    async def _signing_key(self, key_id: str) -> Any:
        stale = time.monotonic() - self._jwks_fetched_at > self._JWKS_TTL_SECONDS
        if stale or key_id not in self._jwks:  # keys rotate: an unknown kid refetches
            keys = await self._json(self.http.build_request("GET", self.jwks_url))
            self._jwks = {
                jwk["kid"]: jwt.PyJWK(jwk).key
                for jwk in keys.get("keys", [])
                if isinstance(jwk, dict) and "kid" in jwk
            }
            self._jwks_fetched_at = time.monotonic()
        return self._jwks[key_id]


class FacebookProvider(_Provider):
    name = "FACEBOOK"
    scope = "email public_profile"

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        auth_url: str,
        token_url: str,
        graph_url: str,
        http: httpx.AsyncClient,
    ) -> None:
        super().__init__(
            client_id=client_id, client_secret=client_secret, auth_url=auth_url, http=http
        )
        self.token_url = token_url
        self.graph_url = graph_url.rstrip("/")

    async def profile(
        self, *, code: str, redirect_uri: str, code_verifier: str | None
    ) -> OAuthProfile:
        params = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uri": redirect_uri,
            "code": code,
        }
        if code_verifier:
            params["code_verifier"] = code_verifier
        tokens = await self._json(self.http.build_request("GET", self.token_url, params=params))
        access_token = tokens.get("access_token")
        if not isinstance(access_token, str):
            raise _refused(self.name)
        proof = hmac.new(
            self.client_secret.encode(), access_token.encode(), hashlib.sha256
        ).hexdigest()
        me = await self._json(
            self.http.build_request(
                "GET",
                f"{self.graph_url}/me",
                params={
                    "fields": "id,email,first_name,last_name",
                    "access_token": access_token,
                    "appsecret_proof": proof,
                },
            )
        )
        if not isinstance(me.get("id"), str):
            raise _refused(self.name)
        email = me.get("email") if isinstance(me.get("email"), str) else None
        return OAuthProfile(
            provider=self.name,
            subject=me["id"],
            email=email,
            # Facebook hands out only addresses its users have confirmed.
            email_verified=email is not None,
            first_name=str(me.get("first_name") or "Facebook user"),
            last_name=str(me.get("last_name") or ""),
        )
