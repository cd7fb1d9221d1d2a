"""Shared steps of the listing tests: a host, and a listing of theirs."""

import httpx

from tests.accounts_helpers import bearer, register
from tests.helpers import gql

LISTING_FIELDS = """
  id title propertyType status timeZone instantBook cancellationPolicy minNights maxNights
  maxGuests bedrooms beds bathrooms latitude longitude checkInTime checkOutTime
  address { line1 city region postalCode country }
  nightlyPrice { amount currency formatted } cleaningFee { amount currency formatted }
  amenities { code name category } photos { id url width height caption }
  host { id firstName } rating reviewCount createdAt
"""
CREATE = f"""
mutation($input: CreateListingInput!) {{ createListing(input: $input) {{ {LISTING_FIELDS} }} }}
"""
UPDATE = """
mutation($id: ID!, $input: UpdateListingInput!) {
  updateListing(id: $id, input: $input) { id title status nightlyPrice { amount currency } }
}
"""
BLOCK = "mutation($id: ID!, $f: Date!, $t: Date!) { blockDates(listingId: $id, from: $f, to: $t) }"


def listing_input(**overrides: object) -> dict:
    values = {
        "title": "Alfama loft with a view",
        "description": "Bright loft over the rooftops.\nFive minutes from the tram.",
        "propertyType": "ENTIRE_PLACE",
        "address": {"line1": "Rua dos Remédios 12", "city": "Lisboa", "country": "PT"},
        "latitude": 38.7115,
        "longitude": -9.1300,
        "maxGuests": 3,
        "bedrooms": 1,
        "beds": 2,
        "bathrooms": 1.5,
        "nightlyPrice": {"amount": "95.50", "currency": "EUR"},
        "cleaningFee": {"amount": "30", "currency": "EUR"},
        "amenities": ["wifi", "kitchen", "air_conditioning"],
        "instantBook": False,
        "cancellationPolicy": "FIRM",
        "minNights": 2,
        "maxNights": 30,
    }
    values.update(overrides)
    return values


async def host_token(client: httpx.AsyncClient) -> str:
    return (await register(client, role="HOST"))["accessToken"]


async def create(client: httpx.AsyncClient, token: str, **overrides: object) -> dict:
    body = await gql(client, CREATE, {"input": listing_input(**overrides)}, headers=bearer(token))
    assert "errors" not in body, body
    return body["data"]["createListing"]
