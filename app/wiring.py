"""Builds the collaborators that resolvers hand to services, from the settings."""

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx
from pydantic import SecretStr
from redis.asyncio import Redis

from app.settings import Settings
from app.worker import Worker, WorkerConfig
from auth.crypto import FieldCipher
from auth.oauth import FacebookProvider, GoogleProvider, OAuthProvider
from auth.passwords import PasswordHasher
from auth.revocations import RevokedSessions
from auth.tokens import AccessTokens
from db.catalogue import AmenityCatalogue
from db.database import Database
from gateways.cache import MemoryCache, RedisCache
from gateways.calendar_feeds import FeedFetcher
from gateways.email import (
    ConsoleMailer,
    FileMailer,
    Mailer,
    MailgunMailer,
    SendGridMailer,
    SmtpMailer,
)
from gateways.mpesa import Initiator, MpesaGateway
from gateways.payments import PaymentGateway, TestPaymentGateway
from gateways.paypal import PayPalGateway
from gateways.pubsub import LocalPubSub, PubSub, RedisPubSub
from gateways.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from gateways.sms import ConsoleTexter, Texter, TwilioTexter
from gateways.storage import CloudinaryStorage, LocalStorage, S3Storage, Storage
from gateways.stripe import StripeGateway
from schema.context import Services
from services.bookings import BookingRules
from services.payments import Gateways
from services.payouts import PayoutPolicy
from services.platform_settings import PlatformSettingsCache
from services.pricing import FeePolicy
from services.ratelimits import AttemptLimits
from services.sessions import SessionPolicy

# `roost worker` serves no /metrics: prometheus-client stays unloaded there.
if TYPE_CHECKING:
    from app.metrics import Metrics


def build_password_hasher(settings: Settings) -> PasswordHasher:
    return PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_kib=settings.argon2_memory_kib,
        max_concurrent=settings.password_hash_concurrency,
    )


def build_mailer(settings: Settings, http: httpx.AsyncClient | None = None) -> Mailer:
    """``http`` is the process's client; without one, the HTTP APIs get their own."""
    if settings.email_backend == "sendgrid":
        return SendGridMailer(
            http or httpx.AsyncClient(timeout=20),
            api_key=_revealed(settings.sendgrid_api_key),
            sender=settings.email_from,
            api_base=settings.sendgrid_api_base,
        )
    if settings.email_backend == "mailgun":
        return MailgunMailer(
            http or httpx.AsyncClient(timeout=20),
            api_key=_revealed(settings.mailgun_api_key),
            domain=settings.mailgun_domain or "",
            sender=settings.email_from,
            api_base=settings.mailgun_api_base,
        )
    if settings.email_backend == "smtp":
        return SmtpMailer(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.email_from,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            starttls=settings.smtp_starttls,
        )
    if settings.email_backend == "file":
        return FileMailer(settings.data_dir / "mail", settings.email_from)
    return ConsoleMailer()


def build_texter(settings: Settings, http: httpx.AsyncClient | None = None) -> Texter:
    if settings.sms_backend == "twilio":
        return TwilioTexter(
            http or httpx.AsyncClient(timeout=20),
            account_sid=settings.twilio_account_sid or "",
            auth_token=_revealed(settings.twilio_auth_token),
            sender=settings.twilio_from or "",
            api_base=settings.twilio_api_base,
        )
    return ConsoleTexter()


def build_storage(settings: Settings, http: httpx.AsyncClient | None = None) -> Storage:
    """``http`` is the process's client; without one, Cloudinary gets its own."""
    if settings.storage_backend == "cloudinary":
        account = settings.cloudinary_account()
        return CloudinaryStorage(
            http or httpx.AsyncClient(timeout=30),
            cloud_name=account.cloud_name,
            api_key=account.api_key,
            api_secret=account.api_secret.get_secret_value(),
            api_base=settings.cloudinary_api_base,
            delivery_base=settings.cloudinary_delivery_base,
        )
    if settings.storage_backend == "s3":
        bucket = settings.s3_bucket or ""
        endpoint = settings.s3_endpoint_url
        return S3Storage(
            bucket=bucket,
            region=settings.s3_region,
            endpoint_url=endpoint,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=(
                settings.s3_secret_access_key.get_secret_value()
                if settings.s3_secret_access_key
                else None
            ),
            public_base_url=settings.s3_public_url
            or (
                f"{endpoint.rstrip('/')}/{bucket}"
                if endpoint
                else f"https://{bucket}.s3.{settings.s3_region}.amazonaws.com"
            ),
        )
    return LocalStorage(settings.data_dir / "media", f"{settings.public_url}/media")


