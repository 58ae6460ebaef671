import Foundation
import Testing
@testable import Admin

@Suite struct AdminAPIDocumentTests {
    /// docs/admin-api.md carries the method reference generated from the table; `tools/admin-doc`
    /// rewrites it. A method, parameter or error code changed without the doc fails here.
    @Test func documentMatchesTheMethodTable() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let doc = try String(contentsOf: root.appendingPathComponent("docs/admin-api.md"), encoding: .utf8)
        let begin = try #require(doc.range(of: AdminAPIDocument.beginMarker))
        let end = try #require(doc.range(of: AdminAPIDocument.endMarker))
        let section = String(doc[begin.lowerBound..<end.upperBound])
        #expect(section == AdminAPIDocument.methodsSection(), "docs/admin-api.md is stale: run tools/admin-doc")
    }
}
