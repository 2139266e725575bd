"""The billing policy in force, from the `[billing]` settings."""

from __future__ import annotations

from decimal import Decimal

from callnow.config import BillingSettings
from callnow.domain.destinations import DestinationClass
from callnow.domain.rating import BillingPolicy, FlatRate, OwnerLegRate, default_tariffs


def policy_from(settings: BillingSettings) -> BillingPolicy:
    tariffs = dict(default_tariffs())
    tariffs[DestinationClass.LOCAL] = FlatRate(settings.local_flat_minor)
    tariffs[DestinationClass.INTERNAL] = OwnerLegRate(
        settings.owner_leg_flat_minor, settings.owner_leg_per_minute_minor
    )
    return BillingPolicy(
        currency_code=settings.currency_code,
        minor_unit_exponent=settings.minor_unit_exponent,
        tax_rate=Decimal(settings.tax_rate),
        tariffs=tariffs,
    )