def build_oauth_providers(settings: Settings, http: httpx.AsyncClient) -> dict[str, OAuthProvider]:
    providers: dict[str, OAuthProvider] = {}
    if settings.google_client_id and settings.google_client_secret:
        issuer = settings.google_issuer
        providers["GOOGLE"] = GoogleProvider(
            client_id=settings.google_client_id,
            client_secret=settings.google_client_secret.get_secret_value(),
            auth_url=settings.google_auth_url,
            token_url=settings.google_token_url,
            jwks_url=settings.google_jwks_url,
            # Google writes its issuer with and without the scheme.
            issuers=(issuer, issuer.removeprefix("https://")),
            http=http,
        )
    if settings.facebook_client_id and settings.facebook_client_secret:
        providers["FACEBOOK"] = FacebookProvider(
            client_id=settings.facebook_client_id,
            client_secret=settings.facebook_client_secret.get_secret_value(),
            auth_url=settings.facebook_auth_url,
            token_url=settings.facebook_token_url,
            graph_url=settings.facebook_graph_url,
            http=http,
        )
    return providers


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_booking_rules(settings: Settings) -> BookingRules:
    return BookingRules(
        fees=FeePolicy(
            guest_service_fee_percent=settings.guest_service_fee_percent,
            occupancy_tax_percent=settings.occupancy_tax_percent,
            occupancy_tax_percent_by_country=settings.occupancy_tax_percent_by_country,
        ),
        payment_window=timedelta(minutes=settings.payment_window_minutes),
        host_response_window=timedelta(hours=settings.host_response_hours),
        max_pending_per_guest=settings.max_pending_bookings_per_guest,
    )


def build_payment_gateways(settings: Settings, http: httpx.AsyncClient | None = None) -> Gateways:
    """``http`` is the process's client; without one (`roost worker`), PayPal gets its own."""
    gateways: dict[str, PaymentGateway] = {}
    if not settings.is_production:  # TEST moves no real money: never offered in production
        gateways["TEST"] = TestPaymentGateway()
    if settings.stripe_api_key is not None:
        gateways["STRIPE"] = StripeGateway(
            api_key=settings.stripe_api_key.get_secret_value(), api_base=settings.stripe_api_base
        )
    if settings.paypal_client_id and settings.paypal_client_secret is not None:
        frontend = settings.frontend_url.rstrip("/")
        gateways["PAYPAL"] = PayPalGateway(
            http or httpx.AsyncClient(timeout=20),
            client_id=settings.paypal_client_id,
            client_secret=settings.paypal_client_secret.get_secret_value(),
            api_base=settings.paypal_api_base,
            return_url=f"{frontend}/payments/paypal/return",
            cancel_url=f"{frontend}/payments/paypal/cancel",
        )
    if settings.mpesa_configured:
        gateways["MPESA"] = MpesaGateway(
            http or httpx.AsyncClient(timeout=20),
            consumer_key=settings.mpesa_consumer_key or "",
            consumer_secret=_revealed(settings.mpesa_consumer_secret),
            shortcode=settings.mpesa_shortcode or "",
            passkey=_revealed(settings.mpesa_passkey),
            callback_url=settings.mpesa_callback_url,
            initiator=_mpesa_initiator(settings),
            api_base=settings.mpesa_api_base,
        )
    return Gateways(gateways)


def _mpesa_initiator(settings: Settings) -> Initiator | None:
    """Who M-Pesa refunds are made as; None (refunds left to a person) unless configured."""
    if not settings.mpesa_initiator_name or settings.mpesa_security_credential is None:
        return None
    return Initiator(
        name=settings.mpesa_initiator_name,
        security_credential=settings.mpesa_security_credential.get_secret_value(),
        shortcode=settings.mpesa_b2c_shortcode or settings.mpesa_shortcode or "",
    )


def _revealed(secret: SecretStr | None) -> str:
    return secret.get_secret_value() if secret is not None else ""


def build_calendar_feeds(settings: Settings) -> FeedFetcher:
    return FeedFetcher(allow_private=settings.calendar_import_allow_private)


