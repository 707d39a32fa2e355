"""The rule language: a YAML rule pack -> compiled rules, every error named with its line.

`model.py` holds the compiled objects (`Rule`, its patterns and actions, `RulePack`); `loader.py`
reads a pack (`load_pack`, `load_default`, `parcours rules check`) through `yaml_reader.py` (YAML
nodes with their lines, errors collected) and `syntax.py` (checks of single values);
`predicates.py` compiles conditions to closures, with the geofence and stock joins.
"""
