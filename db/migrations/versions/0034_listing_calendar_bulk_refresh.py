"""listing_calendar_refresh: one join for every listing a statement touched

The refresh recomputed each listing's taken nights by a function call per listing, and that
call's probes of booking and blocked_night were planned without the statistics of rows the
same transaction had just written: a bulk write (roost seed --listings 20000 inserts its
bookings in one statement) then scanned booking once per listing, 30 s for 20,000 listings
and quadratic beyond. Now the listings join the rows that hold their nights in one statement:
an index probe each for the usual one or two listings, one pass for a bulk write.

Revision ID: 0034
Revises: 0033
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The locks as in 0033: the listings' rows in id order, then the nights read in a statement of
# their own (in READ COMMITTED it sees every writer that held the rows before).
HEADER = """
CREATE OR REPLACE FUNCTION listing_calendar_refresh(listings bigint[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(listings) = 0 THEN
        RETURN;
    END IF;
    INSERT INTO listing_calendar (listing_id)
    SELECT id FROM listing WHERE id = ANY(listings) ORDER BY id
    ON CONFLICT (listing_id) DO NOTHING;
    PERFORM 1 FROM listing_calendar WHERE listing_id = ANY(listings)
        ORDER BY listing_id FOR UPDATE;
"""
# db.states.ACTIVE_BOOKING when this was written: a stay in these holds its nights.
SET_BASED = """
    UPDATE listing_calendar c SET taken_nights = coalesce(t.nights, '{}'::datemultirange)
    FROM unnest(listings) AS k(listing_id)
    LEFT JOIN (
        SELECT taken.listing_id, range_agg(taken.nights) AS nights FROM (
            SELECT b.listing_id, daterange(b.check_in, b.check_out) AS nights
            FROM unnest(listings) AS u(listing_id)
            JOIN booking b ON b.listing_id = u.listing_id
            WHERE b.status IN ('PENDING', 'CONFIRMED')
            UNION ALL
            SELECT n.listing_id, daterange(n.night, n.night + 1)
            FROM unnest(listings) AS u(listing_id)
            JOIN blocked_night n ON n.listing_id = u.listing_id
        ) AS taken GROUP BY taken.listing_id
    ) AS t ON t.listing_id = k.listing_id
    WHERE c.listing_id = k.listing_id;
END $$
"""
PER_LISTING = """
    UPDATE listing_calendar SET taken_nights = listing_taken_nights(listing_id)
    WHERE listing_id = ANY(listings);
END $$
"""


def upgrade() -> None:
    op.execute(HEADER + SET_BASED)


def downgrade() -> None:
    op.execute(HEADER + PER_LISTING)
