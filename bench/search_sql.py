"""The search mix and its plain SQL, shared by bench/search.py and bench/search_reference.py.

The SQL is what a hand-written endpoint would send for the filters of Roost's search (the same
conditions as services/search.py, written out by hand), not an import of the app's code.
"""

import math
import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

CITIES = {
    "Lisbon": (38.7223, -9.1393), "Paris": (48.8566, 2.3522), "London": (51.5072, -0.1276),
    "New York": (40.7128, -74.0060), "Tokyo": (35.6762, 139.6503), "Barcelona": (41.3874, 2.1686),
    "Rome": (41.9028, 12.4964), "Sydney": (-33.8688, 151.2093), "Mexico City": (19.4326, -99.1332),
    "Cape Town": (-33.9249, 18.4241), "Berlin": (52.52, 13.405), "Bangkok": (13.7563, 100.5018),
}  # fmt: skip
AMENITY_SETS = [["wifi", "pool"], ["kitchen", "washer", "free_parking"], ["wifi", "workspace"]]
# A results page as a frontend shows it: about 500 fields for 20 listings ("1,000+ places" when
# the count stopped at its cap).
PAGE_FIELDS = """
  totalCount totalCountIsExact
  pageInfo { hasNextPage endCursor }
  edges { node {
    id title propertyType rating reviewCount
    nightlyPrice { amount currency formatted }
    address { city country }
    host { firstName avatarUrl }
    photos { url }
    amenities { code }
  } }
"""
QUERY = f"""
query Search($filter: ListingFilter, $sort: ListingSort, $after: String) {{
  searchListings(filter: $filter, sort: $sort, first: 20, after: $after) {{ {PAGE_FIELDS} }}
}}
"""


@dataclass(frozen=True)
class Search:
    kind: str
    filter: dict[str, Any]
    sort: str
    pages: int = 1  # deep searches walk this many pages


def searches(count: int, seed: int = 11) -> list[Search]:
    rng = random.Random(seed)
    today = date.today()
    made = []
    for i in range(count):
        city, (lat, lng) = rng.choice(list(CITIES.items()))
        kind = ["city+dates+guests", "near+price", "amenities", "deep pages"][i % 4]
        if kind == "city+dates+guests":
            check_in = today + timedelta(days=rng.randint(5, 300))
            made.append(
                Search(
                    kind,
                    {
                        "location": city,
                        "checkIn": check_in.isoformat(),
                        "checkOut": (check_in + timedelta(days=rng.randint(2, 5))).isoformat(),
                        "guests": rng.randint(1, 4),
                    },
                    "RELEVANCE",
                )
            )
        elif kind == "near+price":
            made.append(
                Search(
                    kind,
                    {
                        "near": {
                            "latitude": lat,
                            "longitude": lng,
                            "radiusKm": rng.choice([3, 8, 15]),
                        },
                        "minPrice": "40",
                        "maxPrice": str(rng.choice([120, 200, 350])),
                        "currency": rng.choice(["USD", "EUR"]),
                    },
                    "PRICE_ASC",
                )
            )
        elif kind == "amenities":
            made.append(
                Search(kind, {"location": city, "amenities": rng.choice(AMENITY_SETS)}, "RATING")
            )
        else:
            made.append(Search(kind, {"location": city}, "NEWEST", pages=5))
    return made


# The same searches in plain SQL: what a hand-written endpoint would send.
LISTING_COLUMNS = """
  l.id, l.title, l.property_type, l.latitude, l.longitude, l.max_guests, l.bedrooms, l.beds,
  l.bathrooms, l.rating_avg, l.review_count, l.instant_book, l.nightly_price_minor, l.currency,
  l.city, l.region, l.country, l.host_id, l.amenity_ids, l.created_at
"""
PUBLISHED = "l.status = 'PUBLISHED' AND l.deleted_at IS NULL AND l.moderation = 'APPROVED'"
# totalCount is exact up to this many matches; past it, this many and totalCountIsExact false.
COUNT_CAP = 1000


