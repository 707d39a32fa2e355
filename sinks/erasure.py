"""Right to erasure in ClickHouse: delete every row that holds a forgotten person's data.

A person's rows may carry any profile id the person ever had (a touchpoint keeps the profile id it was
stitched to at the time, before later merges), so rows are matched by profile id AND by identifier.
Uses lightweight DELETE (rows disappear from queries at once; parts are rewritten in the background).
"""
from __future__ import annotations

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
}


def erase(client, profile_ids: list[str], identifiers: list[str]) -> dict[str, int]:
    """Delete the rows of these profiles / identifiers from every table that holds profile data.
    Returns the number of rows matched per table (counted before deleting)."""
    params = {"profiles": list(profile_ids), "identifiers": list(identifiers)}
    # every profile id the person's touchpoints were ever stitched to (before merges renamed them)
    history = client.query(f"SELECT DISTINCT profile_id FROM touchpoints WHERE {ERASE_WHERE['touchpoints']}",
                           parameters=params).result_rows
    params["profiles"] = sorted(set(params["profiles"]) | {p for (p,) in history if p})
    matched: dict[str, int] = {}
    for table, where in ERASE_WHERE.items():
        matched[table] = int(client.query(f"SELECT count() FROM {table} WHERE {where}",
                                          parameters=params).result_rows[0][0])
        if matched[table]:
            client.command(f"DELETE FROM {table} WHERE {where}", parameters=params)
    return matched
