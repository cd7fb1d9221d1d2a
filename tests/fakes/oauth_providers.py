"""Local stand-ins for Google's and Facebook's OAuth endpoints, speaking their wire formats.

Google: the token endpoint takes a form POST and answers JSON with an RS256-signed ID token;
the JWKS endpoint publishes the public key. Facebook: the token endpoint answers a GET with an
access token, and the Graph API's /me checks ``appsecret_proof``.
"""

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CLIENT_ID = "roost-test-client"
CLIENT_SECRET = "roost-test-secret"
GOOGLE_ISSUER = "https://accounts.google.com"


def challenge_of(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


@dataclass
class PendingCode:
    claims: dict[str, Any]
    redirect_uri: str
    challenge: str | None
    tamper: str | None = None


@dataclass
class FakeProviders:
    """Issue a code as the provider's consent screen would, then let Roost redeem it."""

    google_codes: dict[str, PendingCode] = field(default_factory=dict)
    facebook_codes: dict[str, PendingCode] = field(default_factory=dict)
    facebook_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    key_id: str = "test-key-1"

    def google_code(
        self,
        *,
        subject: str,
        email: str,
        email_verified: bool = True,
        redirect_uri: str,
        code_verifier: str | None = None,
        tamper: str | None = None,
        **extra_claims: Any,
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": GOOGLE_ISSUER,
            "aud": CLIENT_ID,
            "sub": subject,
            "email": email,
            "email_verified": email_verified,
            "given_name": "Gabriela",
            "family_name": "Lima",
            "iat": now,
            "exp": now + 3600,
            **extra_claims,
        }
        code = secrets.token_urlsafe(16)
        self.google_codes[code] = PendingCode(
            claims, redirect_uri, challenge_of(code_verifier) if code_verifier else None, tamper
        )
        return code

    def facebook_code(self, *, user_id: str, email: str | None, redirect_uri: str) -> str:
        code = secrets.token_urlsafe(16)
        profile = {"id": user_id, "first_name": "Femi", "last_name": "Adeyemi"}
        if email:
            profile["email"] = email
        self.facebook_codes[code] = PendingCode(profile, redirect_uri, None)
        return code

    def _id_token(self, pending: PendingCode) -> str:
        headers = {"kid": self.key_id}
        if pending.tamper == "other key":
            other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            return jwt.encode(pending.claims, other, algorithm="RS256", headers=headers)
        token = jwt.encode(pending.claims, self.key, algorithm="RS256", headers=headers)
        if pending.tamper == "edited claims":
            header, payload, signature = token.split(".")
            claims = {**pending.claims, "sub": "someone-else", "email": "victim@example.com"}
            forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
            return f"{header}.{forged}.{signature}"
        return token

    async def google_token(self, request: Request) -> Response:
        form = await request.form()
        pending = self.google_codes.pop(str(form.get("code")), None)
        valid = (
            pending is not None
            and form.get("grant_type") == "authorization_code"
            and form.get("client_id") == CLIENT_ID
            and form.get("client_secret") == CLIENT_SECRET
            and form.get("redirect_uri") == pending.redirect_uri
            and (
                pending.challenge is None
                or challenge_of(str(form.get("code_verifier", ""))) == pending.challenge
            )
        )
        if not valid or pending is None:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        return JSONResponse(
            {
                "access_token": secrets.token_urlsafe(24),
                "expires_in": 3599,
                "token_type": "Bearer",
                "scope": "openid email profile",
                "id_token": self._id_token(pending),
            }
        )

    async def google_certs(self, request: Request) -> Response:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return JSONResponse({"keys": [{**jwk, "kid": self.key_id, "use": "sig", "alg": "RS256"}]})

    async def facebook_token(self, request: Request) -> Response:
        params = request.query_params
        pending = self.facebook_codes.pop(params.get("code", ""), None)
        if (
            pending is None
            or params.get("client_id") != CLIENT_ID
            or params.get("client_secret") != CLIENT_SECRET
            or params.get("redirect_uri") != pending.redirect_uri
        ):
            return JSONResponse(
                {"error": {"message": "Invalid verification code format.", "code": 100}},
                status_code=400,
            )
        token = secrets.token_urlsafe(24)
        self.facebook_tokens[token] = pending.claims
        return JSONResponse({"access_token": token, "token_type": "bearer", "expires_in": 5183944})

    async def facebook_me(self, request: Request) -> Response:
        token = request.query_params.get("access_token", "")
        expected = hmac.new(CLIENT_SECRET.encode(), token.encode(), hashlib.sha256).hexdigest()
        profile = self.facebook_tokens.get(token)
        if profile is None or request.query_params.get("appsecret_proof") != expected:
            return JSONResponse(
                {"error": {"message": "Invalid OAuth access token.", "code": 190}},
                status_code=400,
            )
        return JSONResponse(profile)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/google/token", self.google_token, methods=["POST"]),
                Route("/google/certs", self.google_certs),
                Route("/facebook/oauth/access_token", self.facebook_token),
                Route("/facebook/me", self.facebook_me),
            ]
        )

    @staticmethod
    def settings_for(base_url: str) -> dict[str, Any]:
        return {
            "google_client_id": CLIENT_ID,
            "google_client_secret": CLIENT_SECRET,
            "google_auth_url": f"{base_url}/google/auth",
            "google_token_url": f"{base_url}/google/token",
            "google_jwks_url": f"{base_url}/google/certs",
            "google_issuer": GOOGLE_ISSUER,
            "facebook_client_id": CLIENT_ID,
            "facebook_client_secret": CLIENT_SECRET,
            "facebook_auth_url": f"{base_url}/facebook/dialog/oauth",
            "facebook_token_url": f"{base_url}/facebook/oauth/access_token",
            "facebook_graph_url": f"{base_url}/facebook",
        }
