"""listing_calendar: each listing's taken nights as one datemultirange, kept by triggers

Search asked two tables per candidate listing whether a stay's nights were free (a probe of
blocked_night, a probe of booking); a city's dated search probed ~2,000 listings twice. Now it
asks one narrow row per listing: the union of the nights its host (or an imported feed) closed
and the stays of its PENDING and CONFIRMED bookings. Triggers keep it, once per statement and in
the writer's transaction, so no writer (service, script, plain SQL) can leave it behind. It is
recomputed from booking and blocked_night, not patched, so it cannot drift; booking still
guards double booking (its exclusion constraint and db/calendar.py's checks), search only reads.

A side table rather than a column of listing: writers that cancel or expire a booking lock the
booking before the listing is ever touched, while others lock the listing first
(services/bookings.py lock_calendar); a trigger updating the listing row would invert that
order. This row is only ever locked by the triggers, after the search generation shard of the
same listing, which every such writer already takes at that point.

Indexes for the common sorts: ix_listing_location carries every column a search filters or
sorts by (an index-only scan pages a search near a point, and the page then reads its 20 rows),
ix_listing_newest carries the words (a city's newest listings are found in the index, not by
reading 1,400 rows of other cities for a page), and words and amenities share one GIN index.

Revision ID: 0033
Revises: 0032
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A trigger with transition tables fires on one kind of statement only.
TRANSITIONS = {
    "INSERT": "NEW TABLE AS new_rows",
    "UPDATE": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "DELETE": "OLD TABLE AS old_rows",
}

FUNCTIONS = {
    # db.states.ACTIVE_BOOKING when this was written: a stay in these holds its nights.
    "listing_taken_nights(listing bigint)": """
    RETURNS datemultirange LANGUAGE sql STABLE AS $$
        SELECT coalesce(range_agg(nights), '{}'::datemultirange) FROM (
            SELECT daterange(check_in, check_out) AS nights FROM booking
            WHERE listing_id = listing AND status IN ('PENDING', 'CONFIRMED')
            UNION ALL
            SELECT daterange(night, night + 1) FROM blocked_night WHERE listing_id = listing
        ) AS taken
    $$""",
    # Locks the listings' rows in id order, then reads the calendar in a statement of its own:
    # in READ COMMITTED that statement sees every writer that held the rows before.
    "listing_calendar_refresh(listings bigint[])": """
    RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        IF cardinality(listings) = 0 THEN
            RETURN;
        END IF;
        -- Every listing has its row (made with the listing); this only covers a race with that.
        INSERT INTO listing_calendar (listing_id)
        SELECT id FROM listing WHERE id = ANY(listings) ORDER BY id
        ON CONFLICT (listing_id) DO NOTHING;
        PERFORM 1 FROM listing_calendar WHERE listing_id = ANY(listings)
            ORDER BY listing_id FOR UPDATE;
        UPDATE listing_calendar SET taken_nights = listing_taken_nights(listing_id)
        WHERE listing_id = ANY(listings);
    END $$""",
    "listing_calendar_nights_changed()": """
    RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        listings bigint[];
    BEGIN
        IF TG_OP = 'INSERT' THEN
            listings := ARRAY(SELECT DISTINCT listing_id FROM new_rows);
        ELSIF TG_OP = 'DELETE' THEN
            listings := ARRAY(SELECT DISTINCT listing_id FROM old_rows);
        ELSE
            listings := ARRAY(
                SELECT listing_id FROM old_rows UNION SELECT listing_id FROM new_rows
            );
        END IF;
        PERFORM listing_calendar_refresh(listings);
        RETURN NULL;
    END $$""",
    # Only a stay that starts or stops holding nights counts: paying or confirming does not.
    "listing_calendar_stays_changed()": """
    RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        active text[] := ARRAY['PENDING', 'CONFIRMED'];
        listings bigint[];
    BEGIN
        IF TG_OP = 'INSERT' THEN
            listings := ARRAY(
                SELECT DISTINCT listing_id FROM new_rows WHERE status = ANY(active)
            );
        ELSIF TG_OP = 'DELETE' THEN
            listings := ARRAY(
                SELECT DISTINCT listing_id FROM old_rows WHERE status = ANY(active)
            );
        ELSE
            listings := ARRAY(
                SELECT DISTINCT listing_id FROM (
                    (SELECT id, listing_id, check_in, check_out
                     FROM old_rows WHERE status = ANY(active)
                     EXCEPT
                     SELECT id, listing_id, check_in, check_out
                     FROM new_rows WHERE status = ANY(active))
                    UNION ALL
                    (SELECT id, listing_id, check_in, check_out
                     FROM new_rows WHERE status = ANY(active)
                     EXCEPT
                     SELECT id, listing_id, check_in, check_out
                     FROM old_rows WHERE status = ANY(active))
                ) AS moved
            );
        END IF;
        PERFORM listing_calendar_refresh(listings);
        RETURN NULL;
    END $$""",
    "listing_calendar_listings_added()": """
    RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO listing_calendar (listing_id) SELECT id FROM new_rows
        ON CONFLICT (listing_id) DO NOTHING;
        RETURN NULL;
    END $$""",
}


def _triggers() -> list[tuple[str, str, str, str]]:
    """(name, table, event, function) of every trigger; all run once per statement, and after
    the search_results_* triggers of the same statement (PostgreSQL fires them by name)."""
    triggers = [
        (f"taken_nights_{event.lower()}", table, event, function)
        for table, function in (
            ("blocked_night", "listing_calendar_nights_changed()"),
            ("booking", "listing_calendar_stays_changed()"),
        )
        for event in TRANSITIONS
    ]
    triggers.append(
        ("taken_nights_insert", "listing", "INSERT", "listing_calendar_listings_added()")
    )
    return triggers


# Frozen copy of db.models.LOCATION_INCLUDES as of this revision.
LOCATION_INCLUDES = (
    "id, latitude, longitude, moderation, nightly_price_usd, max_guests, min_nights,"
    " max_nights, instant_book, property_type, amenity_ids, rating_avg, review_count, created_at"
)
PUBLIC = "status = 'PUBLISHED' AND deleted_at IS NULL"


def _indexes_for_sorts() -> None:
    """A search near a point pages in ix_listing_location alone (index-only), a city's newest
    in ix_listing_newest alone, and a city with amenities is narrowed by words and amenities
    in one GIN index, not by reading the city."""
    op.execute("DROP INDEX ix_listing_location")
    op.execute(
        "CREATE INDEX ix_listing_location ON listing USING gist (point(longitude, latitude))"
        f" INCLUDE ({LOCATION_INCLUDES}) WHERE {PUBLIC}"
    )
    op.execute("DROP INDEX ix_listing_amenity_ids")
    op.execute(
        "CREATE INDEX ix_listing_search_vector_amenity_ids ON listing"
        f" USING gin (search_vector, amenity_ids) WHERE {PUBLIC}"
    )
    op.execute("DROP INDEX ix_listing_newest")
    op.execute(
        "CREATE INDEX ix_listing_newest ON listing (created_at, id)"
        f" INCLUDE (search_vector, moderation) WHERE {PUBLIC}"
    )


def _indexes_as_before() -> None:
    op.execute("DROP INDEX ix_listing_newest")
    op.execute(f"CREATE INDEX ix_listing_newest ON listing (created_at, id) WHERE {PUBLIC}")
    op.execute("DROP INDEX ix_listing_search_vector_amenity_ids")
    op.execute(
        f"CREATE INDEX ix_listing_amenity_ids ON listing USING gin (amenity_ids) WHERE {PUBLIC}"
    )
    op.execute("DROP INDEX ix_listing_location")
    op.execute(
        "CREATE INDEX ix_listing_location ON listing USING gist (point(longitude, latitude))"
        f" WHERE {PUBLIC}"
    )


def upgrade() -> None:
    _indexes_for_sorts()
    op.execute(
        "CREATE TABLE listing_calendar ("
        " listing_id bigint NOT NULL,"
        " taken_nights datemultirange DEFAULT '{}'::datemultirange NOT NULL,"
        " CONSTRAINT pk_listing_calendar PRIMARY KEY (listing_id),"
        " CONSTRAINT fk_listing_calendar_listing_id_listing FOREIGN KEY (listing_id)"
        " REFERENCES listing (id) ON DELETE CASCADE)"
    )
    for signature, body in FUNCTIONS.items():
        op.execute(f"CREATE FUNCTION {signature} {body}")
    op.execute("LOCK TABLE listing, booking, blocked_night IN SHARE MODE")
    op.execute(
        "INSERT INTO listing_calendar (listing_id, taken_nights)"
        " SELECT l.id, coalesce(t.nights, '{}'::datemultirange) FROM listing l LEFT JOIN ("
        "  SELECT listing_id, range_agg(nights) AS nights FROM ("
        "   SELECT listing_id, daterange(check_in, check_out) AS nights FROM booking"
        "   WHERE status IN ('PENDING', 'CONFIRMED')"
        "   UNION ALL SELECT listing_id, daterange(night, night + 1) FROM blocked_night"
        "  ) AS taken GROUP BY listing_id"
        " ) AS t ON t.listing_id = l.id"
    )
    for name, table, event, function in _triggers():
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {TRANSITIONS[event]}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION {function}"
        )


def downgrade() -> None:
    _indexes_as_before()
    for name, table, _, _ in _triggers():
        op.execute(f"DROP TRIGGER {name} ON {table}")
    op.drop_table("listing_calendar")
    for signature in reversed(list(FUNCTIONS)):
        op.execute(f"DROP FUNCTION {signature}")
