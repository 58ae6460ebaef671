/// The registry's tables. Deleting a row that is still referenced is refused by the foreign keys
/// (ON DELETE RESTRICT) as a last line of defence; the registry checks first so the error can say
/// what still refers to it.
enum Schema {
    static let registry = """
    CREATE TABLE accounts (
        id          TEXT PRIMARY KEY NOT NULL,
        name        TEXT NOT NULL,
        status      TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
        time_zone   TEXT NOT NULL,
        plan        TEXT,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL
    ) STRICT;

    CREATE TABLE users (
        id            TEXT PRIMARY KEY NOT NULL,
        account_id    TEXT NOT NULL REFERENCES accounts(id) ON DELETE RESTRICT,
        display_name  TEXT NOT NULL,
        role          TEXT NOT NULL CHECK (role IN ('primary', 'member', 'child')),
        sip_username  TEXT NOT NULL UNIQUE,
        status        TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
        realm         TEXT,
        ha1_md5       TEXT,
        ha1_sha256    TEXT,
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL
    ) STRICT;
    CREATE INDEX users_by_account ON users(account_id);
    CREATE UNIQUE INDEX users_one_primary ON users(account_id) WHERE role = 'primary';

    CREATE TABLE grants (
        user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        service     TEXT NOT NULL,
        granted_at  TEXT NOT NULL,
        PRIMARY KEY (user_id, service)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE providers (
        id               TEXT PRIMARY KEY NOT NULL,
        name             TEXT NOT NULL,
        kind             TEXT NOT NULL CHECK (kind IN ('carrier', 'app', 'both')),
        hops             TEXT NOT NULL,
        trusted_sources  TEXT NOT NULL,
        id_scheme        TEXT NOT NULL,
        domain           TEXT,
        webhook_url      TEXT,
        currency         TEXT NOT NULL,
        rate_per_minute  INTEGER NOT NULL CHECK (rate_per_minute >= 0),
        monthly_fee      INTEGER NOT NULL CHECK (monthly_fee >= 0),
        created_at       TEXT NOT NULL,
        updated_at       TEXT NOT NULL
    ) STRICT;

    CREATE TABLE numbers (
        number         TEXT PRIMARY KEY NOT NULL,
        account_id     TEXT NOT NULL REFERENCES accounts(id) ON DELETE RESTRICT,
        kind           TEXT NOT NULL CHECK (kind IN ('household', 'personal')),
        owner_user_id  TEXT REFERENCES users(id) ON DELETE RESTRICT,
        provider_id    TEXT REFERENCES providers(id) ON DELETE RESTRICT,
        created_at     TEXT NOT NULL,
        updated_at     TEXT NOT NULL,
        CHECK ((kind = 'personal') = (owner_user_id IS NOT NULL))
    ) STRICT;
    CREATE INDEX numbers_by_account ON numbers(account_id);
    CREATE INDEX numbers_by_owner ON numbers(owner_user_id);
    CREATE INDEX numbers_by_provider ON numbers(provider_id);

    CREATE TABLE apps (
        id           TEXT PRIMARY KEY NOT NULL,
        provider_id  TEXT NOT NULL REFERENCES providers(id) ON DELETE RESTRICT,
        name         TEXT NOT NULL,
        kind         TEXT NOT NULL,
        position     INTEGER NOT NULL,
        on_failure   TEXT NOT NULL CHECK (on_failure IN ('skip', 'fail')),
        hop          TEXT,
        created_at   TEXT NOT NULL,
        updated_at   TEXT NOT NULL
    ) STRICT;
    CREATE INDEX apps_by_provider ON apps(provider_id);

    -- How each provider knows each number's subscriber: minted once, kept across deactivation and
    -- provider switches, unique per provider.
    CREATE TABLE subscriber_ids (
        provider_id    TEXT NOT NULL REFERENCES providers(id) ON DELETE RESTRICT,
        number         TEXT NOT NULL REFERENCES numbers(number) ON DELETE CASCADE,
        subscriber_id  TEXT NOT NULL,
        created_at     TEXT NOT NULL,
        PRIMARY KEY (provider_id, number),
        UNIQUE (provider_id, subscriber_id)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE activations (
        number          TEXT NOT NULL REFERENCES numbers(number) ON DELETE RESTRICT,
        app_id          TEXT NOT NULL REFERENCES apps(id) ON DELETE RESTRICT,
        status          TEXT NOT NULL CHECK (status IN ('active', 'inactive')),
        routing         TEXT NOT NULL,
        activated_at    TEXT NOT NULL,
        deactivated_at  TEXT,
        PRIMARY KEY (number, app_id)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX activations_by_app ON activations(app_id);

    CREATE TABLE events (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        time     TEXT NOT NULL,
        type     TEXT NOT NULL,
        source   TEXT NOT NULL,
        subject  TEXT,
        payload  TEXT NOT NULL
    ) STRICT;
    CREATE INDEX events_by_type ON events(type, id);
    """

