"""TLS / SASL settings: one readable line when wrong, the same connection for every client."""
from __future__ import annotations

import ssl

import faust
import pytest

from streams import config
from streams.kafka.security import KafkaSecurity, KafkaSecurityError, from_env


def test_plaintext_by_default():
    settings = config.load({})
    assert settings.kafka_security == KafkaSecurity() and settings.kafka_options == {}
    assert settings.kafka_security.faust_credentials() is None


def test_sasl_ssl_with_scram():
    sec = from_env({"PARCOURS_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
                    "PARCOURS_KAFKA_SASL_MECHANISM": "scram-sha-512",
                    "PARCOURS_KAFKA_USERNAME": "parcours", "PARCOURS_KAFKA_PASSWORD": "s3cret"})
    options = sec.client_options()
    assert {k: v for k, v in options.items() if k != "ssl_context"} == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "parcours", "sasl_plain_password": "s3cret"}
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    creds = sec.faust_credentials()
    assert isinstance(creds, faust.SASLCredentials) and creds.username == "parcours"
    assert str(creds.mechanism.value) == "SCRAM-SHA-512" and creds.ssl_context is not None
    assert "s3cret" not in repr(sec)  # settings get logged; the password must not


def test_tls_only_and_a_missing_ca_file(tmp_path):
    sec = from_env({"PARCOURS_KAFKA_SECURITY_PROTOCOL": "SSL"})
    assert sec.client_options()["security_protocol"] == "SSL"
    assert isinstance(sec.faust_credentials(), faust.SSLCredentials)
    with pytest.raises(KafkaSecurityError, match="PARCOURS_KAFKA_CA_FILE=.*no such file"):
        from_env({"PARCOURS_KAFKA_SECURITY_PROTOCOL": "SSL",
                  "PARCOURS_KAFKA_CA_FILE": str(tmp_path / "none.pem")})
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(KafkaSecurityError, match="CA_FILE"):
        from_env({"PARCOURS_KAFKA_SECURITY_PROTOCOL": "SSL", "PARCOURS_KAFKA_CA_FILE": str(bad)})


@pytest.mark.parametrize("env, fragment", [
    ({"PARCOURS_KAFKA_SECURITY_PROTOCOL": "TLS"}, "choose one of PLAINTEXT, SSL"),
    ({"PARCOURS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "needs PARCOURS_KAFKA_USERNAME"),
    ({"PARCOURS_KAFKA_SASL_MECHANISM": "GSSAPI"}, "choose one of PLAIN"),
])
def test_bad_settings_are_one_config_error(env, fragment):
    with pytest.raises(config.ConfigError, match=fragment):
        config.load(env)
