"""search generation in 64 shards, raised by triggers on what search results show

Writers no longer raise the generation themselves (one forgotten call hid a change; one row
locked by every writer queued them all): each statement that changes a listing, its photos,
closed nights, night prices or stays, a host's profile or an exchange rate raises the shards of
the listings (or users) it touched, once per statement, in the same transaction. The current
generation is the sum of the shards.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SHARDS = 64  # a listing's shard is its id % 64 (written out in the SQL below)
# Tables whose every change shows in search results, by the column naming the listing.
BY_LISTING = {
    "listing": "id",
    "listing_photo": "listing_id",
    "blocked_night": "listing_id",
    "night_price": "listing_id",
}
# A trigger with transition tables fires on one kind of statement only.
TRANSITIONS = {
    "INSERT": "NEW TABLE AS new_rows",
    "UPDATE": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "DELETE": "OLD TABLE AS old_rows",
}

FUNCTIONS = {
    "search_generation_raise(shards bigint[])": """
    RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        -- In shard order, so two statements that each raise several shards never deadlock.
        PERFORM 1 FROM search_generation WHERE shard = ANY(shards) ORDER BY shard FOR UPDATE;
        UPDATE search_generation SET value = value + 1 WHERE shard = ANY(shards);
    END $$""",
    # TG_ARGV[0]: the column holding the listing's id.
    "search_rows_changed()": """
    RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        touched text := CASE TG_OP
            WHEN 'INSERT' THEN 'SELECT %1$I AS listing FROM new_rows'
            WHEN 'DELETE' THEN 'SELECT %1$I AS listing FROM old_rows'
            ELSE 'SELECT %1$I AS listing FROM old_rows UNION ALL SELECT %1$I FROM new_rows'
        END;
        shards bigint[];
    BEGIN
        EXECUTE format(
            'SELECT array_agg(DISTINCT listing %% 64) FROM (' || touched || ') AS touched',
            TG_ARGV[0]
        ) INTO shards;
        PERFORM search_generation_raise(shards);
        RETURN NULL;
    END $$""",
    # Only a stay that starts or stops holding nights shows: a new booking, a cancellation,
    # new dates. Paying, confirming or an expiry time moving does not.
    "search_stays_changed()": """
    RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        -- db.states.ACTIVE_BOOKING when this was written: a stay in these holds its nights.
        active text[] := ARRAY['PENDING', 'CONFIRMED'];
        shards bigint[];
    BEGIN
        IF TG_OP = 'INSERT' THEN
            shards := ARRAY(
                SELECT DISTINCT listing_id % 64 FROM new_rows WHERE status = ANY(active)
            );
        ELSIF TG_OP = 'DELETE' THEN
            shards := ARRAY(
                SELECT DISTINCT listing_id % 64 FROM old_rows WHERE status = ANY(active)
            );
        ELSE
            shards := ARRAY(
                SELECT DISTINCT listing_id % 64 FROM (
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
        PERFORM search_generation_raise(shards);
        RETURN NULL;
    END $$""",
    # Results show each listing's host: name, bio, avatar and roles.
    "search_hosts_changed()": """
    RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM search_generation_raise(ARRAY(
            SELECT DISTINCT n.id % 64 FROM new_rows n JOIN old_rows o ON o.id = n.id
            WHERE (n.first_name, n.last_name, n.bio, n.avatar_upload_id, n.roles)
                IS DISTINCT FROM (o.first_name, o.last_name, o.bio, o.avatar_upload_id, o.roles)
        ));
        RETURN NULL;
    END $$""",
    # Rates reprice price filters: any one shard will do.
    "search_rates_changed()": """
    RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM search_generation_raise(ARRAY[0]);
        RETURN NULL;
    END $$""",
}


def _triggers() -> list[tuple[str, str, str, str]]:
    """(name, table, event, function) of every trigger; all run once per statement."""
    triggers = [
        (f"search_results_{event.lower()}", table, event, f"search_rows_changed('{column}')")
        for table, column in BY_LISTING.items()
        for event in TRANSITIONS
    ]
    triggers += [
        (f"search_results_{event.lower()}", "booking", event, "search_stays_changed()")
        for event in TRANSITIONS
    ]
    triggers.append(("search_results_update", "user_account", "UPDATE", "search_hosts_changed()"))
    triggers.append(
        ("search_results", "exchange_rate", "INSERT OR UPDATE OR DELETE", "search_rates_changed()")
    )
    return triggers


def upgrade() -> None:
    op.drop_constraint(op.f("ck_search_generation_single_row"), "search_generation", type_="check")
    op.alter_column("search_generation", "id", new_column_name="shard", server_default=None)
    # The old row keeps its value as one shard: the sum, the generation, goes on from there.
    op.execute(
        "INSERT INTO search_generation (shard, value)"
        " SELECT shard, 0 FROM generate_series(0, 63) AS shard ON CONFLICT (shard) DO NOTHING"
    )
    op.create_check_constraint(
        op.f("ck_search_generation_shard"), "search_generation", f"shard >= 0 AND shard < {SHARDS}"
    )
    for signature, body in FUNCTIONS.items():
        op.execute(f"CREATE FUNCTION {signature} {body}")
    for name, table, event, function in _triggers():
        transition = f"REFERENCING {TRANSITIONS[event]}" if event in TRANSITIONS else ""
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON {table} {transition}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION {function}"
        )


def downgrade() -> None:
    for name, table, _, _ in _triggers():
        op.execute(f"DROP TRIGGER {name} ON {table}")
    for signature in reversed(list(FUNCTIONS)):
        op.execute(f"DROP FUNCTION {signature}")
    op.drop_constraint(op.f("ck_search_generation_shard"), "search_generation", type_="check")
    op.execute(
        "UPDATE search_generation SET value = (SELECT sum(value) FROM search_generation)"
        " WHERE shard = 1"
    )
    op.execute("DELETE FROM search_generation WHERE shard <> 1")
    op.alter_column("search_generation", "shard", new_column_name="id", server_default="1")
    op.create_check_constraint(
        op.f("ck_search_generation_single_row"), "search_generation", "id = 1"
    )