    /// The location service (RFC 3261 §10): one row per binding of an address-of-record. Times are
    /// milliseconds since the Unix epoch; `q` is in thousandths. The TCP connection a binding came
    /// over is not stored: connection numbers mean nothing after a restart.
    static let location = """
    CREATE TABLE bindings (
        aor            TEXT NOT NULL,
        contact        TEXT NOT NULL,
        user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        instance       TEXT,
        reg_id         INTEGER,
        q              INTEGER NOT NULL CHECK (q BETWEEN 0 AND 1000),
        expires_at     INTEGER NOT NULL,
        call_id        TEXT NOT NULL,
        cseq           INTEGER NOT NULL,
        path           TEXT NOT NULL,
        transport      TEXT NOT NULL CHECK (transport IN ('udp', 'tcp')),
        source         TEXT NOT NULL,
        local          TEXT NOT NULL,
        behind_nat     INTEGER NOT NULL CHECK (behind_nat IN (0, 1)),
        user_agent     TEXT,
        registered_at  INTEGER NOT NULL,
        updated_at     INTEGER NOT NULL,
        PRIMARY KEY (aor, contact)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX bindings_by_user ON bindings(user_id);
    CREATE INDEX bindings_by_expiry ON bindings(expires_at);
    """

    /// What routing reads besides the registry proper: how each number rings, and each user's
    /// availability. The availability definition (modes, profiles, rules, caller lists) is one JSON
    /// document validated on write and replaced whole: it is read and written as a unit, never queried
    /// piecewise, and a partial update could leave a profile naming a mode that no longer exists.
    static let routing = """
    ALTER TABLE numbers ADD COLUMN ring_timeout INTEGER NOT NULL DEFAULT 30 CHECK (ring_timeout BETWEEN 5 AND 300);
    ALTER TABLE numbers ADD COLUMN fork TEXT NOT NULL DEFAULT 'parallel' CHECK (fork IN ('parallel', 'serial'));
    ALTER TABLE numbers ADD COLUMN transfer TEXT NOT NULL DEFAULT 'redirect' CHECK (transfer IN ('redirect', 'proxy'));

    CREATE TABLE availability (
        user_id         TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        definition      TEXT NOT NULL,
        active_profile  TEXT NOT NULL,
        override_mode   TEXT,
        override_until  INTEGER,
        updated_at      TEXT NOT NULL
    ) STRICT;
    """

    /// Call detail records and the calls in progress. Records have no foreign keys: a bill must
    /// outlive the user, number or account it names. A record is unique per INVITE (Call-ID, From-tag
    /// and CSeq number): written twice, the second write is ignored. `open_calls` holds each call
    /// in progress as one JSON document, read back only when a restart closes it as interrupted.
    static let calls = """
    CREATE TABLE cdrs (
        id                 INTEGER PRIMARY KEY AUTOINCREMENT,
        call_id            TEXT NOT NULL,
        from_tag           TEXT NOT NULL,
        to_tag             TEXT,
        cseq               INTEGER NOT NULL,
        caller_number      TEXT,
        caller_user_id     TEXT,
        caller_account_id  TEXT,
        dialled            TEXT NOT NULL,
        destination        TEXT NOT NULL,
        forwarded_to       TEXT,
        decision           TEXT NOT NULL CHECK (decision IN ('accept', 'transfer', 'reject', 'chain', 'voicemail', 'outbound')),
        account_id         TEXT,
        users              TEXT NOT NULL,
        answered_user_id   TEXT,
        apps               TEXT NOT NULL,
        start_time         INTEGER NOT NULL,
        answer_time        INTEGER,
        end_time           INTEGER NOT NULL,
        setup_ms           INTEGER NOT NULL,
        billable_ms        INTEGER NOT NULL CHECK (billable_ms >= 0),
        sip_code           INTEGER NOT NULL,
        sip_reason         TEXT NOT NULL,
        disposition        TEXT NOT NULL CHECK (disposition IN ('answered', 'busy', 'no_answer', 'cancelled', 'failed', 'rejected', 'interrupted')),
        hangup_by          TEXT NOT NULL CHECK (hangup_by IN ('caller', 'callee', 'tandem')),
        end_reason         TEXT NOT NULL CHECK (end_reason IN ('bye', 'cancel', 'final', 'timeout', 'interrupted')),
        recorded_at        INTEGER NOT NULL,
        UNIQUE (call_id, from_tag, cseq)
    ) STRICT;
    CREATE INDEX cdrs_by_start ON cdrs(start_time);
    CREATE INDEX cdrs_by_account ON cdrs(account_id, start_time);
    CREATE INDEX cdrs_by_caller_account ON cdrs(caller_account_id, start_time);
    CREATE INDEX cdrs_by_destination ON cdrs(destination, start_time);
    CREATE INDEX cdrs_by_caller_number ON cdrs(caller_number, start_time);

    CREATE TABLE open_calls (
        call_id     TEXT NOT NULL,
        from_tag    TEXT NOT NULL,
        cseq        INTEGER NOT NULL,
        state       TEXT NOT NULL,
        updated_at  INTEGER NOT NULL,
        PRIMARY KEY (call_id, from_tag, cseq)
    ) STRICT, WITHOUT ROWID;
    """

