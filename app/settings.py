"""Roost's configuration, read once from the environment.

Every variable has a safe development default. In production the secrets must be given; in
development they are generated once and kept under ``ROOST_DATA_DIR`` so tokens survive restarts.
"""

import base64
import ipaddress
import json
import os
import re
import secrets
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Annotated, Literal, NamedTuple
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Secrets that development generates for itself and production must be given.
GENERATED_SECRETS = ("jwt_secret", "field_encryption_key")


class ConfigurationError(Exception):
    """The environment does not describe a Roost that can start."""


class CloudinaryAccount(NamedTuple):
    cloud_name: str
    api_key: str
    api_secret: SecretStr


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    env: Literal["development", "production"] = Field("development", validation_alias="ROOST_ENV")
    data_dir: Path = Field(Path(".roost"), validation_alias="ROOST_DATA_DIR")
    database_url: str | None = Field(None, validation_alias="DATABASE_URL")
    redis_url: str | None = Field(None, validation_alias="REDIS_URL")
    # Every Redis key starts with it, so environments can share one Redis.
    redis_prefix: str = Field("roost:", validation_alias="ROOST_REDIS_PREFIX")
    jwt_secret: SecretStr | None = Field(None, validation_alias="JWT_SECRET")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        ["http://localhost:3000", "http://127.0.0.1:3000", "http://localhost:5173"],
        validation_alias="ROOST_CORS_ORIGINS",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias="ROOST_LOG_LEVEL"
    )
    # Limits on every request.
    max_body_bytes: int = Field(1_048_576, gt=0, validation_alias="ROOST_MAX_BODY_BYTES")
    request_timeout_seconds: float = Field(
        15.0, gt=0, validation_alias="ROOST_REQUEST_TIMEOUT_SECONDS"
    )
    statement_timeout_ms: int = Field(5_000, gt=0, validation_alias="ROOST_STATEMENT_TIMEOUT_MS")
    max_query_depth: int = Field(12, gt=0, validation_alias="ROOST_MAX_QUERY_DEPTH")
    max_aliases: int = Field(30, gt=0, validation_alias="ROOST_MAX_ALIASES")
    # Parsing and validating cost tens of microseconds a token in pure Python: 4,000 tokens of a
    # flat document took 70-140 ms here. Real documents use a few hundred (GraphiQL's
    # introspection query: 300); GraphQL Armor's default is 1,000.
    max_tokens: int = Field(2_000, gt=0, validation_alias="ROOST_MAX_TOKENS")
    max_query_length: int = Field(50_000, gt=0, validation_alias="ROOST_MAX_QUERY_LENGTH")
    max_query_cost: int = Field(100_000, gt=0, validation_alias="ROOST_MAX_QUERY_COST")
    db_pool_size: int = Field(10, gt=0, validation_alias="ROOST_DB_POOL_SIZE")
    # Anonymous search responses are kept this long (0: not at all); any change to listings,
    # calendars or bookings makes them stale at once.
    search_cache_seconds: int = Field(30, ge=0, validation_alias="ROOST_SEARCH_CACHE_SECONDS")

    # Accounts and sessions.
    field_encryption_key: SecretStr | None = Field(
        None, validation_alias="ROOST_FIELD_ENCRYPTION_KEY"
    )
    jwt_issuer: str = Field("roost", validation_alias="ROOST_JWT_ISSUER")
    jwt_audience: str = Field("roost-api", validation_alias="ROOST_JWT_AUDIENCE")
    access_token_minutes: int = Field(
        15, gt=0, le=60, validation_alias="ROOST_ACCESS_TOKEN_MINUTES"
    )
    refresh_token_days: int = Field(30, gt=0, validation_alias="ROOST_REFRESH_TOKEN_DAYS")
    argon2_time_cost: int = Field(3, ge=1, validation_alias="ROOST_ARGON2_TIME_COST")
    argon2_memory_kib: int = Field(65_536, ge=8_192, validation_alias="ROOST_ARGON2_MEMORY_KIB")
    password_hash_concurrency: int = Field(
        2, ge=1, validation_alias="ROOST_PASSWORD_HASH_CONCURRENCY"
    )
    frontend_url: str = Field("http://localhost:3000", validation_alias="ROOST_FRONTEND_URL")
    # Where this API is reached from outside; media URLs are built on it.
    public_url: str = Field("http://127.0.0.1:8000", validation_alias="ROOST_PUBLIC_URL")
    # Peers whose X-Forwarded-For is believed (comma-separated IPs or CIDRs); nobody by default.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        [], validation_alias="ROOST_TRUSTED_PROXIES"
    )
    # Who may read /metrics: a bearer token, and/or addresses or networks (comma-separated).
    # With neither, development answers loopback only and production nobody.
    metrics_token: SecretStr | None = Field(None, validation_alias="ROOST_METRICS_TOKEN")
    metrics_allow: Annotated[list[str], NoDecode] = Field(
        [], validation_alias="ROOST_METRICS_ALLOW"
    )
    auth_attempts_per_minute_per_ip: int = Field(
        30, ge=1, validation_alias="ROOST_AUTH_ATTEMPTS_PER_MINUTE_PER_IP"
    )
    auth_attempts_per_minute_per_account: int = Field(
        10, ge=1, validation_alias="ROOST_AUTH_ATTEMPTS_PER_MINUTE_PER_ACCOUNT"
    )
    review_writes_per_minute: int = Field(
        10, ge=1, validation_alias="ROOST_REVIEW_WRITES_PER_MINUTE"
    )
    messages_per_minute: int = Field(20, ge=1, validation_alias="ROOST_MESSAGES_PER_MINUTE")
    # Websockets: what one connection may hold open, and how long it outlives its access token
    # (time for the client to reconnect with a fresh one, or to send it in a ping).
    max_subscriptions_per_connection: int = Field(
        20, ge=1, validation_alias="ROOST_MAX_SUBSCRIPTIONS_PER_CONNECTION"
    )
    websocket_token_grace_seconds: float = Field(
        60.0, ge=0, validation_alias="ROOST_WEBSOCKET_TOKEN_GRACE_SECONDS"
    )
    websocket_init_timeout_seconds: float = Field(
        10.0, gt=0, validation_alias="ROOST_WEBSOCKET_INIT_TIMEOUT_SECONDS"
    )
    # Each code is a paid text message: asking is limited per account (and per client) per hour.
    phone_codes_per_hour: int = Field(5, ge=1, validation_alias="ROOST_PHONE_CODES_PER_HOUR")
    # A recipient who has not read a message this long after it came is away: they get a mail.
    message_email_delay_seconds: int = Field(
        300, ge=0, validation_alias="ROOST_MESSAGE_EMAIL_DELAY_SECONDS"
    )

    # Sign-in with Google and Facebook: enabled when the client id and secret are set.
    google_client_id: str | None = Field(None, validation_alias="GOOGLE_CLIENT_ID")
    google_client_secret: SecretStr | None = Field(None, validation_alias="GOOGLE_CLIENT_SECRET")
    google_auth_url: str = Field(
        "https://accounts.google.com/o/oauth2/v2/auth", validation_alias="GOOGLE_AUTH_URL"
    )
    google_token_url: str = Field(
        "https://oauth2.googleapis.com/token", validation_alias="GOOGLE_TOKEN_URL"
    )
    google_jwks_url: str = Field(
        "https://www.googleapis.com/oauth2/v3/certs", validation_alias="GOOGLE_JWKS_URL"
    )
    google_issuer: str = Field("https://accounts.google.com", validation_alias="GOOGLE_ISSUER")
    facebook_client_id: str | None = Field(None, validation_alias="FACEBOOK_CLIENT_ID")
    facebook_client_secret: SecretStr | None = Field(
        None, validation_alias="FACEBOOK_CLIENT_SECRET"
    )
    facebook_auth_url: str = Field(
        "https://www.facebook.com/v19.0/dialog/oauth", validation_alias="FACEBOOK_AUTH_URL"
    )
    facebook_token_url: str = Field(
        "https://graph.facebook.com/v19.0/oauth/access_token",
        validation_alias="FACEBOOK_TOKEN_URL",
    )
    facebook_graph_url: str = Field(
        "https://graph.facebook.com/v19.0", validation_alias="FACEBOOK_GRAPH_URL"
    )

    # Daily exchange rates (the European Central Bank's reference rates).
    exchange_rates_url: str = Field(
        "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml",
        validation_alias="ROOST_EXCHANGE_RATES_URL",
    )

    # PayPal (Orders v2): offered when the client id and secret are set. The sandbox by
    # default; https://api-m.paypal.com is the live API. The webhook id verifies PayPal's events.
    paypal_client_id: str | None = Field(None, validation_alias="PAYPAL_CLIENT_ID")
    paypal_client_secret: SecretStr | None = Field(None, validation_alias="PAYPAL_CLIENT_SECRET")
    paypal_api_base: str = Field(
        "https://api-m.sandbox.paypal.com", validation_alias="PAYPAL_API_BASE"
    )
    paypal_webhook_id: str | None = Field(None, validation_alias="PAYPAL_WEBHOOK_ID")

    # M-Pesa (Safaricom Daraja, M-Pesa Express): offered for KES when the consumer key and
    # secret, the shortcode, the passkey and the callback secret are set. The sandbox by
    # default; https://api.safaricom.co.ke is the live API. Daraja posts each payment's result
    # to {MPESA_CALLBACK_BASE}/webhooks/mpesa/{MPESA_CALLBACK_SECRET} (the base defaults to
    # ROOST_PUBLIC_URL): the secret in the URL is all that tells those posts from forgeries.
    mpesa_consumer_key: str | None = Field(None, validation_alias="MPESA_CONSUMER_KEY")
    mpesa_consumer_secret: SecretStr | None = Field(None, validation_alias="MPESA_CONSUMER_SECRET")
    mpesa_shortcode: str | None = Field(None, validation_alias="MPESA_SHORTCODE")
    mpesa_passkey: SecretStr | None = Field(None, validation_alias="MPESA_PASSKEY")
    mpesa_api_base: str = Field(
        "https://sandbox.safaricom.co.ke", validation_alias="MPESA_API_BASE"
    )
    mpesa_callback_base: str | None = Field(None, validation_alias="MPESA_CALLBACK_BASE")
    mpesa_callback_secret: SecretStr | None = Field(None, validation_alias="MPESA_CALLBACK_SECRET")
    # Refunds are B2C payments back to the number that paid, made as the org portal's API
    # initiator: its name and its password encrypted with M-Pesa's public key, as the portal
    # gives it. Without both, M-Pesa refunds are left to a person. The shortcode paid from is
    # MPESA_SHORTCODE unless MPESA_B2C_SHORTCODE names a B2C (bulk disbursement) one.
    mpesa_initiator_name: str | None = Field(None, validation_alias="MPESA_INITIATOR_NAME")
    mpesa_security_credential: SecretStr | None = Field(
        None, validation_alias="MPESA_SECURITY_CREDENTIAL"
    )
    mpesa_b2c_shortcode: str | None = Field(None, validation_alias="MPESA_B2C_SHORTCODE")

    # File storage for uploads.
    storage_backend: Literal["local", "s3", "cloudinary"] = Field(
        "local", validation_alias="ROOST_STORAGE_BACKEND"
    )
    s3_bucket: str | None = Field(None, validation_alias="S3_BUCKET")
    s3_region: str = Field("us-east-1", validation_alias="S3_REGION")
    s3_endpoint_url: str | None = Field(None, validation_alias="S3_ENDPOINT_URL")
    s3_public_url: str | None = Field(None, validation_alias="S3_PUBLIC_URL")
    s3_access_key_id: str | None = Field(None, validation_alias="S3_ACCESS_KEY_ID")
    s3_secret_access_key: SecretStr | None = Field(None, validation_alias="S3_SECRET_ACCESS_KEY")
    # Cloudinary: CLOUDINARY_URL as its console gives it (cloudinary://<key>:<secret>@<cloud>),
    # or the three parts apart (they win over the URL's). The bases are Cloudinary's own
    # unless tests point them at a stand-in.
    cloudinary_url: SecretStr | None = Field(None, validation_alias="CLOUDINARY_URL")
    cloudinary_cloud_name: str | None = Field(None, validation_alias="CLOUDINARY_CLOUD_NAME")
    cloudinary_api_key: str | None = Field(None, validation_alias="CLOUDINARY_API_KEY")
    cloudinary_api_secret: SecretStr | None = Field(None, validation_alias="CLOUDINARY_API_SECRET")
    cloudinary_api_base: str = Field(
        "https://api.cloudinary.com", validation_alias="CLOUDINARY_API_BASE"
    )
    cloudinary_delivery_base: str = Field(
        "https://res.cloudinary.com", validation_alias="CLOUDINARY_DELIVERY_BASE"
    )

    # Email.
    email_backend: Literal["console", "file", "smtp", "sendgrid", "mailgun"] = Field(
        "console", validation_alias="ROOST_EMAIL_BACKEND"
    )
    email_from: str = Field("Roost <no-reply@roost.example>", validation_alias="ROOST_EMAIL_FROM")
    smtp_host: str = Field("127.0.0.1", validation_alias="SMTP_HOST")
    smtp_port: int = Field(25, validation_alias="SMTP_PORT")
    smtp_username: str | None = Field(None, validation_alias="SMTP_USERNAME")
    smtp_password: SecretStr | None = Field(None, validation_alias="SMTP_PASSWORD")
    smtp_starttls: bool = Field(False, validation_alias="SMTP_STARTTLS")
    sendgrid_api_key: SecretStr | None = Field(None, validation_alias="SENDGRID_API_KEY")
    sendgrid_api_base: str = Field("https://api.sendgrid.com", validation_alias="SENDGRID_API_BASE")
    mailgun_api_key: SecretStr | None = Field(None, validation_alias="MAILGUN_API_KEY")
    mailgun_domain: str | None = Field(None, validation_alias="MAILGUN_DOMAIN")
    # https://api.eu.mailgun.net for a domain in Mailgun's EU region.
    mailgun_api_base: str = Field("https://api.mailgun.net", validation_alias="MAILGUN_API_BASE")

    # Text messages: logged in development, or sent through Twilio.
    sms_backend: Literal["console", "twilio"] = Field(
        "console", validation_alias="ROOST_SMS_BACKEND"
    )
    twilio_account_sid: str | None = Field(None, validation_alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: SecretStr | None = Field(None, validation_alias="TWILIO_AUTH_TOKEN")
    twilio_from: str | None = Field(None, validation_alias="TWILIO_FROM")
    twilio_api_base: str = Field("https://api.twilio.com", validation_alias="TWILIO_API_BASE")

    # Bookings: the platform's fees and taxes, and how long holds last.
    guest_service_fee_percent: Decimal = Field(
        Decimal(14), ge=0, le=100, validation_alias="ROOST_GUEST_SERVICE_FEE_PERCENT"
    )
    occupancy_tax_percent: Decimal = Field(
        Decimal(0), ge=0, le=100, validation_alias="ROOST_OCCUPANCY_TAX_PERCENT"
    )
    # Per country, over the platform rate: '{"PT": "6", "FR": "5.5"}'.
    occupancy_tax_percent_by_country: dict[str, Decimal] = Field(
        default_factory=dict, validation_alias="ROOST_OCCUPANCY_TAX_PERCENT_BY_COUNTRY"
    )
    payment_window_minutes: int = Field(15, gt=0, validation_alias="ROOST_PAYMENT_WINDOW_MINUTES")
    host_response_hours: int = Field(24, gt=0, validation_alias="ROOST_HOST_RESPONSE_HOURS")
    max_pending_bookings_per_guest: int = Field(
        5, gt=0, validation_alias="ROOST_MAX_PENDING_BOOKINGS_PER_GUEST"
    )

    # Host payouts: Roost's fee on the host's side, and how long after a stay ends its host
    # is paid (a day, so that a problem at check-out can still be raised).
    host_fee_percent: Decimal = Field(
        Decimal(3), ge=0, le=100, validation_alias="ROOST_HOST_FEE_PERCENT"
    )
    payout_delay_hours: float = Field(24, ge=0, validation_alias="ROOST_PAYOUT_DELAY_HOURS")
    # Whether new and edited listings wait for an admin's approval before guests see them.
    listing_moderation: bool = Field(False, validation_alias="ROOST_LISTING_MODERATION")

    # Stripe: offered to guests when the secret key is set (sk_test_... for Stripe's test mode).
    stripe_api_key: SecretStr | None = Field(None, validation_alias="STRIPE_API_KEY")
    # Webhook signing secrets, comma-separated: the old and the new one while a secret is rolled.
    stripe_webhook_secret: Annotated[list[SecretStr], NoDecode] = Field(
        [], validation_alias="STRIPE_WEBHOOK_SECRET"
    )
    stripe_api_base: str = Field("https://api.stripe.com", validation_alias="STRIPE_API_BASE")

    # Calendar sync: how often each imported calendar is fetched again, and whether its URL may
    # point at private, loopback or link-local addresses (for tests against a local server
    # only: imported URLs are typed by hosts, and these would let them reach our network).
    calendar_import_minutes: int = Field(
        30, ge=1, le=24 * 60, validation_alias="ROOST_CALENDAR_IMPORT_MINUTES"
    )
    calendar_import_allow_private: bool = Field(
        False, validation_alias="ROOST_CALENDAR_IMPORT_ALLOW_PRIVATE"
    )
    # Tests only: every query a compiled plan answers is executed by graphql-core too, and a
    # difference fails the request (schema/compiled.py). Twice the work; production refuses it.
    execution_shadow: bool = Field(False, validation_alias="ROOST_EXECUTION_SHADOW")
    # Workers: `roost worker`, and the one loop `roost serve` runs in development.
    run_worker_in_process: bool | None = Field(None, validation_alias="ROOST_RUN_WORKER_IN_PROCESS")
    worker_poll_seconds: float = Field(1.0, gt=0, validation_alias="ROOST_WORKER_POLL_SECONDS")
    worker_lease_seconds: int = Field(60, gt=0, validation_alias="ROOST_WORKER_LEASE_SECONDS")
    worker_max_attempts: int = Field(8, gt=0, validation_alias="ROOST_WORKER_MAX_ATTEMPTS")
    # Touched after every pass and every event; `python -m app.healthcheck worker` reads it.
    worker_heartbeat_file: Path | None = Field(None, validation_alias="ROOST_WORKER_HEARTBEAT_FILE")

    @field_validator("cors_origins", "trusted_proxies", "metrics_allow", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("stripe_webhook_secret", mode="before")
    @classmethod
    def _split_secrets(cls, value: object) -> object:
        if isinstance(value, str):
            return [secret.strip() for secret in value.split(",") if secret.strip()]
        return value

    @field_validator("trusted_proxies", "metrics_allow")
    @classmethod
    def _check_proxies(cls, proxies: list[str]) -> list[str]:
        for proxy in proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(f"{proxy!r} is not an IP address or network") from None
        return proxies

    @field_validator("occupancy_tax_percent_by_country")
    @classmethod
    def _check_tax_rates(cls, rates: dict[str, Decimal]) -> dict[str, Decimal]:
        for country, rate in rates.items():
            if len(country) != 2 or not country.isalpha() or not 0 <= rate <= 100:
                raise ValueError(f"{country}: {rate} is not a country code with a percentage")
        return {country.upper(): rate for country, rate in rates.items()}

    @field_validator("mpesa_callback_secret")
    @classmethod
    def _check_callback_secret(cls, secret: SecretStr | None) -> SecretStr | None:
        # It is the callback's only authentication: long enough not to be guessed, and
        # plain enough to sit in a URL path as it is.
        plain = re.compile(r"[A-Za-z0-9_-]{24,}")
        if secret is not None and not plain.fullmatch(secret.get_secret_value()):
            raise ValueError("must be at least 24 characters of A-Z, a-z, 0-9, _ and -")
        return secret

    @property
    def mpesa_configured(self) -> bool:
        return None not in (
            self.mpesa_consumer_key,
            self.mpesa_consumer_secret,
            self.mpesa_shortcode,
            self.mpesa_passkey,
            self.mpesa_callback_secret,
        )

    @property
    def mpesa_callback_url(self) -> str:
        """Where Daraja posts each payment's result."""
        base = (self.mpesa_callback_base or self.public_url).rstrip("/")
        secret = self.mpesa_callback_secret.get_secret_value() if self.mpesa_callback_secret else ""
        return f"{base}/webhooks/mpesa/{secret}"

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def worker_in_process(self) -> bool:
        """Whether the API process runs a worker loop: by default only in development."""
        if self.run_worker_in_process is not None:
            return self.run_worker_in_process
        return not self.is_production

    @property
    def pg_data_dir(self) -> Path:
        return self.data_dir / "pg"

    def cloudinary_account(self) -> CloudinaryAccount:
        """The cloud name, key and secret from the separate settings, else from CLOUDINARY_URL;
        raises ConfigurationError (never echoing the secret) when any is missing."""
        cloud_name, api_key = self.cloudinary_cloud_name, self.cloudinary_api_key
        api_secret = self.cloudinary_api_secret
        if self.cloudinary_url is not None:
            parts = urlsplit(self.cloudinary_url.get_secret_value().strip())
            if parts.scheme != "cloudinary" or not parts.hostname:
                raise ConfigurationError(
                    "CLOUDINARY_URL must read cloudinary://<api_key>:<api_secret>@<cloud_name>."
                )
            cloud_name = cloud_name or parts.hostname
            api_key = api_key or (unquote(parts.username) if parts.username else None)
            if api_secret is None and parts.password:
                api_secret = SecretStr(unquote(parts.password))
        missing = [
            name
            for name, value in (
                ("CLOUDINARY_CLOUD_NAME", cloud_name),
                ("CLOUDINARY_API_KEY", api_key),
                ("CLOUDINARY_API_SECRET", api_secret and api_secret.get_secret_value()),
            )
            if not value
        ]
        if missing or cloud_name is None or api_key is None or api_secret is None:
            raise ConfigurationError(
                f"ROOST_STORAGE_BACKEND=cloudinary needs CLOUDINARY_URL "
                f"(cloudinary://<api_key>:<api_secret>@<cloud_name>) or {', '.join(missing)}."
            )
        return CloudinaryAccount(cloud_name, api_key, api_secret)

    def require_jwt_secret(self) -> str:
        return _require(self.jwt_secret, "JWT_SECRET")

    def require_field_encryption_key(self) -> str:
        return _require(self.field_encryption_key, "ROOST_FIELD_ENCRYPTION_KEY")


def _require(secret: SecretStr | None, name: str) -> str:
    if secret is None:
        raise ConfigurationError(f"{name} is missing; settings come from load_settings()")
    return secret.get_secret_value()


def _complete_development_secrets(settings: Settings) -> Settings:
    """Fill missing secrets from ``$ROOST_DATA_DIR/secrets.json``, creating them once."""
    missing = [name for name in GENERATED_SECRETS if getattr(settings, name) is None]
    if not missing:
        return settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / "secrets.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if any(name not in stored for name in missing):
        for name in missing:
            # 32 random bytes, url-safe base64: a JWT secret, and an AES-256 key.
            stored.setdefault(name, base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
        # Written owner-only, then renamed, so a crash never leaves half a file.
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            json.dump(stored, file)
        tmp.replace(path)
    return settings.model_copy(update={name: SecretStr(stored[name]) for name in missing})


def load_settings() -> Settings:
    """Read the environment and check it is complete for the chosen ``ROOST_ENV``."""
    try:
        settings = Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}" for problem in error.errors()
        )
        raise ConfigurationError(f"The configuration is not valid: {problems}") from None
    if settings.is_production:
        missing = [
            alias
            for name, alias in (
                ("database_url", "DATABASE_URL"),
                ("jwt_secret", "JWT_SECRET"),
                ("field_encryption_key", "ROOST_FIELD_ENCRYPTION_KEY"),
            )
            if getattr(settings, name) is None
        ]
        if missing:
            raise ConfigurationError(
                f"ROOST_ENV=production needs {', '.join(missing)} to be set; "
                "refusing to start without them."
            )
        if len(settings.require_jwt_secret()) < 32:
            raise ConfigurationError("JWT_SECRET must be at least 32 characters long.")
        if settings.calendar_import_allow_private:
            # Fetching hosts' feed URLs from inside the network is a request forgery surface.
            raise ConfigurationError(
                "ROOST_CALENDAR_IMPORT_ALLOW_PRIVATE is for tests; production refuses it."
            )
        if settings.execution_shadow:
            raise ConfigurationError("ROOST_EXECUTION_SHADOW is for tests; production refuses it.")
    else:
        settings = _complete_development_secrets(settings)
    _check_field_encryption_key(settings.require_field_encryption_key())
    if settings.storage_backend == "s3" and not settings.s3_bucket:
        raise ConfigurationError("ROOST_STORAGE_BACKEND=s3 needs S3_BUCKET.")
    if settings.storage_backend == "cloudinary":
        settings.cloudinary_account()
    _check_messaging(settings)
    return settings


# What each messaging backend needs: (setting, variable) pairs.
_MESSAGING_NEEDS: dict[str, tuple[tuple[str, str], ...]] = {
    "ROOST_EMAIL_BACKEND=sendgrid": (("sendgrid_api_key", "SENDGRID_API_KEY"),),
    "ROOST_EMAIL_BACKEND=mailgun": (
        ("mailgun_api_key", "MAILGUN_API_KEY"),
        ("mailgun_domain", "MAILGUN_DOMAIN"),
    ),
    "ROOST_SMS_BACKEND=twilio": (
        ("twilio_account_sid", "TWILIO_ACCOUNT_SID"),
        ("twilio_auth_token", "TWILIO_AUTH_TOKEN"),
        ("twilio_from", "TWILIO_FROM"),
    ),
}


def _check_messaging(settings: Settings) -> None:
    for chosen in (
        f"ROOST_EMAIL_BACKEND={settings.email_backend}",
        f"ROOST_SMS_BACKEND={settings.sms_backend}",
    ):
        missing = [
            alias for name, alias in _MESSAGING_NEEDS.get(chosen, ()) if not getattr(settings, name)
        ]
        if missing:
            raise ConfigurationError(f"{chosen} needs {', '.join(missing)}.")


def _check_field_encryption_key(key: str) -> None:
    try:
        raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ConfigurationError(
            "ROOST_FIELD_ENCRYPTION_KEY must be 32 random bytes in url-safe base64, e.g. the "
            "output of `openssl rand -base64 32 | tr '+/' '-_'`."
        )


@cache
def get_settings() -> Settings:
    return load_settings()
