"""What every resolver can reach through ``info.context``."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from graphql import ExecutionResult as GraphQLExecutionResult
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry import Info as StrawberryInfo

from auth.crypto import FieldCipher
from auth.oauth import OAuthProvider
from auth.passwords import PasswordHasher
from auth.revocations import RevokedSessions
from auth.viewer import Viewer
from db.catalogue import AmenityCatalogue
from db.database import Database
from db.loaders import Loaders
from gateways.cache import Cache
from gateways.calendar_feeds import FeedFetcher
from gateways.email import Mailer
from gateways.pubsub import LocalPubSub, PubSub
from gateways.storage import Storage
from services.bookings import BookingRules
from services.payments import Gateways
from services.payouts import PayoutPolicy
from services.platform_settings import PlatformSettings, PlatformSettingsCache, defaults_of
from services.ratelimits import AttemptLimits
from services.sessions import Client, SessionPolicy


@dataclass(frozen=True)
class Services:
    """Built once per process: the collaborators resolvers hand to services."""

    passwords: PasswordHasher
    session_policy: SessionPolicy
    cipher: FieldCipher
    attempt_limits: AttemptLimits
    mailer: Mailer
    storage: Storage
    oauth_providers: dict[str, OAuthProvider]
    amenities: AmenityCatalogue
    response_cache: Cache
    frontend_url: str
    booking_rules: BookingRules
    payment_gateways: Gateways
    payout_policy: PayoutPolicy
    clock: Callable[[], datetime]
    """Now, as an aware datetime; tests drive it instead of sleeping."""
    revoked_sessions: RevokedSessions
    """Ended sessions, whose access tokens are refused; started with the app."""
    platform_settings: PlatformSettingsCache
    """What admins changed of the settings below; started with the app."""
    review_writes_per_minute: int = 10
    """Reviews, changes and answers one account may write in any 60 seconds."""
    messages_per_minute: int = 20
    """Messages one account may send in any 60 seconds."""
    pubsub: PubSub = field(default_factory=LocalPubSub)
    """Live delivery to subscriptions; started with the app."""
    phone_codes_per_hour: int = 5
    """Phone verification codes one account may have texted in any hour."""
    message_email_delay: timedelta = timedelta(minutes=5)
    """How long a message may stay unread before its recipient, away, is mailed about it."""
    listing_moderation: bool = False
    """Whether listings wait for an admin's review, unless an admin changed it."""
    public_url: str = "http://127.0.0.1:8000"
    """Where this API is reached from outside (ROOST_PUBLIC_URL): calendar feed URLs."""
    calendar_feeds: FeedFetcher = field(default_factory=FeedFetcher)
    """Fetches other sites' calendars, refusing private addresses unless told otherwise."""
    calendar_import_every: timedelta = timedelta(minutes=30)
    """How often each imported calendar is fetched again."""

    @property
    def default_settings(self) -> PlatformSettings:
        """The environment's settings (``booking_rules``, ``payout_policy`` and the above)."""
        return defaults_of(
            self.booking_rules, self.payout_policy, moderation_enabled=self.listing_moderation
        )

    async def current_settings(self) -> PlatformSettings:
        """The settings in force: admins' changes over the environment's."""
        return await self.platform_settings.current(self.default_settings)

    async def current_booking_rules(self) -> BookingRules:
        return (await self.current_settings()).booking_rules(self.booking_rules)

    async def current_payout_policy(self) -> PayoutPolicy:
        return (await self.current_settings()).payout_policy(self.payout_policy)


@dataclass
class Context:
    request: Request | WebSocket
    response: Response | None
    viewer: Viewer
    database: Database
    loaders: Loaders
    services: Services
    client: Client
    refusal: Exception | None = None
    """Why the request is refused before it runs (schema/authentication.py), if it is."""
    answered: GraphQLExecutionResult | Exception | None = None
    """graphql-core's answer with errors, or the exception its execution raised, found before
    strawberry's execute ran (RoostSchema.answer_query): execute presents it instead of
    executing the operation again."""


Info = StrawberryInfo[Context, None]
