import SIPTransport

/// Final responses Tandem itself gave to non-INVITE requests over UDP (REGISTER above all), kept so a
/// retransmission of the request is answered with the same bytes instead of being processed again —
/// which for a REGISTER would be refused as out of order (RFC 3261 §10.3 step 7) after the first
/// copy was accepted.
///
/// RFC 3261 §17.2.2 keeps a server transaction for Timer J (64·T1) for this; a transaction per
/// registration means a struct, a timer scheduled and fired, and a slot in `sip.max_transactions`.
/// Here an answer is a dictionary entry in one of three generations, each half of Timer J long; the
/// oldest is dropped whole when a new one begins, so an answer is kept between one and one and a half
/// Timer J, and nothing runs per entry.
struct AnsweredRequests {
    struct Answer {
        var bytes: [UInt8]
        var destination: Destination
    }

    private var generations: [[ServerKey: Answer]] = [[:], [:], [:]]
    private var currentStart: Double?

    /// Moves to a new generation when the current one is `span` old (several at once after a pause).
    private mutating func age(_ now: Double, span: Double) {
        guard let start = currentStart else {
            currentStart = now
            return
        }
        let elapsed = Int((now - start) / span)
        guard elapsed > 0 else { return }
        for _ in 0..<min(elapsed, generations.count) {
            generations.removeLast()
            generations.insert([:], at: 0)
        }
        currentStart = start + Double(elapsed) * span
    }

    /// Keeps `answer` for at least `timerJ` seconds from `now`.
    mutating func remember(_ key: ServerKey, _ answer: Answer, now: Double, timerJ: Double) {
        age(now, span: timerJ / 2)
        generations[0][key] = answer
    }

    mutating func answer(to key: ServerKey, now: Double, timerJ: Double) -> Answer? {
        age(now, span: timerJ / 2)
        for generation in generations {
            if let answer = generation[key] { return answer }
        }
        return nil
    }

    var count: Int { generations.reduce(0) { $0 + $1.count } }
}