def tsquery(text: str) -> str:
    return " & ".join(f"{word.lower()}:*" for word in text.split())


def sql_for(search: Search, after: tuple | None) -> tuple[str, str, list[Any]]:
    """(page SQL, count SQL, parameters) for one page of a search; the count is capped."""
    f = search.filter
    where, params = [PUBLISHED], []

    def param(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    if "location" in f:
        where.append(f"l.search_vector @@ to_tsquery('simple', {param(tsquery(f['location']))})")
    if "checkIn" in f:
        ci, co = date.fromisoformat(f["checkIn"]), date.fromisoformat(f["checkOut"])
        p_in, p_out = param(ci), param(co)
        nights = param((co - ci).days)
        where += [
            f"l.max_guests >= {param(f['guests'])}",
            f"l.min_nights <= {nights}",
            f"(l.max_nights IS NULL OR l.max_nights >= {nights})",
            f"NOT EXISTS (SELECT 1 FROM blocked_night b WHERE b.listing_id = l.id"
            f" AND b.night >= {p_in} AND b.night < {p_out})",
            f"NOT EXISTS (SELECT 1 FROM booking k WHERE k.listing_id = l.id AND k.status IN"
            f" ('PENDING', 'CONFIRMED') AND k.check_in < {p_out} AND k.check_out > {p_in})",
        ]
    if "near" in f:
        near = f["near"]
        lat, lng, radius = near["latitude"], near["longitude"], near["radiusKm"]
        dlat, dlng = radius / 111.32, radius / (111.32 * math.cos(math.radians(lat)))
        where.append(
            f"point(l.longitude, l.latitude) <@ box(point({param(lng - dlng)}, {param(lat - dlat)}),"
            f" point({param(lng + dlng)}, {param(lat + dlat)}))"
        )
        p_lat, p_lng = param(lat), param(lng)
        where.append(
            f"2 * 6371.0088 * asin(sqrt(least(power(sin((radians(l.latitude) - radians({p_lat})) / 2), 2)"
            f" + cos(radians({p_lat})) * cos(radians(l.latitude))"
            f" * power(sin((radians(l.longitude) - radians({p_lng})) / 2), 2), 1))) <= {param(float(radius))}"
        )
    if "minPrice" in f:
        rate = f"(SELECT usd_per_unit FROM exchange_rate WHERE currency = {param(f['currency'])})"
        where.append(f"l.nightly_price_usd >= {param(float(f['minPrice']))}::numeric * {rate}")
        where.append(f"l.nightly_price_usd <= {param(float(f['maxPrice']))}::numeric * {rate}")
    if "amenities" in f:
        where.append(
            "l.amenity_ids @> (SELECT array_agg(id ORDER BY id) FROM amenity"
            f" WHERE code = ANY({param(f['amenities'])}::text[]))"
        )
    # Counts one past the cap, which says there are more.
    count_sql = (
        f"SELECT count(*) FROM (SELECT 1 FROM listing l WHERE {' AND '.join(where)}"
        f" LIMIT {COUNT_CAP + 1}) AS capped"
    )
    count_params = list(params)
    key = {
        "RELEVANCE": "ts_rank(l.search_vector, to_tsquery('simple', $1))::float8",
        "PRICE_ASC": "l.nightly_price_usd",
        # As Listing.rating: no rating below 3 published reviews.
        "RATING": "coalesce(CASE WHEN l.review_count >= 3 THEN l.rating_avg END, -1)",
        "NEWEST": "l.created_at",
    }[search.sort]
    ascending = search.sort == "PRICE_ASC"
    if after is not None:
        op = ">" if ascending else "<"
        where.append(f"({key}, l.id) {op} ({param(after[0])}, {param(after[1])})")
    direction = "ASC" if ascending else "DESC"
    page_sql = (
        f"SELECT {LISTING_COLUMNS}, {key} AS sort_key FROM listing l WHERE {' AND '.join(where)}"
        f" ORDER BY sort_key {direction}, l.id {direction} LIMIT 21"
    )
    return page_sql, count_sql, (params, count_params)  # type: ignore[return-value]
