"""The platform's settings, as admins read and change them."""

from decimal import Decimal
from typing import Self

import strawberry

from services.platform_settings import PlatformSettings as Settings


@strawberry.type(description="An occupancy tax rate of one country.")
class CountryTaxRate:
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 code, like PT.")
    percent: Decimal = strawberry.field(description='The percentage, like "6.50".')


@strawberry.input(description="An occupancy tax rate of one country.")
class CountryTaxRateInput:
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 code, like PT.")
    percent: Decimal = strawberry.field(description="0 to 100, with at most 2 decimals.")


@strawberry.type(
    description="Admins: the platform's settings in force. Each is the environment's "
    "default (README) until an admin changes it; changes apply at once on every server."
)
class PlatformSettings:
    guest_service_fee_percent: Decimal = strawberry.field(
        description="What guests pay Roost on nights plus cleaning, in percent."
    )
    host_fee_percent: Decimal = strawberry.field(
        description="What Roost keeps of a host's nights plus cleaning, in percent."
    )
    occupancy_tax_percent: Decimal = strawberry.field(
        description="The occupancy tax of a country without a rate of its own, in percent."
    )
    tax_percent_by_country: list[CountryTaxRate] = strawberry.field(
        description="Occupancy tax rates of single countries, by code."
    )
    payment_window_minutes: int = strawberry.field(
        description="How long a new booking holds its nights while the guest pays."
    )
    host_response_hours: int = strawberry.field(
        description="How long a host has to accept or decline a request to book."
    )
    payout_delay_hours: float = strawberry.field(
        description="How long after a stay ends its host is paid."
    )
    moderation_enabled: bool = strawberry.field(
        description="Whether listings published for the first time, and published listings "
        "whose content changes, wait for an admin's approval before guests see them."
    )
    changed: list[str] = strawberry.field(
        description="The settings an admin set (names as in this type); the others are the "
        "environment's defaults."
    )

    @classmethod
    def of(cls, settings: Settings) -> Self:
        names = {
            "guest_service_fee_percent": "guestServiceFeePercent",
            "host_fee_percent": "hostFeePercent",
            "occupancy_tax_percent": "occupancyTaxPercent",
            "tax_percent_by_country": "taxPercentByCountry",
            "payment_window_minutes": "paymentWindowMinutes",
            "host_response_hours": "hostResponseHours",
            "payout_delay_hours": "payoutDelayHours",
            "moderation_enabled": "moderationEnabled",
        }
        return cls(
            guest_service_fee_percent=settings.guest_service_fee_percent,
            host_fee_percent=settings.host_fee_percent,
            occupancy_tax_percent=settings.occupancy_tax_percent,
            tax_percent_by_country=[
                CountryTaxRate(country=country, percent=percent)
                for country, percent in sorted(settings.tax_percent_by_country.items())
            ],
            payment_window_minutes=int(settings.payment_window.total_seconds() // 60),
            host_response_hours=int(settings.host_response_window.total_seconds() // 3600),
            payout_delay_hours=settings.payout_delay.total_seconds() / 3600,
            moderation_enabled=settings.moderation_enabled,
            changed=[api for name, api in names.items() if name in settings.changed],
        )


@strawberry.input(
    description="The settings to change; one left out stays as it is, one given as null "
    "returns to the environment's default."
)
class UpdatePlatformSettingsInput:
    guest_service_fee_percent: Decimal | None = strawberry.field(
        default=strawberry.UNSET, description="0 to 100, with at most 2 decimals."
    )
    host_fee_percent: Decimal | None = strawberry.field(
        default=strawberry.UNSET, description="0 to 100, with at most 2 decimals."
    )
    occupancy_tax_percent: Decimal | None = strawberry.field(
        default=strawberry.UNSET, description="0 to 100, with at most 2 decimals."
    )
    tax_percent_by_country: list[CountryTaxRateInput] | None = strawberry.field(
        default=strawberry.UNSET,
        description="Every country's own rate (replaces the whole list): at most 250, each "
        "country once.",
    )
    payment_window_minutes: int | None = strawberry.field(
        default=strawberry.UNSET, description="1 to 1440 (a day)."
    )
    host_response_hours: int | None = strawberry.field(
        default=strawberry.UNSET, description="1 to 336 (14 days)."
    )
    payout_delay_hours: int | None = strawberry.field(
        default=strawberry.UNSET, description="0 to 1440 (60 days)."
    )
    moderation_enabled: bool | None = strawberry.field(
        default=strawberry.UNSET, description="Whether listings wait for an admin's review."
    )
