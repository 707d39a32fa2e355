"""parcours: a real-time cross-channel journey engine on Kafka and ClickHouse.

Reading guide, in the order a touchpoint travels:

1. `ingest/`: raw bytes -> a normalised `Touchpoint` (ingest/touchpoint.py), or a dead letter
   with its reason. Start with `ingest_batch` in ingest/normalise.py.
2. `pipeline.py`: `Pipeline.process(batch)` runs the stages over a batch in event-time order and
   returns what it `Emitted`. It is the one entry point the worker and `parcours replay` share.
3. `eventtime/`: the watermark, the reorder buffer and the timers that give that order.
4. `identity/`: every identifier of a person resolves to one profile (`IdentityGraph`).
5. `attribution/`: the path per profile, and credit per model when a conversion is final.
6. `moments/`: the rule language (`moments/rules/`, the shipped pack in `moments/pack/`) and the
   moment engine that turns stitched touchpoints into candidate triggers.
7. `preferences/`: the gate every candidate meets: consent, caps, quiet hours.

Those seven are the pure core, with `state.py` (the per-batch view over a key-value store) and
`errors.py` (`ParcoursError`, the base of every expected failure): plain data in and out, no Faust
and no Kafka client (tests/unit/test_layering.py keeps it so). The imperative shell only moves
batches:

- `worker/`: the Faust app, its agents and tables, and `Shell` (Kafka batches <-> the pipeline
  <-> topics and ClickHouse);
- `kafka/`: every Kafka client, built by one factory (kafka/clients.py), and the patches that
  work around Faust and aiokafka bugs (kafka/patches.py names each one);
- `embedded/`: the embedded Tansu broker and running a worker as a child process;
- `cli/`: the `parcours` command, one module per command;
- `simulate/`: synthetic journeys (the worked "Martin" journey and a population);
- `config.py`: the settings from the environment.

ClickHouse (DDL, migrations, the batching writer) is the top-level `sinks` package, and the Avro
contracts and codecs are `schemas`.
"""
