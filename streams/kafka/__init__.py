"""Kafka plumbing: every client parcours opens, and the fixes the clients need.

Read `clients.py` first (`KafkaClients`: the one factory for consumers, producers, admin clients
and the Faust broker settings, with the TLS / SASL options of `security.py`). Then `consumer.py`
(the ingest stage's own group consumer), `producer.py` (a batch's records sent together and
acknowledged before the input is), `admin.py` (topics created and their leaders awaited),
`unreadable_batches.py` (a record batch aiokafka cannot read becomes one dead letter) and
`patches.py` (Faust and aiokafka internals patched around broker and client bugs, each named).
"""
