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

    @Test func unwritablePathIsReported() {
        #expect(throws: StoreError.self) { _ = try Database(path: "/nonexistent-dir/x/tandem.db") }
    }
}
