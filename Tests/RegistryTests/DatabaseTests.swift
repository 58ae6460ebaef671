import Foundation
import Testing
@testable import Registry

@Suite struct DatabaseTests {
    func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("tandem-\(UUID().uuidString).db").path
    }

    @Test func opensInWALAndMigrates() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let database = try Database(path: path)
        #expect(database.schemaVersion == Database.migrations.count)
        #expect(database.journalMode == "wal")
    }

    @Test func reopeningDoesNotRerunMigrations() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try Database(path: path)
        let again = try Database(path: path)
        #expect(try again.integer("SELECT count(*) FROM tandem_meta WHERE key = 'created_at'") == 1)
    }

    @Test func newerSchemaIsRefused() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let database = try Database(path: path)
        try database.execute("PRAGMA user_version = 999")
        #expect(throws: StoreError.self) { _ = try Database(path: path) }
    }

    /// Migration 8 (trunk rates) rebuilds `settlement_lines` to widen its key: a version 7 database's
    /// lines come through whole, with an empty destination, and records gain a null `trunk_id`.
    @Test func trunkRatesMigrationKeepsSettlementLines() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        // A version 7 database: the tables as migration 7 left them.
        let current = try Database(path: path)
        try current.execute("""
            DROP TABLE message_waiting; DROP TABLE contact_lists; DROP TABLE presence_subscriptions;
            DROP TABLE settled_calls; DROP TABLE trunk_rates; DROP INDEX cdrs_by_trunk; ALTER TABLE cdrs DROP COLUMN trunk_id;
            DROP TABLE settlement_lines;
            CREATE TABLE settlement_lines (
                period TEXT NOT NULL, payer_id TEXT NOT NULL, payee_id TEXT NOT NULL, number TEXT NOT NULL, account_id TEXT NOT NULL,
                app_id TEXT NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('fee', 'usage')), quantity INTEGER NOT NULL,
                unit_price INTEGER NOT NULL, amount INTEGER NOT NULL, currency TEXT NOT NULL, note TEXT NOT NULL,
                PRIMARY KEY (period, payer_id, payee_id, number, app_id, kind)) STRICT, WITHOUT ROWID;
            INSERT INTO settlement_lines VALUES ('2026-10', 'telco', 'vmcorp', '+33612345678', 'smith', 'voicemail', 'fee', 31, 300, 300, 'EUR', '');
            INSERT INTO cdrs (call_id, from_tag, cseq, dialled, destination, decision, users, apps, start_time, end_time, setup_ms,
                billable_ms, sip_code, sip_reason, disposition, hangup_by, end_reason, recorded_at)
                VALUES ('c', 'f', 1, '+44', '+44', 'outbound', '[]', '[]', 0, 1, 1, 0, 486, 'Busy Here', 'busy', 'callee', 'final', 1);
            PRAGMA user_version = 7;
            """)
        let migrated = try Database(path: path)
        #expect(migrated.schemaVersion == Database.migrations.count)
        #expect(try migrated.text("""
            SELECT period || ' ' || kind || ' [' || destination || '] ' || amount || ' ' || note FROM settlement_lines
            """) == "2026-10 fee [] 300 ")
        #expect(try migrated.integer("SELECT count(*) FROM cdrs WHERE trunk_id IS NULL") == 1)
        try migrated.execute("""
            INSERT INTO settlement_lines VALUES ('2026-11', 'telco', 'transit', '+33612345678', 'smith', '', 'outbound', '+44', 60, 5, 5, 'EUR', '');
            INSERT INTO settlement_lines VALUES ('2026-11', 'telco', 'transit', '+33612345678', 'smith', '', 'outbound', '+447', 30, 12, 6, 'EUR', '');
            """)
        #expect(try migrated.integer("SELECT count(*) FROM settlement_lines") == 3)
    }

    @Test func unwritablePathIsReported() {
        #expect(throws: StoreError.self) { _ = try Database(path: "/nonexistent-dir/x/tandem.db") }
    }
}
