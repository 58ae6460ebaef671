import Gateway
import Testing

@Suite struct ResponseSelectionTests {
    @Test(arguments: [
        ([486], 0),
        ([486, 404], 0),
        ([404, 302], 1),
        ([500, 486, 603], 2),
        ([486, 407, 401], 1),
        ([503, 408], 1),
        ([503, 500], 0),
        ([480, 415], 1),
    ])
    func best(statuses: [Int], index: Int) {
        #expect(ResponseSelection.best(statuses) == index)
    }

    @Test func emptyHasNoBest() {
        #expect(ResponseSelection.best([]) == nil)
    }

    @Test func a503GoesUpstreamAs500() {
        #expect(ResponseSelection.forwardedStatus(503).status == 500)
        #expect(ResponseSelection.forwardedStatus(486).status == 486)
    }
}