    /// Usage plans, each account's usage per day, and service tickets. A plan limits an account's
    /// minutes, answered calls (per day or month) and calls in progress. Usage is kept per UTC day so
    /// a plan's period can change without losing what was used; a month is the sum of its days.
    /// Tickets, like records, have no foreign keys: they are what providers are settled from.
    /// Settlement lines are keyed by what they settle, so running a month again rewrites the same
    /// rows; `settled_tickets` says which month took each ticket.
    static let usage = """
    CREATE TABLE plans (
        name            TEXT PRIMARY KEY NOT NULL,
        period          TEXT NOT NULL CHECK (period IN ('day', 'month')),
        max_minutes     INTEGER CHECK (max_minutes >= 0),
        max_calls       INTEGER CHECK (max_calls >= 0),
        max_concurrent  INTEGER CHECK (max_concurrent >= 0),
        enforcement     TEXT NOT NULL CHECK (enforcement IN ('hard', 'soft')),
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL
    ) STRICT;

    CREATE TABLE usage (
        account_id   TEXT NOT NULL,
        day          TEXT NOT NULL,
        minutes      INTEGER NOT NULL,
        calls        INTEGER NOT NULL,
        billable_ms  INTEGER NOT NULL,
        PRIMARY KEY (account_id, day)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE service_tickets (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        cdr_id         INTEGER NOT NULL,
        call_id        TEXT NOT NULL,
        app_id         TEXT NOT NULL,
        provider_id    TEXT NOT NULL,
        subscriber_id  TEXT NOT NULL,
        number         TEXT NOT NULL,
        user_id        TEXT,
        account_id     TEXT,
        start_time     INTEGER NOT NULL,
        duration_ms    INTEGER NOT NULL CHECK (duration_ms >= 0),
        units          INTEGER NOT NULL CHECK (units >= 0),
        UNIQUE (cdr_id, app_id)
    ) STRICT;
    CREATE INDEX service_tickets_by_provider ON service_tickets(provider_id, start_time);
    CREATE INDEX service_tickets_by_number ON service_tickets(number, start_time);

    CREATE TABLE settlement_periods (
        period     TEXT PRIMARY KEY NOT NULL,
        status     TEXT NOT NULL CHECK (status IN ('open', 'closed')),
        run_at     TEXT NOT NULL,
        closed_at  TEXT
    ) STRICT;

    CREATE TABLE settlement_lines (
        period      TEXT NOT NULL,
        payer_id    TEXT NOT NULL,
        payee_id    TEXT NOT NULL,
        number      TEXT NOT NULL,
        account_id  TEXT NOT NULL,
        app_id      TEXT NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN ('fee', 'usage')),
        quantity    INTEGER NOT NULL,
        unit_price  INTEGER NOT NULL,
        amount      INTEGER NOT NULL,
        currency    TEXT NOT NULL,
        note        TEXT NOT NULL,
        PRIMARY KEY (period, payer_id, payee_id, number, app_id, kind)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX settlement_lines_by_number ON settlement_lines(number, period);

    CREATE TABLE settled_tickets (
        ticket_id  INTEGER PRIMARY KEY,
        period     TEXT NOT NULL
    ) STRICT;
    """

    /// Delivery of the event log (docs/events.md). A webhook recipient has a row per event it is
    /// owed, with its attempts, so an operator sees what failed and why; a named push subscriber has
    /// one cursor (everything of its types up to it was sent). `event_dispatch_cursor` in
    /// `tandem_meta` is the last event the dispatcher has fanned out: delivery rows and cursor move
    /// in one transaction, so a restart neither skips nor repeats a fan-out. Existing events are
    /// history, not owed to anyone: the cursor starts at the newest.
    static let events = """
    ALTER TABLE providers ADD COLUMN webhook_secret TEXT;

    CREATE TABLE event_deliveries (
        recipient     TEXT NOT NULL,
        event_id      INTEGER NOT NULL,
        status        TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts      INTEGER NOT NULL CHECK (attempts >= 0),
        next_attempt  INTEGER NOT NULL,
        last_status   INTEGER,
        last_error    TEXT,
        delivered_at  TEXT,
        PRIMARY KEY (recipient, event_id)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX event_deliveries_pending ON event_deliveries(recipient, event_id) WHERE status = 'pending';
    CREATE INDEX event_deliveries_by_event ON event_deliveries(event_id);

    CREATE TABLE event_subscribers (
        name        TEXT PRIMARY KEY NOT NULL,
        types       TEXT NOT NULL,
        cursor      INTEGER NOT NULL CHECK (cursor >= 0),
        updated_at  TEXT NOT NULL
    ) STRICT;

    INSERT INTO tandem_meta (key, value) VALUES ('event_dispatch_cursor', (SELECT CAST(COALESCE(MAX(id), 0) AS TEXT) FROM events));
    """

