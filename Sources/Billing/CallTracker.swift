import RegistryModel

/// The calls in progress and what each event of a call's life does to them: the dialog tracking
/// behind call detail records. A value with no clock and no I/O — the gateway hands it times and
/// SIP facts, and writes the changes it returns.
///
/// A call opens when routing sends an INVITE somewhere, is answered by the first 2xx the caller
/// receives, and closes with a BYE from either side, a final answer other than 2xx, or
/// `cdr.max_call_duration`. A call an app hands back along a chain (same Call-ID, From-tag and CSeq)
/// continues the open one instead of opening another.
public struct CallTracker: Sendable {
    public enum Change: Sendable, Equatable {
        case opened(OpenCall)
        case updated(OpenCall)
        case closed(CallRecord)
    }

    /// Open calls by Call-ID: a Call-ID almost always has one.
    private var calls: [String: [OpenCall]] = [:]
    public private(set) var count = 0
    /// The timer of the call the last change closed, for the gateway to cancel.
    public private(set) var lastClosedTimer: UInt64?

    public init() {}

    public func call(_ key: CallKey) -> OpenCall? {
        calls[key.callID]?.first { $0.key == key }
    }

    /// A routed INVITE: a new call, or — for a leg an app hands back — the open call it continues,
    /// with the users this leg offers it to added.
    public mutating func start(_ call: OpenCall) -> Change {
        if var existing = self.call(call.key) {
            for user in call.users where !existing.users.contains(user) { existing.users.append(user) }
            if existing.forwardedTo == nil { existing.forwardedTo = call.forwardedTo }
            replace(existing)
            return .updated(existing)
        }
        calls[call.callID, default: []].append(call)
        count += 1
        return .opened(call)
    }

    /// A call routing refused or redirected (`rejected`), or could not carry out (`failed`): recorded
    /// at once, never open.
    public static func refused(_ call: OpenCall, at time: Int64, status: Int, reason: String,
                               disposition: CallRecord.Disposition = .rejected) -> CallRecord {
        call.record(endTime: time, sipCode: status, sipReason: reason, disposition: disposition, hangupBy: .tandem, endReason: .final)
    }

    /// A 2xx reached the caller (or, on a leg an app handed back, came from the callee): the first
    /// sets the answer time; `userID` is whose device answered, `voicemail` that the voicemail app did.
    public mutating func answered(_ key: CallKey, at time: Int64, toTag: String?, userID: String?, voicemail: Bool) -> Change? {
        guard var call = call(key) else { return nil }
        let before = call
        if call.answerTime == nil { call.answerTime = time }
        if call.toTag == nil { call.toTag = toTag }
        if call.answeredUserID == nil, let userID { call.answeredUserID = userID }
        if voicemail { call.decision = .voicemail }
        guard call != before else { return nil }
        replace(call)
        return .updated(call)
    }

    /// What the apps' branches answered on one leg: a chain's later apps answer on the legs they
    /// hand back. The first code known for an app stays.
    public mutating func appsAnswered(_ key: CallKey, _ codes: [String: Int]) {
        guard !codes.isEmpty, var call = call(key) else { return }
        for index in call.apps.indices where call.apps[index].sipCode == nil {
            call.apps[index].sipCode = codes[call.apps[index].appID]
        }
        replace(call)
    }

    /// Keeps the timer the gateway runs for the call's longest duration.
    public mutating func setTimer(_ key: CallKey, _ timer: UInt64?) {
        guard var call = call(key) else { return }
        call.timer = timer
        replace(call)
    }

    /// The caller received a final answer other than 2xx: the call ends unanswered. `cancelled` says
    /// the caller's CANCEL came first; `byTandem` that the answer is Tandem's own (a timeout, no
    /// answer within the ring time, no usable hop).
    public mutating func failed(_ key: CallKey, at time: Int64, status: Int, reason: String, cancelled: Bool = false, byTandem: Bool,
                                appCodes: [String: Int] = [:]) -> Change? {
        guard var call = call(key), call.answerTime == nil else { return nil }
        remove(key)
        call.apps = call.apps.map { leg in
            var leg = leg
            leg.sipCode = appCodes[leg.appID] ?? leg.sipCode
            return leg
        }
        let disposition = Self.disposition(status: status, cancelled: cancelled)
        let hangupBy: CallRecord.Party = cancelled ? .caller : byTandem ? .tandem : .callee
        return .closed(call.record(endTime: time, sipCode: status, sipReason: reason, disposition: disposition,
                                   hangupBy: hangupBy, endReason: cancelled ? .cancel : .final))
    }

    /// A BYE of an answered call: whoever sent it hung up. The caller's BYE carries the call's
    /// From-tag as its From-tag; the callee's carries it as its To-tag.
    public mutating func bye(callID: String, fromTag: String?, toTag: String?, at time: Int64) -> Change? {
        guard let candidates = calls[callID] else { return nil }
        guard let call = candidates.first(where: { $0.answerTime != nil && ($0.fromTag == fromTag || $0.fromTag == toTag) }) else {
            return nil
        }
        remove(call.key)
        let party: CallRecord.Party = call.fromTag == fromTag ? .caller : .callee
        return .closed(call.record(endTime: time, sipCode: 200, sipReason: "OK", disposition: .answered, hangupBy: party, endReason: .bye))
    }

    /// The call outlived `cdr.max_call_duration` without a BYE.
    public mutating func timedOut(_ key: CallKey, at time: Int64) -> Change? {
        guard let call = call(key), call.answerTime != nil else { return nil }
        remove(key)
        return .closed(call.record(endTime: time, sipCode: 200, sipReason: "OK", disposition: .answered, hangupBy: .tandem,
                                   endReason: .timeout))
    }

    /// How a final answer other than 2xx reads on a bill.
    public static func disposition(status: Int, cancelled: Bool) -> CallRecord.Disposition {
        if cancelled { return .cancelled }
        switch status {
        case 200..<300: return .answered
        case 486, 600: return .busy
        case 408, 480, 487: return .noAnswer
        case 300..<400, 403, 603: return .rejected
        default: return .failed
        }
    }

    private mutating func replace(_ call: OpenCall) {
        guard var list = calls[call.callID], let index = list.firstIndex(where: { $0.key == call.key }) else { return }
        list[index] = call
        calls[call.callID] = list
    }

    private mutating func remove(_ key: CallKey) {
        guard var list = calls[key.callID], let index = list.firstIndex(where: { $0.key == key }) else { return }
        lastClosedTimer = list[index].timer
        list.remove(at: index)
        calls[key.callID] = list.isEmpty ? nil : list
        count -= 1
    }
}
