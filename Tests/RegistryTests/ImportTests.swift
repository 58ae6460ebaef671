import Foundation
import Testing
@testable import Registry

@Suite struct ImportTests {
    @Test func csvReaderFollowsRFC4180() throws {
        var reader = CSVReader(text: "a,b,c\r\n\"x, y\",\"say \"\"hi\"\"\",\"two\nlines\"\n\nlast,,\n")
        #expect(try reader.next() == ["a", "b", "c"])
        #expect(try reader.next() == ["x, y", "say \"hi\"", "two\nlines"])
        #expect(reader.recordLine == 2)
        #expect(try reader.next() == ["last", "", ""])
        #expect(reader.recordLine == 5)
        #expect(try reader.next() == nil)
        var broken = CSVReader(text: "a\n\"open\n")
        _ = try broken.next()
        #expect(throws: RegistryError.self) { _ = try broken.next() }
    }

    static let sample = """
        record,account_id,name,time_zone,user_id,display_name,role,sip_username,password,grants,number,kind,owner
        account,smith,The Smiths,Europe/Paris,,,,,,,,,
        user,smith,,,alice,Alice,primary,alice,alice-secret,,,,
        user,smith,,,tom,Tom,child,tom,,outbound,,,
        number,smith,,,,,,,,,+33612345678,personal,alice
        number,smith,,,,,,,,,0612345678,,
        user,nowhere,,,eve,Eve,member,eve,,,,,
        account,jones,,UTC,,,,,,,,,
        widget,x,,,,,,,,,,,
        account,jones,Jones,UTC,,,,,,,,,
        number,jones,,,,,,,,,+33700000000,household,
        """

    @Test func rowsFailAloneWithTheirLineAndField() throws {
        let fixture = try RegistryFixture()
        var reader = CSVReader(text: Self.sample)
        var steps: [ImportProgress] = []
        let report = try fixture.registry.importCSV(&reader, options: ImportOptions(chunkSize: 3)) { steps.append($0) }
        #expect(report.progress.rows == 10)
        #expect(report.progress.imported == 6)
        #expect(report.progress.failed == 4)
        #expect(report.progress.chunks == 4)
        #expect(steps.map(\.rows) == [3, 6, 9, 10])
        #expect(report.errors == [
            ImportRowError(line: 6, field: "number", reason: "'0612345678' is not E.164 (+ and 2 to 15 digits, no leading 0)"),
            ImportRowError(line: 7, field: "account", reason: "no account 'nowhere'"),
            ImportRowError(line: 8, field: "name", reason: "required for account rows"),
            ImportRowError(line: 9, field: "record", reason: "'widget' is not account, user or number"),
        ])
        let snapshot = fixture.registry.snapshot
        #expect(snapshot.number("+33612345678")?.ownerUserID == "alice")
        #expect(snapshot.user("tom")?.grants == ["outbound"])
        #expect(snapshot.account("jones") != nil)
        #expect(snapshot.user("eve") == nil)

        // Run again: everything there is skipped, nothing duplicated.
        var again = CSVReader(text: Self.sample)
        let rerun = try fixture.registry.importCSV(&again, options: ImportOptions(chunkSize: 100, skipExisting: true))
        #expect(rerun.progress.imported == 0)
        #expect(rerun.progress.skipped == 7)  // jones exists now, so its nameless row is skipped too
        #expect(rerun.progress.failed == 3)
    }

    @Test func badHeadersFailBeforeAnyRow() throws {
        let fixture = try RegistryFixture()
        for text in ["", "account_id,name\n", "record,colour\naccount,red\n", "record,record\n"] {
            var reader = CSVReader(text: text)
            #expect(throws: RegistryError.self) { _ = try fixture.registry.importCSV(&reader) }
        }
        var extra = CSVReader(text: "record,account_id,name\naccount,a,A,surplus\n")
        let report = try fixture.registry.importCSV(&extra)
        #expect(report.errors.first?.field == "csv")
    }
}
