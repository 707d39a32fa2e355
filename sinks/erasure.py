"""Right to erasure in ClickHouse: delete every row that holds a forgotten person's data.

A person's rows may carry any profile id the person ever had (a touchpoint keeps the profile id it
was stitched to at the time, before later merges), so rows are matched by profile id AND by
identifier. Uses lightweight DELETE (rows disappear from queries at once; parts are rewritten in the
background). On a cluster (`parcours ddl --cluster`), a table is `Distributed` over `<table>_local`,
and ClickHouse deletes only from MergeTree tables: the DELETE goes to the local tables, ON CLUSTER,
read from the Distributed table's own definition (no setting to keep in step).
"""
from __future__ import annotations

import re

# table -> WHERE clause over {profiles:Array(String)} and {identifiers:Array(String)} ("type:value")
ERASE_WHERE = {
    "touchpoints": "has({profiles:Array(String)}, profile_id) OR arrayExists("
                   "(k, v) -> has({identifiers:Array(String)}, concat(k, ':', v)), "
                   "mapKeys(ids), mapValues(ids))",
    "identity_map": "has({profiles:Array(String)}, profile_id) OR "
                    "has({identifiers:Array(String)}, concat(identifier_type, ':', identifier))",
    "identity_events": "has({profiles:Array(String)}, survivor) OR "
                       "hasAny({profiles:Array(String)}, absorbed) OR "
                       "hasAny({identifiers:Array(String)}, identifiers)",
    "attribution_credit": "has({profiles:Array(String)}, profile_id)",
    "triggers": "has({profiles:Array(String)}, profile_id)",
    "suppressions": "has({profiles:Array(String)}, profile_id)",
    "experiment_exposures": "has({profiles:Array(String)}, profile_id)",
    "profile_traits": "has({profiles:Array(String)}, profile_id)",
    "audience_membership": "has({profiles:Array(String)}, profile_id)",
}


# Distributed('cluster', database, local_table[, sharding_key]): the database and table may
# be quoted
_DISTRIBUTED = re.compile(r"^Distributed\(\s*'([^']+)'\s*,\s*([^,]+?)\s*,\s*([^,)]+?)\s*[,)]")
_QUOTES = "'`\""


def delete_target(table: str, engine_full: str) -> str:
    """Where `DELETE FROM ...` for `table` goes, given its `system.tables.engine_full`: the table
    itself, or for a Distributed table its local table on every node of the cluster."""
    distributed = _DISTRIBUTED.match(engine_full or "")
    if distributed is None:
        return table
    cluster, database, local = distributed.groups()
    local = local.strip(_QUOTES)
    # a literal database name (ClickHouse stores it so), not currentDatabase()
    if database[0] in _QUOTES:
        local = f"{database.strip(_QUOTES)}.{local}"
    return f"{local} ON CLUSTER '{cluster}'"


def erase(client, profile_ids: list[str], identifiers: list[str]) -> dict[str, int]:
    """Delete the rows of these profiles / identifiers from every table that holds profile data.
    Returns the number of rows matched per table (counted before deleting)."""
    params = {"profiles": list(profile_ids), "identifiers": list(identifiers)}
    # every profile id the person's touchpoints were ever stitched to (before merges renamed them)
    history = client.query("SELECT DISTINCT profile_id FROM touchpoints "
                           f"WHERE {ERASE_WHERE['touchpoints']}",
                           parameters=params).result_rows
    params["profiles"] = sorted(set(params["profiles"]) | {p for (p,) in history if p})
    engines = dict(client.query("SELECT name, engine_full FROM system.tables "
                                "WHERE database = currentDatabase() "
                                "AND has({names:Array(String)}, name)",
                                parameters={"names": list(ERASE_WHERE)}).result_rows)
    matched: dict[str, int] = {}
    for table, where in ERASE_WHERE.items():
        matched[table] = int(client.query(f"SELECT count() FROM {table} WHERE {where}",
                                          parameters=params).result_rows[0][0])
        if matched[table]:
            client.command(f"DELETE FROM {delete_target(table, engines.get(table, ''))} "
                           f"WHERE {where}", parameters=params)
    return matched
