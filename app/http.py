"""The Starlette application factory."""

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Mount, Route, WebSocketRoute
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app import admin, rest
from app.graphql_view import RoostGraphQL
from app.metrics import Metrics, metrics_endpoint
from app.middleware import (
    BodySizeLimitMiddleware,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
)
from app.observability import configure_logging
from app.receipts import receipt_pdf
from app.rest import MediaFiles
from app.settings import Settings, get_settings
from app.uploads import MAX_REQUEST_BYTES as MAX_UPLOAD_REQUEST_BYTES
from app.uploads import upload_image
from app.websocket import LiveConnections
from app.wiring import build_services, build_worker
from db.database import Database
from db.migrate import ensure_schema_current
from schema.limits import DocumentLimits
from schema.root import build_schema

# A young collection every 50,000 new objects instead of 700: a request's or a live event's
# objects are mostly gone by then, so few are promoted to the old generation, and the full
# collections that walk every open connection's objects (300 ms with 1,000 open, holding the
# event loop) come far less often (bench/subscriptions.py).
GC_THRESHOLDS = (50_000, 20, 20)


def create_app(settings: Settings | None = None) -> Starlette:
    """Builds Roost from ``settings`` (by default, the environment).

    The database named by ``settings.database_url`` must exist: `roost serve` starts the
    embedded one before any worker calls this.
    """
    settings = settings or get_settings()
    database_url = settings.database_url
    if database_url is None:
        raise RuntimeError("create_app needs settings.database_url; `roost serve` provides it")
    configure_logging(settings.log_level)

    schema = build_schema(
        production=settings.is_production,
        limits=DocumentLimits(
            max_length=settings.max_query_length,
            max_tokens=settings.max_tokens,
            max_depth=settings.max_query_depth,
            max_aliases=settings.max_aliases,
            max_cost=settings.max_query_cost,
        ),
        execution_shadow=settings.execution_shadow,
    )
    graphql = RoostGraphQL(
        schema,
        graphql_ide=None if settings.is_production else "graphiql",
        allow_queries_via_get=True,
        subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
        # Pages of other origins may not open a websocket with the user's cookies.
        allowed_origins=settings.cors_origins,
        max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
        connection_init_wait_timeout=timedelta(seconds=settings.websocket_init_timeout_seconds),
        websocket_token_grace_seconds=settings.websocket_token_grace_seconds,
        request_timeout_seconds=settings.request_timeout_seconds,
        hide_suggestions=settings.is_production,
        cache_seconds=settings.search_cache_seconds,
    )

    media_dir = settings.data_dir / "media"
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.metrics = metrics
        app.state.database = Database(
            database_url,
            statement_timeout_ms=settings.statement_timeout_ms,
            pool_size=settings.db_pool_size,
        )
        redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
        app.state.redis = redis
        # One pool of outbound connections, with a deadline on every call to a provider.
        http = httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False)
        app.state.services = build_services(
            settings, database=app.state.database, redis=redis, http=http
        )
        media_dir.mkdir(parents=True, exist_ok=True)
        stop_worker = asyncio.Event()
        worker_loop = None
        revoked_sessions = app.state.services.revoked_sessions
        revoked_sessions.start()
        pubsub = app.state.services.pubsub
        pubsub.start()
        app.state.services.platform_settings.start()
        app.state.live_connections = LiveConnections(revoked_sessions)
        try:
            if settings.is_production:
                # Only `roost migrate` changes the schema in production; a worker started
                # against an older one refuses to serve rather than fail request by request.
                await ensure_schema_current(app.state.database.engine)
            if settings.worker_in_process:
                worker = build_worker(
                    settings, app.state.database, app.state.services, metrics=metrics
                )
                worker_loop = asyncio.create_task(worker.run_forever(stop_worker))
            # What startup built lives as long as the process: frozen out of the garbage
            # collector's walk (a full collection of it took 70 ms here, all that time holding
            # the event loop), so no collection stalls requests for long.
            gc.collect()
            gc.freeze()
            gc.set_threshold(*GC_THRESHOLDS)
            yield
        finally:
            stop_worker.set()
            if worker_loop is not None:
                await worker_loop
            await app.state.services.platform_settings.stop()
            await pubsub.stop()
            await revoked_sessions.stop()
            await app.state.database.dispose()
            await http.aclose()
            if redis is not None:
                await redis.aclose()

    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/uploads", upload_image, methods=["POST"]),
            Route("/receipts/{payment_id}", receipt_pdf, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            *rest.routes,
            *admin.routes,
            Mount("/media", MediaFiles(directory=media_dir, check_dir=False), name="media"),
        ],
        middleware=[
            # The client address comes from X-Forwarded-For only behind a configured proxy.
            Middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies),
            Middleware(SecurityHeadersMiddleware),
            Middleware(RequestContextMiddleware, metrics=metrics),
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                expose_headers=["X-Request-ID"],
                max_age=600,
            ),
            Middleware(
                BodySizeLimitMiddleware,
                default_limit=settings.max_body_bytes,
                limits_by_path={"/uploads": MAX_UPLOAD_REQUEST_BYTES},
            ),
        ],
        exception_handlers=rest.exception_handlers,
        lifespan=lifespan,
    )
