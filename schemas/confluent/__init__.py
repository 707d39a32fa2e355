"""A Confluent Schema Registry: writer schemas of the input by id, and ids for parcours' outputs.

Producers that use Confluent's serializers frame each record as byte 0x00, the 4-byte big-endian
id their registry gave the writer schema, then the Avro binary body. With
`PARCOURS_SCHEMA_REGISTRY_URL` set, every such id on the touchpoints topic is the registry's (the
local ids of schemas/registry.json no longer apply to input); without it nothing changes.

Read in this order:
- `settings.py`: the PARCOURS_SCHEMA_REGISTRY_* variables, checked once (one-line errors);
- `writers.py` (pure): a writer schema the registry returned -> a `Writer` that
  `schemas.codec.decode(raw, writers=...)` reads into the touchpoint contract by Avro's resolution
  rules, or the one-line reason its records are dead letters; `WriterCache` keeps them (an id's
  schema never changes: kept for good; an id the registry does not know: for a minute);
- `client.py`: the small async REST client (aiohttp): GET /schemas/ids/{id},
  POST /subjects/{subject}/versions (register), POST /subjects/{subject} (look up).

The HTTP calls belong to the worker's shell (streams/worker/writer_schemas.py resolves a batch's
ids, waiting out an outage; streams/worker/output_schemas.py registers the output schemas): the
decode core only ever sees a plain mapping of resolved writers.

Errors: `SchemaNotFound` is the registry's documented "no such schema / subject" answer (HTTP 404,
error_code 40401 or 40403); `RegistryUnavailable` is an answer to try again later (connection
refused, timeout, HTTP 5xx, 429, an answer that is not the registry's JSON); any other refusal
(401, 403, 409, 422...) is a `RegistryError`. Messages are one line and name the registry by its
URL without credentials.
"""
from streams.errors import ConfigError, ServiceError
from streams.lazy_exports import lazy


class RegistryError(ServiceError):
    """The schema registry refused a request; `status` and `error_code` as it answered (None when
    there was no answer)."""

    def __init__(self, message: str, status: int | None = None, error_code: int | None = None):
        super().__init__(message)
        self.status = status
        self.error_code = error_code

    def __reduce__(self):
        return type(self), (str(self), self.status, self.error_code)


class RegistryUnavailable(RegistryError):
    """The registry is down, slow, overloaded or not itself (5xx, 429, timeout): try again later."""


class SchemaNotFound(RegistryError):
    """The registry has no such schema id, or no such schema under the subject (HTTP 404)."""


class RegistryConfigError(ConfigError):
    """A PARCOURS_SCHEMA_REGISTRY_* setting is wrong; the message is one line naming it."""


EXPORTS = {  # name -> the module that defines it
    "RegistryClient": "schemas.confluent.client",
    "RegistrySettings": "schemas.confluent.settings",
    "from_env": "schemas.confluent.settings",
    "Writer": "schemas.confluent.writers",
    "WriterCache": "schemas.confluent.writers",
    "framed_ids": "schemas.confluent.writers",
    "resolve": "schemas.confluent.writers",
    "unknown": "schemas.confluent.writers",
}
_LAZY, __getattr__ = lazy(__name__, EXPORTS)
__all__ = sorted([*_LAZY, "RegistryConfigError", "RegistryError", "RegistryUnavailable",
                  "SchemaNotFound"])
