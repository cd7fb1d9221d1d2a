"""listings

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


AMENITIES = [
    # (id, code, name, category); ids are stored in listing.amenity_ids: never reuse one.
    (1, "wifi", "Wifi", "Internet and office"),
    (2, "workspace", "Dedicated workspace", "Internet and office"),
    (3, "ethernet", "Ethernet connection", "Internet and office"),
    (4, "kitchen", "Kitchen", "Kitchen and dining"),
    (5, "refrigerator", "Refrigerator", "Kitchen and dining"),
    (6, "microwave", "Microwave", "Kitchen and dining"),
    (7, "dishwasher", "Dishwasher", "Kitchen and dining"),
    (8, "coffee_maker", "Coffee maker", "Kitchen and dining"),
    (9, "oven", "Oven", "Kitchen and dining"),
    (10, "washer", "Washer", "Bedroom and laundry"),
    (11, "dryer", "Dryer", "Bedroom and laundry"),
    (12, "iron", "Iron", "Bedroom and laundry"),
    (13, "hangers", "Hangers", "Bedroom and laundry"),
    (14, "bed_linens", "Bed linens", "Bedroom and laundry"),
    (15, "air_conditioning", "Air conditioning", "Heating and cooling"),
    (16, "heating", "Heating", "Heating and cooling"),
    (17, "ceiling_fan", "Ceiling fan", "Heating and cooling"),
    (18, "fireplace", "Indoor fireplace", "Heating and cooling"),
    (19, "tv", "TV", "Entertainment"),
    (20, "sound_system", "Sound system", "Entertainment"),
    (21, "board_games", "Board games", "Entertainment"),
    (22, "hair_dryer", "Hair dryer", "Bathroom"),
    (23, "hot_water", "Hot water", "Bathroom"),
    (24, "bathtub", "Bathtub", "Bathroom"),
    (25, "free_parking", "Free parking on premises", "Parking and facilities"),
    (26, "paid_parking", "Paid parking on premises", "Parking and facilities"),
    (27, "ev_charger", "EV charger", "Parking and facilities"),
    (28, "pool", "Pool", "Parking and facilities"),
    (29, "hot_tub", "Hot tub", "Parking and facilities"),
    (30, "gym", "Gym", "Parking and facilities"),
    (31, "elevator", "Elevator", "Parking and facilities"),
    (32, "bbq", "BBQ grill", "Outdoor"),
    (33, "patio", "Patio or balcony", "Outdoor"),
    (34, "garden", "Garden", "Outdoor"),
    (35, "beach_access", "Beach access", "Location features"),
    (36, "lake_access", "Lake access", "Location features"),
    (37, "ski_in_out", "Ski-in/ski-out", "Location features"),
    (38, "pets_allowed", "Pets allowed", "Policies"),
    (39, "smoking_allowed", "Smoking allowed", "Policies"),
    (40, "events_allowed", "Events allowed", "Policies"),
    (41, "self_check_in", "Self check-in", "Services"),
    (42, "long_term_stays", "Long-term stays allowed", "Services"),
    (43, "luggage_dropoff", "Luggage drop-off allowed", "Services"),
    (44, "wheelchair_accessible", "Wheelchair accessible", "Accessibility"),
    (45, "step_free_entrance", "Step-free entrance", "Accessibility"),
    (46, "crib", "Crib", "Family"),
    (47, "high_chair", "High chair", "Family"),
    (48, "smoke_alarm", "Smoke alarm", "Home safety"),
    (49, "carbon_monoxide_alarm", "Carbon monoxide alarm", "Home safety"),
    (50, "first_aid_kit", "First aid kit", "Home safety"),
    (51, "fire_extinguisher", "Fire extinguisher", "Home safety"),
]

# US dollars per unit, a sensible starting point until the rates gateway refreshes them.
EXCHANGE_RATES = {
    "USD": "1", "EUR": "1.08", "GBP": "1.27", "JPY": "0.0067", "CHF": "1.12", "CAD": "0.73",
    "AUD": "0.66", "NZD": "0.61", "MXN": "0.058", "BRL": "0.18", "ARS": "0.0011",
    "CLP": "0.0011", "COP": "0.00025", "ZAR": "0.054", "KES": "0.0077", "NGN": "0.00066",
    "EGP": "0.02", "MAD": "0.1", "INR": "0.012", "THB": "0.028", "IDR": "0.000063",
    "SGD": "0.74", "HKD": "0.128", "KRW": "0.00074", "CNY": "0.14", "AED": "0.2723",
    "TRY": "0.03", "SEK": "0.095", "NOK": "0.093", "DKK": "0.145", "PLN": "0.25",
    "CZK": "0.043", "HUF": "0.0027", "ISK": "0.0072", "KWD": "3.25", "BHD": "2.65",
    "VND": "0.000039", "PHP": "0.017", "PEN": "0.27",
}  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "amenity",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_amenity")),
        sa.UniqueConstraint("code", name=op.f("uq_amenity_code")),
    )
    op.create_table(
        "exchange_rate",
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("usd_per_unit", sa.Numeric(precision=20, scale=10), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("currency", name=op.f("pk_exchange_rate")),
    )
    op.create_table(
        "listing",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("host_id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("property_type", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="DRAFT", nullable=False),
        sa.Column("address_line1", sa.Text(), nullable=True),
        sa.Column("city", sa.Text(), nullable=False),
        sa.Column("region", sa.Text(), nullable=True),
        sa.Column("postal_code", sa.Text(), nullable=True),
        sa.Column("country", sa.Text(), nullable=False),
        sa.Column("latitude", sa.Double(), nullable=False),
        sa.Column("longitude", sa.Double(), nullable=False),
        sa.Column("time_zone", sa.Text(), nullable=False),
        sa.Column("check_in_time", sa.Time(), server_default="15:00", nullable=False),
        sa.Column("check_out_time", sa.Time(), server_default="11:00", nullable=False),
        sa.Column("max_guests", sa.SmallInteger(), nullable=False),
        sa.Column("bedrooms", sa.SmallInteger(), nullable=False),
        sa.Column("beds", sa.SmallInteger(), nullable=False),
        sa.Column("bathrooms", sa.Numeric(precision=3, scale=1), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("nightly_price_minor", sa.BigInteger(), nullable=False),
        sa.Column("cleaning_fee_minor", sa.BigInteger(), nullable=True),
        sa.Column("nightly_price_usd", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("instant_book", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("cancellation_policy", sa.Text(), server_default="MODERATE", nullable=False),
        sa.Column("min_nights", sa.SmallInteger(), server_default="1", nullable=False),
        sa.Column("max_nights", sa.SmallInteger(), nullable=True),
        sa.Column(
            "amenity_ids",
            postgresql.ARRAY(sa.SmallInteger()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column(
            "search_vector",
            postgresql.TSVECTOR(),
            sa.Computed("to_tsvector('simple', search_text)", persisted=True),
            nullable=False,
        ),
        sa.Column("rating_avg", sa.Numeric(precision=3, scale=2), nullable=True),
        sa.Column("review_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "cancellation_policy IN ('FLEXIBLE', 'MODERATE', 'FIRM', 'STRICT')",
            name=op.f("ck_listing_cancellation_policy"),
        ),
        sa.CheckConstraint(
            "property_type IN ('ENTIRE_PLACE', 'PRIVATE_ROOM', 'SHARED_ROOM', 'HOTEL_ROOM')",
            name=op.f("ck_listing_property_type"),
        ),
        sa.CheckConstraint(
            "status IN ('DRAFT', 'PUBLISHED', 'UNLISTED', 'SUSPENDED')",
            name=op.f("ck_listing_status"),
        ),
        sa.CheckConstraint(
            "latitude BETWEEN -90 AND 90 AND longitude BETWEEN -180 AND 180",
            name=op.f("ck_listing_coordinates"),
        ),
        sa.CheckConstraint(
            "max_nights IS NULL OR max_nights >= min_nights", name=op.f("ck_listing_nights_range")
        ),
        sa.CheckConstraint("nightly_price_minor > 0", name=op.f("ck_listing_positive_price")),
        sa.ForeignKeyConstraint(
            ["host_id"],
            ["user_account.id"],
            name=op.f("fk_listing_host_id_user_account"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listing")),
    )
    op.create_index(
        "ix_listing_amenity_ids",
        "listing",
        ["amenity_ids"],
        unique=False,
        postgresql_using="gin",
        postgresql_where=sa.text("status = 'PUBLISHED' AND deleted_at IS NULL"),
    )
    op.create_index(op.f("ix_listing_host_id"), "listing", ["host_id"], unique=False)
    op.create_index(
        "ix_listing_location",
        "listing",
        [sa.literal_column("point(longitude, latitude)")],
        unique=False,
        postgresql_using="gist",
        postgresql_where=sa.text("status = 'PUBLISHED' AND deleted_at IS NULL"),
    )
    op.create_index(
        "ix_listing_newest",
        "listing",
        ["created_at", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'PUBLISHED' AND deleted_at IS NULL"),
    )
    op.create_index(
        "ix_listing_price",
        "listing",
        ["nightly_price_usd", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'PUBLISHED' AND deleted_at IS NULL"),
    )
    op.create_index(
        "ix_listing_search_vector",
        "listing",
        ["search_vector"],
        unique=False,
        postgresql_using="gin",
        postgresql_where=sa.text("status = 'PUBLISHED' AND deleted_at IS NULL"),
    )
    op.create_table(
        "blocked_night",
        sa.Column("listing_id", sa.BigInteger(), nullable=False),
        sa.Column("night", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["listing_id"],
            ["listing.id"],
            name=op.f("fk_blocked_night_listing_id_listing"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("listing_id", "night", name=op.f("pk_blocked_night")),
    )
    op.create_table(
        "booking",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("listing_id", sa.BigInteger(), nullable=False),
        sa.Column("guest_id", sa.BigInteger(), nullable=False),
        sa.Column("check_in", sa.Date(), nullable=False),
        sa.Column("check_out", sa.Date(), nullable=False),
        sa.Column("guests", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.Text(), server_default="PENDING", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        postgresql.ExcludeConstraint(
            (sa.text("int4range(listing_id::int, listing_id::int, '[]')"), "="),
            (sa.text("daterange(check_in, check_out)"), "&&"),
            where=sa.text("status IN ('PENDING', 'CONFIRMED')"),
            using="gist",
            name="no_double_booking",
        ),
        sa.CheckConstraint(
            "status IN ('PENDING', 'CONFIRMED', 'CANCELED', 'COMPLETED')",
            name=op.f("ck_booking_status"),
        ),
        sa.CheckConstraint("check_out > check_in", name=op.f("ck_booking_stay_has_nights")),
        sa.ForeignKeyConstraint(
            ["guest_id"], ["user_account.id"], name=op.f("fk_booking_guest_id_user_account")
        ),
        sa.ForeignKeyConstraint(
            ["listing_id"], ["listing.id"], name=op.f("fk_booking_listing_id_listing")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking")),
    )
    op.create_index(op.f("ix_booking_guest_id"), "booking", ["guest_id"], unique=False)
    op.create_index(
        "ix_booking_listing_stay", "booking", ["listing_id", "check_in", "check_out"], unique=False
    )
    op.create_table(
        "listing_photo",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("listing_id", sa.BigInteger(), nullable=False),
        sa.Column("upload_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("caption", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["listing_id"],
            ["listing.id"],
            name=op.f("fk_listing_photo_listing_id_listing"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["upload_id"], ["upload.id"], name=op.f("fk_listing_photo_upload_id_upload")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listing_photo")),
        sa.UniqueConstraint(
            "listing_id", "position", name=op.f("uq_listing_photo_listing_id_position")
        ),
    )
    op.create_table(
        "night_price",
        sa.Column("listing_id", sa.BigInteger(), nullable=False),
        sa.Column("night", sa.Date(), nullable=False),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("price_minor > 0", name=op.f("ck_night_price_positive_price")),
        sa.ForeignKeyConstraint(
            ["listing_id"],
            ["listing.id"],
            name=op.f("fk_night_price_listing_id_listing"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("listing_id", "night", name=op.f("pk_night_price")),
    )
    amenity = sa.table(
        "amenity",
        sa.column("id", sa.SmallInteger),
        sa.column("code", sa.Text),
        sa.column("name", sa.Text),
        sa.column("category", sa.Text),
    )
    op.bulk_insert(
        amenity,
        [dict(zip(("id", "code", "name", "category"), row, strict=True)) for row in AMENITIES],
    )
    rate = sa.table(
        "exchange_rate", sa.column("currency", sa.Text), sa.column("usd_per_unit", sa.Numeric)
    )
    op.bulk_insert(
        rate, [{"currency": code, "usd_per_unit": value} for code, value in EXCHANGE_RATES.items()]
    )


def downgrade() -> None:
    op.drop_table("night_price")
    op.drop_table("listing_photo")
    op.drop_index("ix_booking_listing_stay", table_name="booking")
    op.drop_index(op.f("ix_booking_guest_id"), table_name="booking")
    op.drop_table("booking")
    op.drop_table("blocked_night")
    op.drop_index(
        "ix_listing_search_vector",
        table_name="listing",
        postgresql_using="gin",
        postgresql_where=sa.text("status = 'PUBLISHED' AND deleted_at IS NULL"),
    )
    op.drop_index(
        "ix_listing_price",
        table_name="listing",
        postgresql_where=sa.text("status = 'PUBLISHED' AND deleted_at IS NULL"),
    )
    op.drop_index(
        "ix_listing_newest",
        table_name="listing",
        postgresql_where=sa.text("status = 'PUBLISHED' AND deleted_at IS NULL"),
    )
    op.drop_index(
        "ix_listing_location",
        table_name="listing",
        postgresql_using="gist",
        postgresql_where=sa.text("status = 'PUBLISHED' AND deleted_at IS NULL"),
    )
    op.drop_index(op.f("ix_listing_host_id"), table_name="listing")
    op.drop_index(
        "ix_listing_amenity_ids",
        table_name="listing",
        postgresql_using="gin",
        postgresql_where=sa.text("status = 'PUBLISHED' AND deleted_at IS NULL"),
    )
    op.drop_table("listing")
    op.drop_table("exchange_rate")
    op.drop_table("amenity")
