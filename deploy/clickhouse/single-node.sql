CREATE TABLE IF NOT EXISTS schema_migrations (
    version    UInt32,
    name       String,
    applied_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
ORDER BY version
COMMENT 'parcours: schema versions applied by sinks.migrations.migrate()';

CREATE TABLE IF NOT EXISTS touchpoints (
    event_id    String,
    event_time  DateTime64(3, 'UTC'),
    profile_id  String COMMENT 'stitched profile at ingestion time',
    type        LowCardinality(String),
    channel     LowCardinality(String),
    campaign    LowCardinality(Nullable(String)),
    publisher   LowCardinality(Nullable(String)),
    ids         Map(String, String) COMMENT 'identifier type -> value; email and phone are SHA-256 hex',
    context     String COMMENT 'JSON text: url, referrer, store_id, lat, lon, beacon_id, tz, user_agent',
    properties  String COMMENT 'JSON text: product_id, price, revenue, currency, order_id, ...',
    revenue     Float64,
    currency    LowCardinality(String),
    ingested_at DateTime64(3, 'UTC') COMMENT 'version: the latest ingestion of an event wins',
    INDEX profile_idx profile_id TYPE bloom_filter GRANULARITY 4
) ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(event_time)
ORDER BY (toDate(event_time), event_id)
SETTINGS non_replicated_deduplication_window = 1000
COMMENT 'parcours: one row per accepted touchpoint (stitched), replays collapse on (event day, event_id); query with FINAL';

CREATE TABLE IF NOT EXISTS identity_map (
    identifier_type LowCardinality(String) COMMENT 'cookie, device, email, phone, user, loyalty, ...',
    identifier      String COMMENT 'email and phone are SHA-256 hex',
    profile_id      String,
    updated_at      DateTime64(3, 'UTC') COMMENT 'version: the latest mapping wins',
    is_deleted      UInt8 COMMENT '1 = forgotten: FINAL drops the identifier'
) ENGINE = ReplacingMergeTree(updated_at, is_deleted)
ORDER BY (identifier_type, identifier)
SETTINGS non_replicated_deduplication_window = 1000
COMMENT 'parcours: current profile of every identifier; query with FINAL';

CREATE TABLE IF NOT EXISTS identity_events (
    at          DateTime64(3, 'UTC'),
    kind        LowCardinality(String) COMMENT 'merge, refused, forget, ...',
    survivor    String COMMENT 'profile that remains',
    absorbed    Array(String) COMMENT 'profiles folded into the survivor',
    identifiers Array(String),
    event_id    String COMMENT 'touchpoint that caused the change (empty for requests)',
    reason      String
) ENGINE = ReplacingMergeTree
ORDER BY (survivor, kind, event_id, absorbed, identifiers)
SETTINGS non_replicated_deduplication_window = 1000
COMMENT 'parcours: identity graph changes (merges, refusals, forgets), one row per change; query with FINAL';

CREATE TABLE IF NOT EXISTS triggers (
    trigger_id String COMMENT 'deterministic: a replay fires the same id',
    fired_at   DateTime64(3, 'UTC'),
    profile_id String,
    moment     LowCardinality(String),
    channel    LowCardinality(String),
    event_id   String COMMENT 'touchpoint that completed the moment',
    code       String,
    payload    Map(String, String)
) ENGINE = ReplacingMergeTree
ORDER BY trigger_id
SETTINGS non_replicated_deduplication_window = 1000
COMMENT 'parcours: triggers sent to activation systems, one row per trigger_id';

CREATE TABLE IF NOT EXISTS suppressions (
    suppression_id String,
    at             DateTime64(3, 'UTC'),
    profile_id     String,
    moment         LowCardinality(String),
    channel        LowCardinality(String),
    event_id       String,
    reason         LowCardinality(String) COMMENT 'opt-out, quiet hours, frequency cap, holdout, ...'
) ENGINE = ReplacingMergeTree
ORDER BY suppression_id
SETTINGS non_replicated_deduplication_window = 1000
COMMENT 'parcours: triggers withheld by the preferences gate, with the reason';

CREATE TABLE IF NOT EXISTS attribution_credit (
    conversion_id   String,
    conversion_time DateTime64(3, 'UTC'),
    profile_id      String,
    model           LowCardinality(String),
    touchpoint_id   String COMMENT 'event_id of the credited touchpoint',
    touchpoint_time DateTime64(3, 'UTC'),
    channel         LowCardinality(String),
    campaign        LowCardinality(Nullable(String)),
    publisher       LowCardinality(Nullable(String)),
    credit          Float64 COMMENT 'share of the conversion; sums to 1 per conversion and model',
    revenue_credit  Float64 COMMENT 'credit x conversion revenue',
    computed_at     DateTime64(3, 'UTC') COMMENT 'version: the latest computation wins'
) ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(conversion_time)
ORDER BY (model, conversion_id, touchpoint_id)
SETTINGS non_replicated_deduplication_window = 1000
COMMENT 'parcours: multi-touch attribution credit, one row per (model, conversion, touchpoint); query with FINAL';

CREATE TABLE IF NOT EXISTS dead_letters (
    received_at DateTime64(3, 'UTC'),
    error       LowCardinality(String) COMMENT 'decode, format, validation, oversized',
    reason      String,
    topic       LowCardinality(String) COMMENT 'empty when read from a file',
    partition   Int32 COMMENT '-1 when read from a file',
    offset      Int64 COMMENT '-1 when read from a file',
    original    String COMMENT 'base64 of the original bytes (may hold raw PII: restrict access)'
) ENGINE = ReplacingMergeTree
ORDER BY (topic, partition, offset, cityHash64(original))
SETTINGS non_replicated_deduplication_window = 1000
COMMENT 'parcours: rejected input; a re-read Kafka record collapses on (topic, partition, offset)';

CREATE VIEW IF NOT EXISTS attribution_daily AS
SELECT
    toDate(conversion_time) AS day,
    model,
    channel,
    campaign,
    publisher,
    sum(credit)         AS conversions,
    sum(revenue_credit) AS revenue,
    count()             AS touches
FROM attribution_credit FINAL
GROUP BY day, model, channel, campaign, publisher
COMMENT 'parcours: credit per day x model x channel x campaign x publisher (a plain view over FINAL: replays never double-count)';

ALTER TABLE triggers ADD COLUMN IF NOT EXISTS rule LowCardinality(String) DEFAULT moment;

ALTER TABLE triggers ADD COLUMN IF NOT EXISTS story LowCardinality(String) DEFAULT '';

ALTER TABLE triggers ADD COLUMN IF NOT EXISTS message LowCardinality(String) DEFAULT '';

ALTER TABLE triggers ADD COLUMN IF NOT EXISTS matched Array(String) COMMENT 'event ids that made the moment';

ALTER TABLE triggers ADD COLUMN IF NOT EXISTS reason String COMMENT 'why it fired';

ALTER TABLE suppressions ADD COLUMN IF NOT EXISTS trigger_id String COMMENT 'the trigger this candidate would have been';

ALTER TABLE suppressions ADD COLUMN IF NOT EXISTS rule LowCardinality(String) DEFAULT moment;

ALTER TABLE suppressions ADD COLUMN IF NOT EXISTS detail String;

CREATE TABLE IF NOT EXISTS late_events (
    event_id   String,
    event_time DateTime64(3, 'UTC'),
    type       LowCardinality(String),
    source     LowCardinality(String) COMMENT 'input partition the event came from',
    watermark  DateTime64(3, 'UTC') COMMENT 'the watermark the event was behind',
    reason     String
) ENGINE = ReplacingMergeTree
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 1000
COMMENT 'parcours: touchpoints behind the watermark; identity and attribution took them, moment rules did not';

CREATE VIEW IF NOT EXISTS trigger_daily AS
SELECT day, rule, channel, outcome, count() AS candidates
FROM (
    SELECT toDate(fired_at) AS day, rule, channel, 'sent' AS outcome FROM triggers FINAL
    UNION ALL
    SELECT toDate(at) AS day, rule, channel, reason AS outcome FROM suppressions FINAL
)
GROUP BY day, rule, channel, outcome
COMMENT 'parcours: candidates per day x rule x channel, sent or suppressed by reason (holdout = control group)';

CREATE TABLE IF NOT EXISTS attribution_paths (
    path_id         String COMMENT 'conversion id, or open:<profile>:<first touch> for a path that never converted',
    closed_at       DateTime64(3, 'UTC') COMMENT 'conversion time, or last touch + lookback',
    profile_id      String,
    converted       UInt8,
    conversion_type LowCardinality(String),
    revenue         Float64,
    touches         UInt16,
    channels        Array(LowCardinality(String)) COMMENT 'touch channels in time order',
    channel_set     Array(LowCardinality(String)) COMMENT 'distinct channels, sorted (Shapley)',
    transitions     Array(Tuple(UInt8, String, String, UInt32))
                    COMMENT '(order, from state, to state, count): Markov transitions per order, start -> last-k-channel states -> conversion | null',
    computed_at     DateTime64(3, 'UTC') COMMENT 'version: the latest computation wins'
) ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(closed_at)
ORDER BY path_id
SETTINGS non_replicated_deduplication_window = 1000
COMMENT 'parcours: one row per closed path (converting or not): the additive counts of the data-driven models; query with FINAL';

CREATE VIEW IF NOT EXISTS publisher_payouts AS
SELECT
    toStartOfMonth(conversion_time) AS month,
    model,
    ifNull(publisher, '(none)')     AS publisher,
    sum(credit)                     AS conversions,
    sum(revenue_credit)             AS revenue,
    revenue / sum(revenue) OVER (PARTITION BY month, model) AS revenue_share
FROM attribution_credit FINAL
GROUP BY month, model, publisher
COMMENT 'parcours: credited revenue per publisher and month; a commission pool is paid as pool x revenue_share';

CREATE VIEW IF NOT EXISTS attribution_model_comparison AS
SELECT
    channel,
    sumIf(credit, model = 'first_touch')        AS first_touch,
    sumIf(credit, model = 'last_touch')         AS last_touch,
    sumIf(credit, model = 'last_non_direct')    AS last_non_direct,
    sumIf(credit, model = 'linear')             AS linear,
    sumIf(credit, model = 'time_decay')         AS time_decay,
    sumIf(credit, model = 'position_based')     AS position_based
FROM attribution_credit FINAL
GROUP BY channel
COMMENT 'parcours: conversions credited per channel under each heuristic model, side by side';

ALTER TABLE triggers ADD COLUMN IF NOT EXISTS experiment LowCardinality(String) DEFAULT '' COMMENT 'the rule''s experiment the profile entered (empty: none)';

ALTER TABLE triggers ADD COLUMN IF NOT EXISTS arm LowCardinality(String) DEFAULT '';

ALTER TABLE suppressions ADD COLUMN IF NOT EXISTS experiment LowCardinality(String) DEFAULT '' COMMENT 'a control arm''s entry (reason holdout): its experiment';

ALTER TABLE suppressions ADD COLUMN IF NOT EXISTS arm LowCardinality(String) DEFAULT '';

CREATE TABLE IF NOT EXISTS experiment_exposures (
    experiment  LowCardinality(String),
    profile_id  String,
    arm         LowCardinality(String),
    control     UInt8 COMMENT '1: the control arm (its entries are withheld)',
    share       Float64 COMMENT 'the arm''s configured share of entries (sample-ratio check)',
    rule        LowCardinality(String),
    trigger_id  String COMMENT 'the trigger (or the withheld candidate) it entered with',
    entered_at  DateTime64(3, 'UTC') COMMENT 'the first time the rule would send it a message',
    converted   UInt8 COMMENT '1: a goal conversion in the window after the entry',
    conversions UInt16 COMMENT 'goal conversions in the window',
    revenue     Float64 COMMENT 'their revenue',
    version     UInt64 COMMENT 'the entry''s changes: the latest row wins',
    is_deleted  UInt8 COMMENT '1: merged into another profile''s entry'
) ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (experiment, profile_id, trigger_id)
SETTINGS non_replicated_deduplication_window = 1000
COMMENT 'parcours: one row per entry (profile, experiment, the trigger it entered with; intention-to-treat), with its goal conversions; query with FINAL and is_deleted = 0: one live row per profile and experiment';

CREATE VIEW IF NOT EXISTS experiment_results AS
SELECT
    experiment,
    arm,
    max(x.control)                   AS control,
    any(x.share)                     AS share,
    count()                          AS profiles,
    sum(x.converted)                 AS conversions,
    conversions / profiles           AS rate,
    sum(x.revenue)                   AS revenue,
    revenue / profiles               AS revenue_per_profile,
    sum(x.revenue * x.revenue)       AS revenue_sq
FROM experiment_exposures AS x FINAL
WHERE x.is_deleted = 0
GROUP BY experiment, arm
COMMENT 'parcours: per experiment and arm, profiles entered, conversions, rate and revenue (what parcours experiments tests)';

CREATE TABLE IF NOT EXISTS profile_traits (
    profile_id        String,
    created_by        String COMMENT 'the event that started the record: a profile id absorbed by a merge and used again keeps its old, deleted row apart',
    first_seen        DateTime64(3, 'UTC'),
    last_seen         DateTime64(3, 'UTC'),
    purchases         UInt32,
    revenue           Float64,
    last_purchase_at  Nullable(DateTime64(3, 'UTC')) COMMENT 'NULL before the first purchase',
    lifecycle         LowCardinality(String),
    lifecycle_history String COMMENT 'JSON text: [[epoch ms, stage], ...], the stages in time order',
    top_channel       LowCardinality(String) COMMENT 'empty: no touch in the window',
    rfm               LowCardinality(String) COMMENT 'the RFM digits; empty before the first purchase',
    rfm_r             UInt8 COMMENT '0 before the first purchase',
    rfm_f             UInt8,
    rfm_m             UInt8,
    declared          Map(String, String) COMMENT 'declared trait -> its value as JSON text',
    audiences         Array(String) COMMENT 'the audiences the profile is in',
    consent           Map(String, UInt8) COMMENT 'channel -> 1 opted in, 0 opted out (explicit choices and the pack''s defaults)',
    as_of             DateTime64(3, 'UTC') COMMENT 'the event time the traits hold at',
    version           UInt64 COMMENT 'the record''s changes: the latest row wins',
    is_deleted        UInt8 COMMENT '1: merged into another profile',
    updated_at        DateTime64(3, 'UTC') COMMENT 'when the row was written'
) ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (profile_id, created_by)
SETTINGS non_replicated_deduplication_window = 1000
COMMENT 'parcours: computed and declared traits per profile, a row per batch that changed it; query with FINAL and is_deleted = 0: one live row per profile';

CREATE TABLE IF NOT EXISTS audience_membership (
    record_id   String COMMENT 'deterministic (profile, record, transition number): a replay writes the same id',
    kind        LowCardinality(String) COMMENT 'audience_entered or audience_exited',
    audience    LowCardinality(String),
    profile_id  String,
    at          DateTime64(3, 'UTC') COMMENT 'event time of the change',
    event_id    String COMMENT 'the event that caused it (empty for time and merge)',
    cause       LowCardinality(String) COMMENT 'event, time (a window or a lapse passed), merge',
    seq         UInt32 COMMENT 'the profile''s transition number: orders its records',
    ingested_at DateTime64(3, 'UTC') COMMENT 'when the row was written'
) ENGINE = ReplacingMergeTree
ORDER BY (audience, profile_id, record_id)
SETTINGS non_replicated_deduplication_window = 1000
COMMENT 'parcours: audience entries and exits (topic audiences, but for an erasure''s), one row per record_id; query with FINAL';

CREATE VIEW IF NOT EXISTS audience_members AS
SELECT
    audience,
    profile_id,
    max(at) AS since
FROM audience_membership FINAL
GROUP BY audience, profile_id
HAVING argMax(kind, (at, seq)) = 'audience_entered'
COMMENT 'parcours: the profiles in each audience now (their newest record by (at, seq) an entry), since when';
