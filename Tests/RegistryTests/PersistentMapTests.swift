import Testing
@testable import Registry

@Suite struct PersistentMapTests {
    @Test func copiesAreIndependent() {
        var map = PersistentMap<String, Int>()
        for index in 0..<10_000 { map["k\(index)"] = index }
        let frozen = map
        map["k5"] = -5
        map["k6"] = nil
        map["new"] = 1
        #expect(frozen["k5"] == 5 && frozen["k6"] == 6 && frozen["new"] == nil && frozen.count == 10_000)
        #expect(map["k5"] == -5 && map["k6"] == nil && map["new"] == 1 && map.count == 10_000)
        #expect(map.values.count == 10_000 && Set(map.values).contains(-5))
    }
}
