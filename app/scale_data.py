"""`roost seed --listings N`: a large, realistic data set for benchmarks, loaded with COPY.

Real cities on six continents with their coordinates and currencies, hosts with a few shared
placeholder photos each, amenities, blocked nights and bookings across the next year.
"""

import io
import random
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import cast

import asyncpg
from PIL import Image, ImageDraw
from sqlalchemy import select, text

from db.database import Database
from db.models import Amenity, ExchangeRate
from db.states import BookingStatus, CancellationPolicy, ListingStatus, Role
from services.exchange_rates import usd_per_minor_unit
from services.listings import search_text
from services.money import minor_digits
from services.pricing import FeePolicy, price_stay
from services.stays import stay_bounds


@dataclass(frozen=True)
class City:
    name: str
    region: str | None
    country: str
    currency: str
    latitude: float
    longitude: float
    time_zone: str
    usd_per_night: int  # a typical nightly price


CITIES = [
    City("Lisbon", "Lisboa", "PT", "EUR", 38.7223, -9.1393, "Europe/Lisbon", 110),
    City("Porto", "Porto", "PT", "EUR", 41.1579, -8.6291, "Europe/Lisbon", 95),
    City("Barcelona", "Catalonia", "ES", "EUR", 41.3874, 2.1686, "Europe/Madrid", 140),
    City("Madrid", "Madrid", "ES", "EUR", 40.4168, -3.7038, "Europe/Madrid", 120),
    City("Paris", "Île-de-France", "FR", "EUR", 48.8566, 2.3522, "Europe/Paris", 180),
    City("Nice", "Provence-Alpes-Côte d'Azur", "FR", "EUR", 43.7102, 7.2620, "Europe/Paris", 150),
    City("Rome", "Lazio", "IT", "EUR", 41.9028, 12.4964, "Europe/Rome", 130),
    City("Florence", "Tuscany", "IT", "EUR", 43.7696, 11.2558, "Europe/Rome", 140),
    City("Berlin", "Berlin", "DE", "EUR", 52.5200, 13.4050, "Europe/Berlin", 100),
    City("Amsterdam", "North Holland", "NL", "EUR", 52.3676, 4.9041, "Europe/Amsterdam", 190),
    City("London", "England", "GB", "GBP", 51.5072, -0.1276, "Europe/London", 170),
    City("Edinburgh", "Scotland", "GB", "GBP", 55.9533, -3.1883, "Europe/London", 130),
    City("Reykjavík", None, "IS", "ISK", 64.1466, -21.9426, "Atlantic/Reykjavik", 160),
    City("Copenhagen", "Capital Region", "DK", "DKK", 55.6761, 12.5683, "Europe/Copenhagen", 150),
    City("Prague", "Prague", "CZ", "CZK", 50.0755, 14.4378, "Europe/Prague", 85),
    City("Budapest", "Budapest", "HU", "HUF", 47.4979, 19.0402, "Europe/Budapest", 75),
    City("Istanbul", "Istanbul", "TR", "TRY", 41.0082, 28.9784, "Europe/Istanbul", 70),
    City("Marrakesh", "Marrakesh-Safi", "MA", "MAD", 31.6295, -7.9811, "Africa/Casablanca", 80),
    City("Cape Town", "Western Cape", "ZA", "ZAR", -33.9249, 18.4241, "Africa/Johannesburg", 90),
    City("Nairobi", "Nairobi", "KE", "KES", -1.2921, 36.8219, "Africa/Nairobi", 60),
    City("Cairo", "Cairo", "EG", "EGP", 30.0444, 31.2357, "Africa/Cairo", 50),
    City("New York", "New York", "US", "USD", 40.7128, -74.0060, "America/New_York", 220),
    City(
        "San Francisco", "California", "US", "USD", 37.7749, -122.4194, "America/Los_Angeles", 230
    ),
    City("Miami", "Florida", "US", "USD", 25.7617, -80.1918, "America/New_York", 190),
    City("Austin", "Texas", "US", "USD", 30.2672, -97.7431, "America/Chicago", 150),
    City("Honolulu", "Hawaii", "US", "USD", 21.3099, -157.8581, "Pacific/Honolulu", 250),
    City("Toronto", "Ontario", "CA", "CAD", 43.6532, -79.3832, "America/Toronto", 140),
    City(
        "Vancouver", "British Columbia", "CA", "CAD", 49.2827, -123.1207, "America/Vancouver", 160
    ),
    City("Mexico City", "CDMX", "MX", "MXN", 19.4326, -99.1332, "America/Mexico_City", 70),
    City("Tulum", "Quintana Roo", "MX", "MXN", 20.2114, -87.4654, "America/Cancun", 150),
    City("Rio de Janeiro", "RJ", "BR", "BRL", -22.9068, -43.1729, "America/Sao_Paulo", 90),
    City("São Paulo", "SP", "BR", "BRL", -23.5505, -46.6333, "America/Sao_Paulo", 75),
    City(
        "Buenos Aires", None, "AR", "ARS", -34.6037, -58.3816, "America/Argentina/Buenos_Aires", 60
    ),
    City("Lima", "Lima", "PE", "PEN", -12.0464, -77.0428, "America/Lima", 55),
    City("Tokyo", "Tokyo", "JP", "JPY", 35.6762, 139.6503, "Asia/Tokyo", 130),
    City("Kyoto", "Kyoto", "JP", "JPY", 35.0116, 135.7681, "Asia/Tokyo", 140),
    City("Seoul", "Seoul", "KR", "KRW", 37.5665, 126.9780, "Asia/Seoul", 90),
    City("Bangkok", "Bangkok", "TH", "THB", 13.7563, 100.5018, "Asia/Bangkok", 50),
    City("Ubud", "Bali", "ID", "IDR", -8.5069, 115.2625, "Asia/Makassar", 60),
    City("Singapore", None, "SG", "SGD", 1.3521, 103.8198, "Asia/Singapore", 160),
    City("Hong Kong", None, "HK", "HKD", 22.3193, 114.1694, "Asia/Hong_Kong", 140),
    City("Mumbai", "Maharashtra", "IN", "INR", 19.0760, 72.8777, "Asia/Kolkata", 60),
    City("Dubai", "Dubai", "AE", "AED", 25.2048, 55.2708, "Asia/Dubai", 170),
    City("Sydney", "New South Wales", "AU", "AUD", -33.8688, 151.2093, "Australia/Sydney", 170),
    City("Melbourne", "Victoria", "AU", "AUD", -37.8136, 144.9631, "Australia/Melbourne", 140),
    City("Auckland", "Auckland", "NZ", "NZD", -36.8485, 174.7633, "Pacific/Auckland", 130),
]