    /// Rating of calls out through a carrier's trunk (docs/settlement.md "Trunks"). A record names the
    /// trunk its call left through; a trunk's rate deck prices a destination by its longest matching
    /// prefix. Settlement lines gain the destination prefix they rate (empty for app lines) and the
    /// kinds `outbound` and `connect`; SQLite cannot change a CHECK, so the table is rebuilt with its
    /// rows. `settled_calls` says which month took each record, as `settled_tickets` does for tickets.
    static let trunkRates = """
    ALTER TABLE cdrs ADD COLUMN trunk_id TEXT;
    CREATE INDEX cdrs_by_trunk ON cdrs(trunk_id, start_time) WHERE trunk_id IS NOT NULL;

    CREATE TABLE trunk_rates (
        provider_id      TEXT NOT NULL REFERENCES providers(id) ON DELETE CASCADE,
        prefix           TEXT NOT NULL,
        rate_per_minute  INTEGER NOT NULL CHECK (rate_per_minute >= 0),
        connect_fee      INTEGER NOT NULL CHECK (connect_fee >= 0),
        minimum          INTEGER NOT NULL CHECK (minimum >= 0),
        increment        INTEGER NOT NULL CHECK (increment >= 1),
        description      TEXT NOT NULL,
        updated_at       TEXT NOT NULL,
        PRIMARY KEY (provider_id, prefix)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE settlement_lines_rated (
        period       TEXT NOT NULL,
        payer_id     TEXT NOT NULL,
        payee_id     TEXT NOT NULL,
        number       TEXT NOT NULL,
        account_id   TEXT NOT NULL,
        app_id       TEXT NOT NULL,
        kind         TEXT NOT NULL CHECK (kind IN ('fee', 'usage', 'outbound', 'connect')),
        destination  TEXT NOT NULL,
        quantity     INTEGER NOT NULL,
        unit_price   INTEGER NOT NULL,
        amount       INTEGER NOT NULL,
        currency     TEXT NOT NULL,
        note         TEXT NOT NULL,
        PRIMARY KEY (period, payer_id, payee_id, number, app_id, kind, destination)
    ) STRICT, WITHOUT ROWID;
    INSERT INTO settlement_lines_rated
        SELECT period, payer_id, payee_id, number, account_id, app_id, kind, '', quantity, unit_price, amount, currency, note
        FROM settlement_lines;
    DROP TABLE settlement_lines;
    ALTER TABLE settlement_lines_rated RENAME TO settlement_lines;
    CREATE INDEX settlement_lines_by_number ON settlement_lines(number, period);

    CREATE TABLE settled_calls (
        cdr_id  INTEGER PRIMARY KEY,
        period  TEXT NOT NULL
    ) STRICT;
    """

    /// Contact lists (docs/presence.md) and presence subscriptions, which outlive a restart: a
    /// subscription's dialog is stored when it is made or refreshed; its NOTIFY sequence is not
    /// (the store would take a write per NOTIFY) and restarts far above the last stored one.
    static let presence = """
    CREATE TABLE contact_lists (
        user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name        TEXT NOT NULL,
        entries     TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        PRIMARY KEY (user_id, name)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE presence_subscriptions (
        id          TEXT PRIMARY KEY NOT NULL,
        presentity  TEXT NOT NULL,
        watcher     TEXT NOT NULL,
        event       TEXT NOT NULL,
        dialog      TEXT NOT NULL,
        local_cseq  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL
    ) STRICT;
    CREATE INDEX presence_subscriptions_by_presentity ON presence_subscriptions(presentity);
    """

    /// Voice messages waiting per user (RFC 3842), as a voicemail application last reported them.
    static let messages = """
    CREATE TABLE message_waiting (
        user_id       TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        new_messages  INTEGER NOT NULL,
        old_messages  INTEGER NOT NULL,
        urgent_new    INTEGER NOT NULL,
        urgent_old    INTEGER NOT NULL,
        account       TEXT,
        updated_at    TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;
    """
}
