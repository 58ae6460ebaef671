/// Choosing the response a forking proxy sends upstream once every branch has a final response
/// (RFC 3261 §16.7 step 6). Pure: statuses in, index out.
public enum ResponseSelection {
    /// The index of the best final response among `statuses`, or `nil` for an empty list.
    ///
    /// A 6xx wins outright; otherwise the lowest class wins (3xx before 4xx before 5xx). Within 4xx the
    /// responses RFC 3261 names as likely to be useful to the caller (401, 407, 415, 420, 484) are
    /// preferred; otherwise the first received wins.
    public static func best(_ statuses: [Int]) -> Int? {
        guard !statuses.isEmpty else { return nil }
        if let global = statuses.firstIndex(where: { $0 >= 600 }) { return global }
        let lowestClass = statuses.map { $0 / 100 }.min()!
        let candidates = statuses.indices.filter { statuses[$0] / 100 == lowestClass }
        if lowestClass == 4, let preferred = candidates.first(where: { [401, 407, 415, 420, 484].contains(statuses[$0]) }) {
            return preferred
        }
        return candidates.first
    }

    /// What goes upstream for a selected status: a 503 becomes 500 so the caller does not wrongly
    /// conclude this proxy is overloaded (§16.7 step 6).
    public static func forwardedStatus(_ status: Int) -> (status: Int, reason: String?) {
        status == 503 ? (500, "Server Internal Error") : (status, nil)
    }
}
