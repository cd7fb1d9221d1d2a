"""A listing's rating against its reviews: the mean of the published, visible ones after any
sequence of reviews, publications and hides, search's RATING order agreeing with it, and a
page of reviews costing the same statements whatever its size."""

import random
from datetime import timedelta

import httpx
import pytest
from starlette.applications import Starlette

from db.database import Database
from services.search_cache import current_generation
from tests.booking_helpers import a_place
from tests.helpers import FakeClock, StatementCounter, gql
from tests.receipt_helpers import an_admin
from tests.review_helpers import (
    HIDE,
    SEARCH_BY_RATING,
    UNHIDE,
    Stay,
    a_paid_stay,
    another_guest,
    check_out_instant,
    complete_stays,
    listing_reviews,
    review_guest,
    review_stay,
    review_writes_per_minute,
    reviewed,
    worker_of,
)


class Model:
    """What each stay's guest review should be: its rating, and whether published and hidden."""

    def __init__(self) -> None:
        self.rating: dict[int, int] = {}
        self.review_id: dict[int, str] = {}
        self.host_wrote: set[int] = set()
        self.published: set[int] = set()
        self.hidden: set[int] = set()

    def visible(self, stays: list[Stay], listing_id: str) -> list[int]:
        return [
            self.rating[i]
            for i, stay in enumerate(stays)
            if stay.place.listing_id == listing_id and i in self.published and i not in self.hidden
        ]


def expected_rating(ratings: list[int]) -> float | None:
    return sum(ratings) / len(ratings) if len(ratings) >= 3 else None


@pytest.mark.parametrize("seed", [11, 2027])
async def test_ratings_are_the_mean_of_published_visible_reviews_after_any_sequence(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, seed: int
) -> None:
    rng = random.Random(seed)  # noqa: S311 (a test's sequence, not a secret)
    admin = await an_admin(client, database)
    stays: list[Stay] = []
    for _ in range(3):
        place = await a_place(client)
        for night in range(1, 6):
            guest = place if night == 1 else await another_guest(client, place)
            stays.append(await a_paid_stay(client, guest, night, night + 1))
    await complete_stays(app, clock, 6)
    check_outs = [check_out_instant(1 + i % 5 + 1) for i in range(len(stays))]
    listing_ids = sorted({stay.place.listing_id for stay in stays})
    model = Model()
    worker = worker_of(app)
    shown = False

    # Hosts here review their guests faster than the writes a minute allowed.
    with review_writes_per_minute(app, 1000):
        for _ in range(80):
            i = rng.randrange(len(stays))
            stay = stays[i]
            open_ = clock.now < check_outs[i] + timedelta(days=14)
            action = rng.choice(["guest"] * 3 + ["host"] * 3 + ["hide", "unhide", "wait"])
            generation = await current_generation(database)
            before = [sorted(model.visible(stays, listing_id)) for listing_id in listing_ids]
            if action == "guest":
                rating = rng.randint(1, 5)
                body = await review_stay(client, stay, rating=rating)
                if open_ and i not in model.rating:
                    assert "errors" not in body, body
                    model.rating[i] = rating
                    model.review_id[i] = body["data"]["createReview"]["id"]
                    if i in model.host_wrote:
                        model.published.add(i)
                else:
                    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
            elif action == "host":
                body = await review_guest(client, stay)
                if open_ and i not in model.host_wrote:
                    assert "errors" not in body, body
                    model.host_wrote.add(i)
                    if i in model.rating:
                        model.published.add(i)
                else:
                    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
            elif action in ("hide", "unhide") and i in model.review_id:
                hiding = action == "hide"
                variables = {"id": model.review_id[i]}
                if hiding:
                    variables["reason"] = "Reported."
                body = await gql(client, HIDE if hiding else UNHIDE, variables, headers=admin)
                if hiding == (i not in model.hidden):
                    assert "errors" not in body, body
                    (model.hidden.add if hiding else model.hidden.discard)(i)
                else:
                    assert body["errors"][0]["extensions"]["code"] == "CONFLICT"
            elif action == "wait":
                clock.advance(hours=rng.randint(6, 60))
                await worker.run_once()
                for j, closes in enumerate(check_outs):
                    closed = clock.now >= closes + timedelta(days=14)
                    if j in model.rating and j not in model.published and closed:
                        model.published.add(j)

            after = [sorted(model.visible(stays, listing_id)) for listing_id in listing_ids]
            if after != before:  # cached searches are retired in the same transaction
                assert (await current_generation(database) or 0) > (generation or 0)
            found = {}
            for listing_id in listing_ids:
                ratings = model.visible(stays, listing_id)
                listing = await listing_reviews(client, listing_id)
                assert listing["reviewCount"] == len(ratings)
                assert listing["rating"] == pytest.approx(expected_rating(ratings))
                found[listing_id] = listing["rating"]
                shown = shown or listing["rating"] is not None
            hits = (await gql(client, SEARCH_BY_RATING))["data"]["searchListings"]["edges"]
            order = [(hit["node"]["id"], hit["node"]["rating"]) for hit in hits]
            assert {listing_id for listing_id, _ in order} == set(found)
            for listing_id, rating in order:
                assert rating == pytest.approx(found[listing_id])
            keys = [-1.0 if rating is None else rating for _, rating in order]
            assert keys == sorted(keys, reverse=True), order
    # The sequence did what it is for: ratings were shown, and reviews hidden.
    assert shown and model.hidden, (shown, model.rating, model.published, model.hidden, clock.now)


async def test_a_page_of_reviews_and_their_authors_costs_the_same_statements_at_any_size(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    stays = []
    for night in range(1, 21):
        guest = place if night == 1 else await another_guest(client, place)
        stays.append(await a_paid_stay(client, guest, night, night + 1))
    # One host reviews twenty guests here: more than the writes a minute allowed.
    with review_writes_per_minute(app, 100):
        for night, stay in enumerate(stays, start=1):
            await complete_stays(app, clock, night + 1)
            await reviewed(client, stay, rating=4)
            assert "errors" not in await review_guest(client, stay)
    query = """
    query($id: ID!, $first: Int) {
      listing(id: $id) {
        rating reviewCount
        reviews(first: $first) {
          edges { node { id rating comment authorSuspended author { id firstName avatarUrl } } }
        }
      }
    }
    """
    counts = {}
    for first in (2, 20):
        with StatementCounter(database) as counter:
            body = await gql(client, query, {"id": place.listing_id, "first": first})
        assert "errors" not in body, body
        assert len(body["data"]["listing"]["reviews"]["edges"]) == first
        authors = {e["node"]["author"]["id"] for e in body["data"]["listing"]["reviews"]["edges"]}
        assert len(authors) == first
        counts[first] = counter.count
    assert counts[2] == counts[20], counts
    # Newest first, a page at a time, each review once.
    seen: list[dict] = []
    after = None
    while True:
        page = (await listing_reviews(client, place.listing_id, first=7, after=after))["reviews"]
        assert page["totalCount"] == 20
        seen += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len({review["id"] for review in seen}) == 20
    created = [review["createdAt"] for review in seen]
    assert created == sorted(created, reverse=True) and created[0] > created[-1]