def build_pubsub(settings: Settings, redis: Redis | None) -> PubSub:
    if redis is None:
        return LocalPubSub()
    return RedisPubSub(redis, prefix=f"{settings.redis_prefix}live:")


def build_worker(
    settings: Settings,
    database: Database,
    services: Services | None = None,
    *,
    pubsub: PubSub | None = None,
    metrics: "Metrics | None" = None,
) -> Worker:
    """The worker of an API process shares its services; `roost worker` builds only what it
    needs (it takes no requests, so no token secret; the field cipher reads phone numbers for
    text messages)."""
    return Worker(
        database,
        clock=services.clock if services else utc_now,
        gateways=services.payment_gateways if services else build_payment_gateways(settings),
        mailer=services.mailer if services else build_mailer(settings),
        frontend_url=settings.frontend_url,
        config=WorkerConfig(
            poll_seconds=settings.worker_poll_seconds,
            lease=timedelta(seconds=settings.worker_lease_seconds),
            max_attempts=settings.worker_max_attempts,
        ),
        heartbeat=settings.worker_heartbeat_file,
        rules=services.booking_rules if services else build_booking_rules(settings),
        payout_policy=services.payout_policy if services else build_payout_policy(settings),
        texter=build_texter(settings),
        # Phone numbers are stored encrypted; text messages need them in the clear.
        cipher=services.cipher
        if services
        else FieldCipher(settings.require_field_encryption_key()),
        pubsub=services.pubsub if services else pubsub,
        metrics=metrics,
        platform_settings=services.platform_settings
        if services
        else PlatformSettingsCache(database, pubsub=pubsub or LocalPubSub()),
        listing_moderation=services.listing_moderation if services else settings.listing_moderation,
        calendar_feeds=services.calendar_feeds if services else build_calendar_feeds(settings),
        calendar_import_every=services.calendar_import_every
        if services
        else timedelta(minutes=settings.calendar_import_minutes),
    )


def build_payout_policy(settings: Settings) -> PayoutPolicy:
    return PayoutPolicy(
        host_fee_percent=settings.host_fee_percent,
        delay=timedelta(hours=settings.payout_delay_hours),
    )


def build_services(
    settings: Settings, *, database: Database, redis: Redis | None, http: httpx.AsyncClient
) -> Services:
    limiter: RateLimiter = (
        RedisRateLimiter(redis, prefix=f"{settings.redis_prefix}ratelimit:")
        if redis is not None
        else MemoryRateLimiter()
    )
    access_tokens = AccessTokens(
        secret=settings.require_jwt_secret(),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        lifetime=timedelta(minutes=settings.access_token_minutes),
    )
    pubsub = build_pubsub(settings, redis)
    return Services(
        passwords=build_password_hasher(settings),
        session_policy=SessionPolicy(
            access_tokens=access_tokens,
            refresh_lifetime=timedelta(days=settings.refresh_token_days),
        ),
        cipher=FieldCipher(settings.require_field_encryption_key()),
        attempt_limits=AttemptLimits(
            limiter=limiter,
            per_ip=settings.auth_attempts_per_minute_per_ip,
            per_account=settings.auth_attempts_per_minute_per_account,
        ),
        mailer=build_mailer(settings, http),
        storage=build_storage(settings, http),
        oauth_providers=build_oauth_providers(settings, http),
        amenities=AmenityCatalogue(database),
        response_cache=(
            RedisCache(redis, prefix=f"{settings.redis_prefix}responses:")
            if redis is not None
            else MemoryCache()
        ),
        frontend_url=settings.frontend_url,
        booking_rules=build_booking_rules(settings),
        payment_gateways=build_payment_gateways(settings, http),
        payout_policy=build_payout_policy(settings),
        clock=utc_now,
        revoked_sessions=RevokedSessions(database, token_lifetime=access_tokens.lifetime),
        review_writes_per_minute=settings.review_writes_per_minute,
        messages_per_minute=settings.messages_per_minute,
        pubsub=pubsub,
        platform_settings=PlatformSettingsCache(database, pubsub=pubsub),
        listing_moderation=settings.listing_moderation,
        phone_codes_per_hour=settings.phone_codes_per_hour,
        message_email_delay=timedelta(seconds=settings.message_email_delay_seconds),
        public_url=settings.public_url,
        calendar_feeds=build_calendar_feeds(settings),
        calendar_import_every=timedelta(minutes=settings.calendar_import_minutes),
    )
