"""PARCOURS_SCHEMA_REGISTRY_* and PARCOURS_OUTPUT_FORMAT through `streams.config.load`: what they
give, and a one-line ConfigError naming the variable for every mistake."""
from __future__ import annotations

import pytest

from streams.config import ConfigError, load

URL = "PARCOURS_SCHEMA_REGISTRY_URL"


def test_no_registry_and_json_outputs_by_default():
    settings = load({})
    assert settings.schema_registry is None and settings.output_format == "json"


def test_a_registry_url_and_its_options():
    settings = load({URL: " https://sr.example:8081/registry/ ",
                     "PARCOURS_SCHEMA_REGISTRY_AUTO_REGISTER": "false",
                     "PARCOURS_SCHEMA_REGISTRY_TIMEOUT_SECONDS": "2.5",
                     "PARCOURS_OUTPUT_FORMAT": "AVRO"})
    registry = settings.schema_registry
    assert registry.url == "https://sr.example:8081/registry"
    assert (registry.auto_register, registry.timeout_s, registry.username) == (False, 2.5, None)
    assert registry.uses_tls and registry.ssl_context is not None  # the system's CAs
    assert settings.output_format == "avro"
    plain = load({URL: "http://[::1]:8081"}).schema_registry
    assert plain.url == "http://[::1]:8081" and plain.ssl_context is None


@pytest.mark.parametrize("env,message", [
    ({URL: "kafka://sr:8081"}, "PARCOURS_SCHEMA_REGISTRY_URL: unknown scheme 'kafka'"),
    ({URL: "sr.example:8081"}, "PARCOURS_SCHEMA_REGISTRY_URL: unknown scheme"),
    ({URL: "http://:8081"}, "PARCOURS_SCHEMA_REGISTRY_URL names no host"),
    ({URL: "http://sr:99999"}, "PARCOURS_SCHEMA_REGISTRY_URL: Port out of range"),
    ({URL: "http://sr:8081/?x=1"}, "no ?query or #fragment"),
    ({URL: "http://u:p@sr:8081", "PARCOURS_SCHEMA_REGISTRY_USERNAME": "u"},
     "credentials are in PARCOURS_SCHEMA_REGISTRY_URL and in"),
    ({URL: "http://sr:8081", "PARCOURS_SCHEMA_REGISTRY_USERNAME": "u"},
     "PARCOURS_SCHEMA_REGISTRY_USERNAME and PARCOURS_SCHEMA_REGISTRY_PASSWORD go together"),
    ({URL: "https://sr:8081", "PARCOURS_SCHEMA_REGISTRY_CA_FILE": "/nope/ca.pem"},
     "PARCOURS_SCHEMA_REGISTRY_CA_FILE='/nope/ca.pem': no such file"),
    ({"PARCOURS_SCHEMA_REGISTRY_USERNAME": "u"},
     "PARCOURS_SCHEMA_REGISTRY_USERNAME is set without PARCOURS_SCHEMA_REGISTRY_URL"),
    ({URL: "http://sr:8081", "PARCOURS_SCHEMA_REGISTRY_AUTO_REGISTER": "maybe"},
     "PARCOURS_SCHEMA_REGISTRY_AUTO_REGISTER='maybe': expected true or false"),
    ({URL: "http://sr:8081", "PARCOURS_SCHEMA_REGISTRY_TIMEOUT_SECONDS": "0"},
     "PARCOURS_SCHEMA_REGISTRY_TIMEOUT_SECONDS='0'"),
    ({"PARCOURS_OUTPUT_FORMAT": "protobuf"},
     "PARCOURS_OUTPUT_FORMAT='protobuf': expected json or avro"),
])
def test_every_mistake_is_one_line_naming_the_variable(env, message):
    with pytest.raises(ConfigError) as info:
        load(env)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_tls_files_need_https_and_must_be_usable(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate")
    with pytest.raises(ConfigError, match="PARCOURS_SCHEMA_REGISTRY_CA_FILE is set but "
                                          "PARCOURS_SCHEMA_REGISTRY_URL is not https"):
        load({URL: "http://sr:8081", "PARCOURS_SCHEMA_REGISTRY_CA_FILE": str(ca)})
    with pytest.raises(ConfigError) as info:
        load({URL: "https://sr:8081", "PARCOURS_SCHEMA_REGISTRY_CA_FILE": str(ca)})
    assert str(info.value).startswith("PARCOURS_SCHEMA_REGISTRY_CA_FILE / CERT_FILE / KEY_FILE: ")
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="KEY_FILE is set without "
                                          "PARCOURS_SCHEMA_REGISTRY_CERT_FILE"):
        load({URL: "https://sr:8081", "PARCOURS_SCHEMA_REGISTRY_KEY_FILE": str(ca)})
