import Testing
@testable import Gateway

@Suite struct ProxyShardsTests {
    @Test func aCallIDAlwaysLandsInTheSameShardAndCallsSpreadOverAll() {
        let shards = ProxyShards(count: 16)
        #expect(shards.shard(callID: "a84b4c76e66710@pc33.atlanta.com") == shards.shard(callID: "a84b4c76e66710@pc33.atlanta.com"))
        var used = [Int](repeating: 0, count: 16)
        for call in 0..<16_000 { used[shards.shard(callID: "\(call)-bench@127.0.0.1")] += 1 }
        // Sequential Call-IDs (sipp's) spread evenly: no shard holds twice its share.
        #expect(used.allSatisfy { $0 > 500 && $0 < 2_000 })
        #expect(shards.shard(callID: nil) == shards.shard(callID: ""))
    }

    @Test func aContextIDCarriesItsShard() {
        for shard in [0, 1, 15, 255] {
            let id: UInt64 = 12_345 << 8 | UInt64(shard)
            #expect(ProxyShards.shard(context: id) == shard)
        }
        #expect(ProxyShards(count: 1_000).count == 256)
        #expect(ProxyShards(count: 0).count == 1)
    }

    @Test func serverTransactionsAreCountedAcrossShardsAgainstTheLimit() {
        let shards = ProxyShards(count: 4)
        #expect(shards.admitServer(limit: 2))
        #expect(shards.admitServer(limit: 2))
        #expect(!shards.admitServer(limit: 2))
        shards.releaseServer()
        #expect(shards.admitServer(limit: 2))
        #expect(!shards.admitServer(limit: 2))
    }
}
