"""Shared steps of the review tests: completed stays, the review operations, and reading them."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta

import httpx
from starlette.applications import Starlette

from app.wiring import build_worker
from app.worker import Worker
from tests.accounts_helpers import register
from tests.booking_helpers import TODAY, Place, a_place, booked, pay
from tests.helpers import FakeClock, gql

REVIEW_FIELDS = """
  id kind rating comment cleanliness accuracy communication location checkIn value
  hostResponse respondedAt createdAt updatedAt publishedAt hidden hiddenReason authorSuspended
  author { id firstName } subject { id } listing { id } booking { id }
"""
CREATE_REVIEW = f"""
mutation($input: CreateReviewInput!) {{ createReview(input: $input) {{ {REVIEW_FIELDS} }} }}
"""
REVIEW_GUEST = f"""
mutation($input: ReviewGuestInput!) {{ reviewGuest(input: $input) {{ {REVIEW_FIELDS} }} }}
"""
UPDATE_REVIEW = f"""
mutation($id: ID!, $input: UpdateReviewInput!) {{
  updateReview(id: $id, input: $input) {{ {REVIEW_FIELDS} }}
}}
"""
RESPOND = f"""
mutation($id: ID!, $response: String!) {{
  respondToReview(reviewId: $id, response: $response) {{ {REVIEW_FIELDS} }}
}}
"""
HIDE = f"""
mutation($id: ID!, $reason: String!) {{
  hideReview(id: $id, reason: $reason) {{ {REVIEW_FIELDS} }}
}}
"""
UNHIDE = f"mutation($id: ID!) {{ unhideReview(id: $id) {{ {REVIEW_FIELDS} }} }}"
LISTING_REVIEWS = f"""
query($id: ID!, $first: Int, $after: String) {{
  listing(id: $id) {{
    rating reviewCount
    ratingCategories {{ cleanliness accuracy communication location checkIn value }}
    reviews(first: $first, after: $after) {{
      totalCount edges {{ cursor node {{ {REVIEW_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }}
    }}
  }}
}}
"""
USER_REVIEWS = f"""
query($id: ID!) {{
  node(id: $id) {{
    ... on User {{ reviews {{ totalCount edges {{ node {{ {REVIEW_FIELDS} }} }} }} }}
  }}
}}
"""
SEARCH_BY_RATING = """
{ searchListings(sort: RATING, first: 100) { edges { node { id rating reviewCount } } } }
"""


@contextmanager
def review_writes_per_minute(app: Starlette, allowed: int) -> Iterator[None]:
    """The app's limit on review writes set to ``allowed`` for the block."""
    services = app.state.services
    app.state.services = replace(services, review_writes_per_minute=allowed)
    try:
        yield
    finally:
        app.state.services = replace(
            app.state.services, review_writes_per_minute=services.review_writes_per_minute
        )


def worker_of(app: Starlette) -> Worker:
    return build_worker(app.state.settings, app.state.database, app.state.services)


@dataclass
class Stay:
    """A booking of a place by its guest: ``booking_id`` and who is who."""

    place: Place
    booking_id: str

    @property
    def as_guest(self) -> dict[str, str]:
        return self.place.as_guest

    @property
    def as_host(self) -> dict[str, str]:
        return self.place.as_host


async def another_guest(client: httpx.AsyncClient, place: Place) -> Place:
    """The same listing and host, with a new guest."""
    return Place(place.listing_id, place.host, (await register(client))["accessToken"])


async def a_paid_stay(
    client: httpx.AsyncClient, place: Place, check_in: int = 1, check_out: int = 3
) -> Stay:
    """A CONFIRMED stay of [today + check_in, today + check_out) at ``place`` (instant book)."""
    booking = await booked(client, place, check_in, check_out)
    assert (await pay(client, place, booking["id"]))["status"] == "SUCCEEDED"
    return Stay(place, booking["id"])


def check_out_instant(offset: int) -> datetime:
    """11:00 in Lisbon (UTC in winter) on today + ``offset``: when a stay ending then ends."""
    return datetime.combine(TODAY + timedelta(days=offset), time(11, 0), tzinfo=UTC)


async def complete_stays(app: Starlette, clock: FakeClock, check_out: int) -> None:
    """Moves the clock past check-out on today + ``check_out`` and lets the worker complete."""
    clock.now = max(clock.now, check_out_instant(check_out))
    await worker_of(app).run_once()


async def a_completed_stay(
    app: Starlette, client: httpx.AsyncClient, clock: FakeClock, **listing: object
) -> Stay:
    """A stay of nights 1 and 2 from today, completed: the clock is just past its check-out."""
    stay = await a_paid_stay(client, await a_place(client, **listing))
    await complete_stays(app, clock, 3)
    return stay


async def review_stay(
    client: httpx.AsyncClient,
    stay: Stay,
    *,
    rating: int = 5,
    comment: str = "Lovely flat, quiet street.",
    headers: dict[str, str] | None = None,
    **categories: object,
) -> dict:
    """``createReview`` as the stay's guest (or ``headers``): the response body."""
    return await gql(
        client,
        CREATE_REVIEW,
        {
            "input": {
                "bookingId": stay.booking_id,
                "rating": rating,
                "comment": comment,
                **categories,
            }
        },
        headers=headers or stay.as_guest,
    )


async def reviewed(client: httpx.AsyncClient, stay: Stay, **values: object) -> dict:
    body = await review_stay(client, stay, **values)
    assert "errors" not in body, body
    return body["data"]["createReview"]


async def review_guest(
    client: httpx.AsyncClient,
    stay: Stay,
    *,
    rating: int = 4,
    comment: str = "Left the place tidy.",
    headers: dict[str, str] | None = None,
) -> dict:
    return await gql(
        client,
        REVIEW_GUEST,
        {"input": {"bookingId": stay.booking_id, "rating": rating, "comment": comment}},
        headers=headers or stay.as_host,
    )


async def listing_reviews(
    client: httpx.AsyncClient,
    listing_id: str,
    headers: dict[str, str] | None = None,
    **variables: object,
) -> dict:
    body = await gql(client, LISTING_REVIEWS, {"id": listing_id, **variables}, headers=headers)
    assert "errors" not in body, body
    listing: dict = body["data"]["listing"]
    return listing


def code_of(body: dict) -> str:
    assert "errors" in body, body
    code: str = body["errors"][0]["extensions"]["code"]
    return code


def fields_of(body: dict) -> dict[str, str]:
    fields: dict[str, str] = body["errors"][0]["extensions"].get("fields", {})
    return fields
