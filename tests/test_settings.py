"""Configuration: production refuses to start without its secrets; development makes its own."""

import stat
from pathlib import Path

import pytest

from app.settings import ConfigurationError, load_settings
from app.wiring import build_payment_gateways
from gateways.paypal import PayPalGateway
from gateways.stripe import StripeGateway

VALID_KEY = "a" * 43  # 32 bytes in url-safe base64


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in (
        "DATABASE_URL",
        "REDIS_URL",
        "JWT_SECRET",
        "ROOST_FIELD_ENCRYPTION_KEY",
        "ROOST_ENV",
        "ROOST_CORS_ORIGINS",
        "STRIPE_API_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "STRIPE_API_BASE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ROOST_DATA_DIR", str(tmp_path / "data"))
    return monkeypatch


def production_env(env: pytest.MonkeyPatch) -> None:
    """The settings production needs, each valid."""
    env.setenv("ROOST_ENV", "production")
    env.setenv("DATABASE_URL", "postgresql://db/roost")
    env.setenv("JWT_SECRET", "s" * 40)
    env.setenv("ROOST_FIELD_ENCRYPTION_KEY", VALID_KEY)


def test_production_without_secrets_refuses_to_start(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ROOST_ENV", "production")
    with pytest.raises(
        ConfigurationError, match="DATABASE_URL, JWT_SECRET, ROOST_FIELD_ENCRYPTION_KEY"
    ):
        load_settings()


def test_production_refuses_a_short_jwt_secret(clean_env: pytest.MonkeyPatch) -> None:
    production_env(clean_env)
    clean_env.setenv("JWT_SECRET", "short")
    with pytest.raises(ConfigurationError, match="at least 32"):
        load_settings()


def test_production_with_its_secrets_starts(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    production_env(clean_env)
    settings = load_settings()
    assert settings.is_production
    assert settings.require_jwt_secret() == "s" * 40
    assert not (tmp_path / "data" / "secrets.json").exists()


def test_production_refuses_calendar_imports_from_private_addresses(
    clean_env: pytest.MonkeyPatch,
) -> None:
    production_env(clean_env)
    clean_env.setenv("ROOST_CALENDAR_IMPORT_ALLOW_PRIVATE", "true")
    with pytest.raises(ConfigurationError, match="ROOST_CALENDAR_IMPORT_ALLOW_PRIVATE"):
        load_settings()


def test_production_refuses_the_execution_shadow(clean_env: pytest.MonkeyPatch) -> None:
    production_env(clean_env)
    clean_env.setenv("ROOST_EXECUTION_SHADOW", "1")
    with pytest.raises(ConfigurationError, match="ROOST_EXECUTION_SHADOW"):
        load_settings()


def test_development_generates_its_secret_once_and_keeps_it(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first = load_settings().require_jwt_secret()
    second = load_settings().require_jwt_secret()
    assert first == second
    assert len(first) >= 32
    secrets_file = tmp_path / "data" / "secrets.json"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600


def test_a_given_secret_wins_over_the_generated_one(clean_env: pytest.MonkeyPatch) -> None:
    load_settings()
    clean_env.setenv("JWT_SECRET", "given-" + "g" * 40)
    assert load_settings().require_jwt_secret() == "given-" + "g" * 40


def test_cors_origins_are_a_comma_separated_list(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ROOST_CORS_ORIGINS", "https://roost.example, https://admin.roost.example")
    assert load_settings().cors_origins == ["https://roost.example", "https://admin.roost.example"]


def test_stripe_is_offered_when_its_key_is_set_and_test_stays_in_development(
    clean_env: pytest.MonkeyPatch,
) -> None:
    assert set(build_payment_gateways(load_settings()).by_provider) == {"TEST"}
    clean_env.setenv("STRIPE_API_KEY", "sk_test_123")
    clean_env.setenv("STRIPE_WEBHOOK_SECRET", "whsec_old, whsec_new")
    settings = load_settings()
    assert settings.stripe_api_base == "https://api.stripe.com"
    assert [secret.get_secret_value() for secret in settings.stripe_webhook_secret] == [
        "whsec_old",
        "whsec_new",
    ]
    assert "sk_test_123" not in repr(settings)
    gateways = build_payment_gateways(settings).by_provider
    assert set(gateways) == {"TEST", "STRIPE"}
    assert isinstance(gateways["STRIPE"], StripeGateway)


def test_an_unknown_environment_is_refused(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ROOST_ENV", "staging")
    with pytest.raises(ConfigurationError, match="ROOST_ENV"):
        load_settings()


def test_a_field_encryption_key_that_is_not_32_bytes_is_refused(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("ROOST_FIELD_ENCRYPTION_KEY", "too-short")
    with pytest.raises(ConfigurationError, match="32 random bytes"):
        load_settings()


def test_trusted_proxies_must_be_addresses_or_networks(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ROOST_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")
    assert load_settings().trusted_proxies == ["10.0.0.0/8", "127.0.0.1"]
    clean_env.setenv("ROOST_TRUSTED_PROXIES", "nginx")
    with pytest.raises(ConfigurationError, match="not an IP address or network"):
        load_settings()


def test_paypal_is_offered_when_its_client_id_and_secret_are_set(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("PAYPAL_CLIENT_ID", "client-id")
    assert "PAYPAL" not in build_payment_gateways(load_settings()).by_provider
    clean_env.setenv("PAYPAL_CLIENT_SECRET", "client-secret")
    clean_env.setenv("ROOST_FRONTEND_URL", "https://roost.example/")
    settings = load_settings()
    assert "client-secret" not in repr(settings)
    gateway = build_payment_gateways(settings).by_provider["PAYPAL"]
    assert isinstance(gateway, PayPalGateway)
    assert gateway._return_url == "https://roost.example/payments/paypal/return"
    assert gateway._cancel_url == "https://roost.example/payments/paypal/cancel"
    assert gateway._api_base == "https://api-m.sandbox.paypal.com"
