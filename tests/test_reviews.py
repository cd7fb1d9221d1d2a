"""Reviews through HTTP: who may write them and when, double-blind publishing by the clock,
answers, hiding, reading, and the listing's rating."""

import asyncio
from datetime import timedelta

import httpx
from sqlalchemy import func, select, update
from starlette.applications import Starlette

from db.database import Database
from db.models import OutboxEvent, Review, User
from tests.accounts_helpers import bearer, register
from tests.booking_helpers import CANCEL, a_place
from tests.helpers import FakeClock, committed, gql
from tests.receipt_helpers import an_admin
from tests.review_helpers import (
    HIDE,
    RESPOND,
    UNHIDE,
    UPDATE_REVIEW,
    USER_REVIEWS,
    a_completed_stay,
    a_paid_stay,
    another_guest,
    check_out_instant,
    code_of,
    complete_stays,
    fields_of,
    listing_reviews,
    review_guest,
    review_stay,
    review_writes_per_minute,
    reviewed,
    worker_of,
)


async def test_neither_review_is_seen_until_both_are_written(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    stay = await a_completed_stay(app, client, clock)
    mine = await reviewed(client, stay, rating=4, cleanliness=5, checkIn=3)
    assert mine["publishedAt"] is None and mine["rating"] == 4 and mine["checkIn"] == 3
    listing_id = stay.place.listing_id

    # Only its author sees it: not the public, not the host.
    public = await listing_reviews(client, listing_id)
    assert public["reviews"]["edges"] == [] and public["reviewCount"] == 0
    assert (await listing_reviews(client, listing_id, stay.as_host))["reviews"]["edges"] == []
    own = await listing_reviews(client, listing_id, stay.as_guest)
    assert [edge["node"]["id"] for edge in own["reviews"]["edges"]] == [mine["id"]]

    theirs = await review_guest(client, stay)
    assert "errors" not in theirs, theirs
    assert theirs["data"]["reviewGuest"]["publishedAt"] is not None  # both are written

    public = await listing_reviews(client, listing_id)
    [edge] = public["reviews"]["edges"]
    assert edge["node"]["id"] == mine["id"] and edge["node"]["publishedAt"] is not None
    assert edge["node"]["booking"] is None  # the stay is its guest's, host's and admins'
    assert public["reviewCount"] == 1 and public["rating"] is None  # fewer than 3 reviews
    guest_id = edge["node"]["author"]["id"]
    about_guest = await gql(client, USER_REVIEWS, {"id": guest_id})
    [review] = about_guest["data"]["node"]["reviews"]["edges"]
    assert review["node"]["kind"] == "HOST_REVIEW" and review["node"]["rating"] == 4


async def test_only_the_guest_of_a_completed_stay_reviews_it_once(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    confirmed = await a_paid_stay(client, place, 1, 3)
    canceled = await a_paid_stay(client, await another_guest(client, place), 4, 6)
    body = await gql(client, CANCEL, {"id": canceled.booking_id}, headers=canceled.as_guest)
    assert "errors" not in body, body

    not_yet = await review_stay(client, confirmed)
    assert code_of(not_yet) == "BAD_USER_INPUT"
    assert "not completed" in fields_of(not_yet)["bookingId"]
    await complete_stays(app, clock, 3)
    was_canceled = await review_stay(client, canceled)
    assert code_of(was_canceled) == "BAD_USER_INPUT"
    assert "canceled" in fields_of(was_canceled)["bookingId"]

    stranger = bearer((await register(client))["accessToken"])
    assert code_of(await review_stay(client, confirmed, headers=stranger)) == "FORBIDDEN"
    # The host reviews the guest, not their own stay.
    assert code_of(await review_stay(client, confirmed, headers=confirmed.as_host)) == "FORBIDDEN"
    assert code_of(await review_guest(client, confirmed, headers=confirmed.as_guest)) == (
        "FORBIDDEN"
    )

    await reviewed(client, confirmed)
    again = await review_stay(client, confirmed, rating=1)
    assert code_of(again) == "BAD_USER_INPUT"
    assert "already reviewed" in fields_of(again)["bookingId"]


async def test_a_second_review_racing_the_first_is_refused(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    stay = await a_completed_stay(app, client, clock)
    bodies = await asyncio.gather(*(review_stay(client, stay, rating=r) for r in (2, 5)))
    assert sorted("errors" in body for body in bodies) == [False, True]
    refused = next(body for body in bodies if "errors" in body)
    assert code_of(refused) == "BAD_USER_INPUT"


async def test_ratings_are_whole_numbers_from_one_to_five(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    stay = await a_completed_stay(app, client, clock)
    for rating in (0, 6, -1):
        body = await review_stay(client, stay, rating=rating)
        assert code_of(body) == "BAD_USER_INPUT"
        assert fields_of(body) == {"rating": "must be a whole number from 1 to 5"}
    body = await review_stay(client, stay, cleanliness=6, value=0)
    assert set(fields_of(body)) == {"cleanliness", "value"}
    # A host rates a guest overall only: there is no category to give.
    assert (await review_guest(client, stay, rating=0))["errors"][0]["extensions"]["fields"] == {
        "rating": "must be a whole number from 1 to 5"
    }


async def test_a_review_is_bounded_plain_text(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    stay = await a_completed_stay(app, client, clock)
    for comment, problem in (
        ("   ", "must not be empty"),
        ("x" * 2001, "must be at most 2000 characters long"),
        ("nice\x00place", "must not contain control characters"),
        ("nice\x1b[31mplace", "must not contain control characters"),
    ):
        body = await review_stay(client, stay, comment=comment)
        assert code_of(body) == "BAD_USER_INPUT"
        assert fields_of(body) == {"comment": problem}
    # Markup is text like any other: kept as written, never interpreted or rewritten.
    markup = '<script>alert("x")</script> <b>great</b>\nsecond line'
    review = await reviewed(client, stay, comment="  " + markup + "  ")
    assert review["comment"] == markup


async def test_reviews_are_written_within_fourteen_days_of_check_out(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    stay = await a_completed_stay(app, client, clock)
    clock.now = check_out_instant(3) + timedelta(days=14)
    late = await review_stay(client, stay)
    assert code_of(late) == "BAD_USER_INPUT"
    assert "14 days" in fields_of(late)["bookingId"]
    assert code_of(await review_guest(client, stay)) == "BAD_USER_INPUT"
    clock.now -= timedelta(seconds=1)
    await reviewed(client, stay)


async def test_the_window_closing_publishes_a_lone_review(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    stay = await a_completed_stay(app, client, clock)
    review = await reviewed(client, stay, rating=3)
    worker = worker_of(app)
    clock.now = check_out_instant(3) + timedelta(days=14, seconds=-1)
    await worker.run_once()
    assert (await listing_reviews(client, stay.place.listing_id))["reviews"]["edges"] == []

    clock.advance(seconds=1)
    await worker.run_once()
    listing = await listing_reviews(client, stay.place.listing_id)
    [edge] = listing["reviews"]["edges"]
    assert edge["node"]["id"] == review["id"]
    assert edge["node"]["publishedAt"] == clock.now.isoformat()
    assert listing["reviewCount"] == 1
    # The host's chance to review the guest closed with it.
    assert code_of(await review_guest(client, stay)) == "BAD_USER_INPUT"
    async with committed(database) as session:
        kinds = (
            await session.scalars(
                select(OutboxEvent.kind)
                .where(OutboxEvent.kind.like("Review%"))
                .order_by(OutboxEvent.id)
            )
        ).all()
    assert kinds == ["ReviewReceived", "ReviewPublished"]


async def test_its_author_changes_a_review_for_48_hours_while_unpublished(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    stay = await a_completed_stay(app, client, clock)
    review = await reviewed(client, stay, rating=2, cleanliness=2)
    update = {"id": review["id"], "input": {"rating": 4, "cleanliness": None, "value": 5}}
    changed = await gql(client, UPDATE_REVIEW, update, headers=stay.as_guest)
    assert "errors" not in changed, changed
    changed_review = changed["data"]["updateReview"]
    assert (changed_review["rating"], changed_review["cleanliness"]) == (4, None)
    assert (changed_review["value"], changed_review["comment"]) == (5, review["comment"])
    # Nobody else can even find it while it is unpublished.
    assert code_of(await gql(client, UPDATE_REVIEW, update, headers=stay.as_host)) == "NOT_FOUND"
    bad = {"id": review["id"], "input": {"rating": 9}}
    assert code_of(await gql(client, UPDATE_REVIEW, bad, headers=stay.as_guest)) == (
        "BAD_USER_INPUT"
    )

    clock.advance(hours=48)
    late = await gql(client, UPDATE_REVIEW, update, headers=stay.as_guest)
    assert code_of(late) == "CONFLICT" and "48 hours" in late["errors"][0]["message"]


async def test_a_published_review_is_no_longer_changed(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    stay = await a_completed_stay(app, client, clock)
    review = await reviewed(client, stay)
    assert "errors" not in await review_guest(client, stay)
    update = {"id": review["id"], "input": {"comment": "Changed my mind."}}
    published = await gql(client, UPDATE_REVIEW, update, headers=stay.as_guest)
    assert code_of(published) == "CONFLICT"
    assert code_of(await gql(client, UPDATE_REVIEW, update, headers=stay.as_host)) == "FORBIDDEN"


async def test_the_host_answers_a_published_review_once(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    stay = await a_completed_stay(app, client, clock)
    review = await reviewed(client, stay)
    answer = {"id": review["id"], "response": "Thank you, come back soon!"}
    # Unpublished: the host cannot see it to answer it.
    assert code_of(await gql(client, RESPOND, answer, headers=stay.as_host)) == "NOT_FOUND"
    assert "errors" not in await review_guest(client, stay)

    assert code_of(await gql(client, RESPOND, answer, headers=stay.as_guest)) == "FORBIDDEN"
    empty = await gql(client, RESPOND, {**answer, "response": " "}, headers=stay.as_host)
    assert code_of(empty) == "BAD_USER_INPUT"
    answered = await gql(client, RESPOND, answer, headers=stay.as_host)
    assert "errors" not in answered, answered
    assert answered["data"]["respondToReview"]["hostResponse"] == answer["response"]
    assert answered["data"]["respondToReview"]["respondedAt"] == clock.now.isoformat()
    again = await gql(client, RESPOND, {**answer, "response": "Again."}, headers=stay.as_host)
    assert code_of(again) == "CONFLICT"
    [edge] = (await listing_reviews(client, stay.place.listing_id))["reviews"]["edges"]
    assert edge["node"]["hostResponse"] == answer["response"]


async def test_admins_hide_a_review_with_a_reason_and_it_leaves_the_rating(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    stays = [await a_paid_stay(client, place, 1, 2)]
    for night in (2, 3, 4):
        stays.append(
            await a_paid_stay(client, await another_guest(client, place), night, night + 1)
        )
    await complete_stays(app, clock, 5)
    reviews = []
    for stay, rating in zip(stays, (5, 4, 3, 1), strict=True):
        reviews.append(await reviewed(client, stay, rating=rating, cleanliness=rating))
        assert "errors" not in await review_guest(client, stay)
    listing = await listing_reviews(client, place.listing_id)
    assert (listing["rating"], listing["reviewCount"]) == (3.25, 4)
    assert listing["ratingCategories"]["cleanliness"] == 3.25
    assert listing["ratingCategories"]["value"] is None

    admin = await an_admin(client, database)
    hide = {"id": reviews[3]["id"], "reason": "Abusive language."}
    assert code_of(await gql(client, HIDE, hide, headers=place.as_host)) == "FORBIDDEN"
    no_reason = await gql(client, HIDE, {**hide, "reason": ""}, headers=admin)
    assert code_of(no_reason) == "BAD_USER_INPUT"
    hidden = await gql(client, HIDE, hide, headers=admin)
    assert "errors" not in hidden, hidden
    assert hidden["data"]["hideReview"]["hidden"] is True
    assert hidden["data"]["hideReview"]["hiddenReason"] == "Abusive language."
    assert code_of(await gql(client, HIDE, hide, headers=admin)) == "CONFLICT"

    listing = await listing_reviews(client, place.listing_id)
    assert (listing["rating"], listing["reviewCount"]) == (4.0, 3)
    assert listing["ratingCategories"]["cleanliness"] == 4.0
    assert reviews[3]["id"] not in [e["node"]["id"] for e in listing["reviews"]["edges"]]
    # Admins still see it, marked, with the reason; nobody else sees the reason.
    as_admin = await listing_reviews(client, place.listing_id, admin)
    marked = {e["node"]["id"]: e["node"] for e in as_admin["reviews"]["edges"]}
    assert marked[reviews[3]["id"]]["hidden"] is True
    assert marked[reviews[3]["id"]]["hiddenReason"] == "Abusive language."

    shown = await gql(client, UNHIDE, {"id": reviews[3]["id"]}, headers=admin)
    assert shown["data"]["unhideReview"]["hidden"] is False
    listing = await listing_reviews(client, place.listing_id)
    assert (listing["rating"], listing["reviewCount"]) == (3.25, 4)


async def test_a_suspended_authors_reviews_stay_marked(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    stay = await a_completed_stay(app, client, clock)
    review = await reviewed(client, stay)
    assert "errors" not in await review_guest(client, stay)
    async with committed(database) as session:
        await session.execute(
            update(User)
            .where(
                User.id
                == select(Review.author_id).where(Review.kind == "GUEST_REVIEW").scalar_subquery()
            )
            .values(status="SUSPENDED")
        )
    [edge] = (await listing_reviews(client, stay.place.listing_id))["reviews"]["edges"]
    assert edge["node"]["id"] == review["id"] and edge["node"]["authorSuspended"] is True


async def test_writing_reviews_is_rate_limited(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    with review_writes_per_minute(app, 2):
        stay = await a_completed_stay(app, client, clock)
        # Refused attempts count too: trying is what is limited.
        assert code_of(await review_stay(client, stay, rating=0)) == "BAD_USER_INPUT"
        assert code_of(await review_stay(client, stay, rating=0)) == "BAD_USER_INPUT"
        assert code_of(await review_stay(client, stay)) == "RATE_LIMITED"
        # Another account has its own budget.
        assert "errors" not in await review_guest(client, stay)


async def test_both_sides_reviewing_at_once_publish_both(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    stay = await a_completed_stay(app, client, clock)
    mine, theirs = await asyncio.gather(review_stay(client, stay), review_guest(client, stay))
    assert "errors" not in mine and "errors" not in theirs, (mine, theirs)
    # Whichever came second saw the first: neither is left waiting for the window to close.
    listing = await listing_reviews(client, stay.place.listing_id)
    assert listing["reviewCount"] == 1 and len(listing["reviews"]["edges"]) == 1
    async with committed(database) as session:
        unpublished = await session.scalar(
            select(func.count()).select_from(Review).where(Review.published_at.is_(None))
        )
    assert unpublished == 0


async def test_an_unpublished_review_is_nobodys_but_its_authors_by_id(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    stay = await a_completed_stay(app, client, clock)
    review = await reviewed(client, stay)
    query = "query($id: ID!) { node(id: $id) { id ... on Review { rating } } }"
    for headers, seen in ((stay.as_guest, True), (stay.as_host, False), (None, False)):
        body = await gql(client, query, {"id": review["id"]}, headers=headers)
        assert (body["data"]["node"] is not None) is seen
    assert "errors" not in await review_guest(client, stay)
    body = await gql(client, query, {"id": review["id"]})
    assert body["data"]["node"] == {"id": review["id"], "rating": 5}


async def test_a_review_names_only_a_listing_the_viewer_may_see(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    stay = await a_completed_stay(app, client, clock)
    await reviewed(client, stay)
    assert "errors" not in await review_guest(client, stay)
    unlist = "mutation($id: ID!) { updateListing(id: $id, input: {publish: false}) { status } }"
    body = await gql(client, unlist, {"id": stay.place.listing_id}, headers=stay.as_host)
    assert body["data"]["updateListing"]["status"] == "UNLISTED", body
    guest_id = (await gql(client, "{ me { id } }", headers=stay.as_guest))["data"]["me"]["id"]
    about_guest = await gql(client, USER_REVIEWS, {"id": guest_id})
    [edge] = about_guest["data"]["node"]["reviews"]["edges"]
    assert edge["node"]["listing"] is None
    as_host = await gql(client, USER_REVIEWS, {"id": guest_id}, headers=stay.as_host)
    assert as_host["data"]["node"]["reviews"]["edges"][0]["node"]["listing"] is not None


async def test_workers_racing_publish_each_lone_review_once(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    stays = [await a_paid_stay(client, place, 1, 2)]
    for night in (2, 3):
        stays.append(
            await a_paid_stay(client, await another_guest(client, place), night, night + 1)
        )
    await complete_stays(app, clock, 4)
    for rating, stay in zip((5, 4, 2), stays, strict=True):
        await reviewed(client, stay, rating=rating)
    clock.now = check_out_instant(4) + timedelta(days=14)
    await asyncio.gather(*(worker_of(app).sweep() for _ in range(3)))
    listing = await listing_reviews(client, place.listing_id)
    assert (listing["reviewCount"], listing["rating"]) == (3, 11 / 3)
    async with committed(database) as session:
        published = await session.scalar(
            select(func.count()).where(OutboxEvent.kind == "ReviewPublished")
        )
    assert published == 3