KINDS = [
    ("ENTIRE_PLACE", ["apartment", "loft", "studio", "house", "cottage", "villa", "townhouse"]),
    ("PRIVATE_ROOM", ["room", "guest room", "suite"]),
    ("SHARED_ROOM", ["shared room", "bunk"]),
    ("HOTEL_ROOM", ["boutique hotel room", "hotel room"]),
]
ADJECTIVES = [
    "Sunny", "Quiet", "Cosy", "Bright", "Modern", "Historic", "Charming", "Spacious",
    "Stylish", "Airy", "Central", "Leafy", "Minimalist", "Colourful", "Rustic", "Elegant",
]  # fmt: skip
SETTINGS = [
    "near the old town", "by the river", "with a rooftop terrace", "close to the beach",
    "in a green courtyard", "above a bakery", "with a city view", "near the market",
    "with a garden", "next to the park", "by the metro", "in a restored building",
]  # fmt: skip
POLICIES = [
    CancellationPolicy.FLEXIBLE,
    CancellationPolicy.MODERATE,
    CancellationPolicy.MODERATE,
    CancellationPolicy.FIRM,
    CancellationPolicy.STRICT,
]
PLACEHOLDER_PHOTOS = 12
PHOTO_COLOURS = [
    (214, 97, 66), (66, 135, 214), (87, 170, 92), (232, 185, 74), (150, 96, 190), (60, 60, 60),
]  # fmt: skip


def _placeholder_images(media_root: Path) -> list[tuple[str, int, int]]:
    """A dozen small generated photos, written once; every seeded listing shows some of them."""
    keys = []
    for index in range(PLACEHOLDER_PHOTOS):
        key = f"seed/placeholder-{index}.jpg"
        path = media_root / key
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            image = Image.new("RGB", (640, 426), PHOTO_COLOURS[index % len(PHOTO_COLOURS)])
            draw = ImageDraw.Draw(image)
            draw.rectangle((80 + index * 10, 120, 560, 380), outline=(255, 255, 255), width=6)
            draw.polygon([(80, 120), (320, 30 + index * 4), (560, 120)], fill=(250, 250, 245))
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=80)
            path.write_bytes(buffer.getvalue())
        keys.append((key, 640, 426))
    return keys


