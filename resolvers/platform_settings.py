"""The platform's settings, for admins only."""

from functools import partial
from typing import Any

import strawberry

from resolvers.permissions import IsAdmin, require_user
from schema.context import Info
from schema.platform_settings import PlatformSettings, UpdatePlatformSettingsInput
from services import platform_settings as platform_settings_service


async def platform_settings(info: Info) -> PlatformSettings:
    # Read afresh, not from the cache: the admin sees what is stored this moment.
    async with info.context.database.read_session() as session:
        settings = await platform_settings_service.current(
            session, defaults=info.context.services.default_settings
        )
    return PlatformSettings.of(settings)


async def update_platform_settings(
    info: Info, input: UpdatePlatformSettingsInput
) -> PlatformSettings:
    admin = await require_user(info)
    changes: dict[str, Any] = {}
    for name in platform_settings_service.SETTINGS:
        value = getattr(input, name)
        if value is strawberry.UNSET:
            continue
        if name == "tax_percent_by_country" and value is not None:
            value = [(rate.country, rate.percent) for rate in value]
        changes[name] = value
    services = info.context.services
    settings = await info.context.database.transaction(
        partial(
            platform_settings_service.update,
            admin=admin,
            changes=changes,
            now=services.clock(),
            defaults=services.default_settings,
        )
    )
    await services.platform_settings.changed()
    return PlatformSettings.of(settings)


@strawberry.type
class PlatformSettingsQueries:
    platform_settings: PlatformSettings = strawberry.field(
        resolver=platform_settings,
        permission_classes=[IsAdmin],
        description="Admins: the platform's fees, taxes, windows and moderation switch in force.",
    )


@strawberry.type
class PlatformSettingsMutations:
    update_platform_settings: PlatformSettings = strawberry.mutation(
        resolver=update_platform_settings,
        permission_classes=[IsAdmin],
        description="Admins: changes platform settings (audited as settings.update); they apply "
        "to the next quote, booking and payout on every server, without a restart. "
        "BAD_USER_INPUT names each field out of bounds.",
    )
