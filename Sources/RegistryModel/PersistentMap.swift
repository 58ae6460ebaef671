/// An immutable-by-value hash map whose copies share structure: changing one key copies only the
/// path to it (a 64-entry array and one small leaf), not the whole map. The registry snapshot uses
/// it so that a write to a registry of a million numbers publishes a new snapshot in microseconds
/// while readers keep the old one.
public struct PersistentMap<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private static var fanout: Int { 64 }
    private var branches: [[[Key: Value]]]
    public private(set) var count = 0

    public init() {
        branches = Array(repeating: Array(repeating: [:], count: Self.fanout), count: Self.fanout)
    }

    @inline(__always)
    private static func slot(_ key: Key) -> (Int, Int) {
        let hash = UInt(bitPattern: key.hashValue)
        // The leaf dictionary hashes the low bits again; take the branch indexes from the high bits.
        return (Int(truncatingIfNeeded: hash >> 58), Int(truncatingIfNeeded: (hash >> 52) & 63))
    }

    public subscript(key: Key) -> Value? {
        get {
            let (i, j) = Self.slot(key)
            return branches[i][j][key]
        }
        set {
            let (i, j) = Self.slot(key)
            if let newValue {
                if branches[i][j].updateValue(newValue, forKey: key) == nil { count += 1 }
            } else if branches[i][j].removeValue(forKey: key) != nil {
                count -= 1
            }
        }
    }

    public func contains(_ key: Key) -> Bool {
        let (i, j) = Self.slot(key)
        return branches[i][j].index(forKey: key) != nil
    }

    /// Every value, in no particular order.
    public var values: [Value] {
        var result: [Value] = []
        result.reserveCapacity(count)
        for branch in branches { for leaf in branch { result.append(contentsOf: leaf.values) } }
        return result
    }
}
