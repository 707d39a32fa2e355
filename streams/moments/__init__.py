"""Micro-moments and triggers: the rule language, the moment engine and the preferences gate.

Pure domain core (no Faust, no Kafka): `rules` holds the compiled rule objects, `loader` reads them
from YAML, `engine` detects moments per profile on event time, `gate` applies each person's
preferences to every candidate trigger.
"""