async def seed_listings(database: Database, *, count: int, media_root: Path, seed: int = 7) -> str:
    """Adds ``count`` listings (and their hosts, guests, photos, blocks and bookings)."""
    started = time.perf_counter()
    rng = random.Random(seed)
    today = date.today()
    placeholders = _placeholder_images(media_root)
    hosts_wanted = max(1, count // 20)
    guests_wanted = max(1, count // 10)

    async with database.engine.connect() as connection:
        amenity_ids = list((await connection.execute(select(Amenity.id))).scalars())
        rates = dict(
            (
                await connection.execute(select(ExchangeRate.currency, ExchangeRate.usd_per_unit))
            ).all()
        )
        raw = await connection.get_raw_connection()
        pg = cast(asyncpg.Connection, raw.driver_connection)
        run = f"{int(time.time())}-{rng.randrange(10**6)}"

        # Users: hosts and guests, without passwords (they are for load, not for signing in).
        now = datetime.now(UTC)
        users = [
            (f"seed-host-{run}-{i}@example.com", "Host", f"No. {i}", [Role.GUEST, Role.HOST], now)
            for i in range(hosts_wanted)
        ] + [
            (f"seed-guest-{run}-{i}@example.com", "Guest", f"No. {i}", [Role.GUEST], now)
            for i in range(guests_wanted)
        ]
        await pg.copy_records_to_table(
            "user_account",
            records=users,
            columns=["email", "first_name", "last_name", "roles", "created_at"],
        )
        user_ids = await pg.fetch(
            "SELECT id, $2 = ANY(roles) AS is_host FROM user_account WHERE email LIKE $1",
            f"seed-%-{run}-%",
            Role.HOST,
        )
        host_ids = [r["id"] for r in user_ids if r["is_host"]]
        guest_ids = [r["id"] for r in user_ids if not r["is_host"]]

        # Each host owns three uploads that point at shared placeholder files.
        uploads = [
            (host, key, key, "image/jpeg", width, height, 40_000, now)
            for host in host_ids
            for key, width, height in rng.sample(placeholders, 3)
        ]
        await pg.copy_records_to_table(
            "upload",
            records=uploads,
            columns=[
                "owner_id", "storage_key", "thumbnail_key", "content_type", "width", "height",
                "byte_size", "created_at",
            ],
        )  # fmt: skip
        upload_rows = await pg.fetch(
            "SELECT id, owner_id FROM upload WHERE owner_id = ANY($1::bigint[])", host_ids
        )
        uploads_of: dict[int, list[int]] = {}
        for row in upload_rows:
            uploads_of.setdefault(row["owner_id"], []).append(row["id"])

        listings = []
        for i in range(count):
            city = rng.choice(CITIES)
            property_type, nouns = rng.choices(KINDS, weights=[70, 20, 4, 6])[0]
            title = f"{rng.choice(ADJECTIVES)} {rng.choice(nouns)} {rng.choice(SETTINGS)}"
            usd = city.usd_per_night * rng.uniform(0.45, 2.4)
            if property_type != "ENTIRE_PLACE":
                usd *= 0.55
            rate = rates[city.currency]
            digits = minor_digits(city.currency)
            local = Decimal(usd) / rate
            # Round to a price a host would pick: whole units, or hundreds for small currencies.
            step = Decimal(1) if rate > Decimal("0.05") else Decimal(100)
            local = max(step, (local / step).quantize(Decimal(1)) * step)
            minor = int(local.scaleb(digits))
            bedrooms = rng.choice([0, 1, 1, 2, 2, 3, 4]) if property_type == "ENTIRE_PLACE" else 1
            guests = max(1, bedrooms * 2 + rng.choice([0, 1, 2]))
            created = now - timedelta(days=rng.uniform(0, 900))
            rating = Decimal(f"{rng.uniform(3.6, 5.0):.2f}") if rng.random() < 0.8 else None
            listings.append(
                (
                    host_ids[i % len(host_ids)],
                    title,
                    f"A {title.lower()} in {city.name}. Fast wifi, fresh linen, and a host "
                    "who answers quickly.",
                    property_type,
                    ListingStatus.PUBLISHED if rng.random() > 0.03 else ListingStatus.UNLISTED,
                    city.name,
                    city.region,
                    city.country,
                    city.latitude + rng.gauss(0, 0.035),
                    city.longitude + rng.gauss(0, 0.045),
                    city.time_zone,
                    guests,
                    bedrooms,
                    max(1, bedrooms + rng.choice([0, 0, 1])),
                    Decimal(rng.choice(["1", "1", "1.5", "2", "2.5"])),
                    city.currency,
                    minor,
                    int(minor * rng.uniform(0.1, 0.4)) if rng.random() < 0.7 else None,
                    minor * usd_per_minor_unit(city.currency, rate),
                    rng.random() < 0.6,
                    rng.choice(POLICIES),
                    rng.choice([1, 1, 1, 2, 2, 3, 5, 7]),
                    rng.choice([None, None, 14, 30, 90]),
                    sorted(rng.sample(amenity_ids, rng.randint(5, 22))),
                    search_text(
                        city=city.name, region=city.region, country=city.country, title=title
                    ),
                    rating,
                    rng.randint(1, 240) if rating is not None else 0,
                    created,
                    created,
                )
            )
        columns = [
            "host_id", "title", "description", "property_type", "status", "city", "region",
            "country", "latitude", "longitude", "time_zone", "max_guests", "bedrooms", "beds",
            "bathrooms", "currency", "nightly_price_minor", "cleaning_fee_minor",
            "nightly_price_usd", "instant_book", "cancellation_policy", "min_nights", "max_nights",
            "amenity_ids", "search_text", "rating_avg", "review_count", "created_at", "updated_at",
        ]  # fmt: skip
        await pg.copy_records_to_table("listing", records=listings, columns=columns)
        listing_rows = await pg.fetch(
            "SELECT id, host_id, currency, country, nightly_price_minor, cleaning_fee_minor,"
            " cancellation_policy, instant_book, time_zone, check_in_time, check_out_time"
            " FROM listing WHERE host_id = ANY($1::bigint[])",
            host_ids,
        )
        fees = FeePolicy()

        photos, blocks, bookings = [], [], []
        for row in listing_rows:
            own = uploads_of[row["host_id"]]
            for position, upload_id in enumerate(rng.sample(own, rng.randint(1, len(own)))):
                photos.append((row["id"], upload_id, position, None))
            # A few blocked stretches and about three bookings across the next year.
            taken: set[date] = set()
            for _ in range(rng.randint(0, 3)):
                start = today + timedelta(days=rng.randint(0, 360))
                for offset in range(rng.randint(1, 5)):
                    taken.add(start + timedelta(days=offset))
            blocks += [(row["id"], night) for night in taken]
            for _ in range(3):
                check_in = today + timedelta(days=rng.randint(-30, 360))
                nights = rng.randint(1, 7)
                stay = {check_in + timedelta(days=d) for d in range(nights)}
                if stay & taken:
                    continue
                taken |= stay
                status = rng.choices(
                    [BookingStatus.CONFIRMED, BookingStatus.PENDING, BookingStatus.CANCELED],
                    weights=[78, 10, 12],
                )[0]
                if status == BookingStatus.CONFIRMED and check_in + timedelta(days=nights) < today:
                    status = BookingStatus.COMPLETED
                if status == BookingStatus.CANCELED:
                    taken -= stay
                check_out = check_in + timedelta(days=nights)
                price = price_stay(
                    check_in=check_in,
                    check_out=check_out,
                    nightly_price=row["nightly_price_minor"],
                    night_overrides={},
                    cleaning_fee=row["cleaning_fee_minor"],
                    currency=row["currency"],
                    country=row["country"],
                    fees=fees,
                )
                starts_at, ends_at = stay_bounds(
                    check_in,
                    check_out,
                    time_zone=row["time_zone"],
                    check_in_time=row["check_in_time"],
                    check_out_time=row["check_out_time"],
                )
                bookings.append(
                    (
                        row["id"],
                        rng.choice(guest_ids),
                        check_in,
                        check_out,
                        rng.randint(1, 2),
                        status,
                        price.currency,
                        list(price.night_prices),
                        price.cleaning_fee,
                        price.service_fee,
                        price.taxes,
                        price.total,
                        row["cancellation_policy"],
                        row["instant_book"],
                        starts_at,
                        ends_at,
                        now + timedelta(minutes=15) if status == BookingStatus.PENDING else None,
                        now,
                        now,
                    )
                )
        await pg.copy_records_to_table(
            "listing_photo",
            records=photos,
            columns=["listing_id", "upload_id", "position", "caption"],
        )
        await pg.copy_records_to_table(
            "blocked_night", records=blocks, columns=["listing_id", "night"]
        )
        await pg.copy_records_to_table(
            "booking",
            records=bookings,
            columns=[
                "listing_id", "guest_id", "check_in", "check_out", "guests", "status",
                "currency", "night_prices_minor", "cleaning_fee_minor", "service_fee_minor",
                "taxes_minor", "total_minor", "cancellation_policy", "instant_book", "starts_at",
                "ends_at", "expires_at", "created_at", "updated_at",
            ],
        )  # fmt: skip
        await connection.commit()  # the copies retired cached searches (db triggers)
        await connection.execute(text("ANALYZE"))
        await connection.commit()
    elapsed = time.perf_counter() - started
    return (
        f"Added {len(listing_rows):,} listings, {len(host_ids):,} hosts, {len(guest_ids):,} "
        f"guests, {len(photos):,} photos, {len(blocks):,} blocked nights and "
        f"{len(bookings):,} bookings in {elapsed:.0f} s."
    )
