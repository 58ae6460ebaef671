import Foundation
import Registrar
import Registry
import SIP
import SIPTransaction
import SIPTransport

/// The registrar (RFC 3261 §10.3) and the interim routing of requests to registered users.
extension Gateway {
    // MARK: REGISTER

    func handleRegister(_ context: RequestContext) {
        let (request, inbound, settings, key, snapshot) = (context.message, context.inbound, context.settings, context.key, context.snapshot)
        guard let (user, _) = authenticate(context, registrar: true) else {
            statistics.registersRefused.increment()
            return
        }
        let refuse: (Int, String) -> Void = { status, reason in
            self.statistics.registersRefused.increment()
            self.respondStatefully(to: request, inbound, key, status: status, reason: reason, settings)
        }
        // The address-of-record is the To URI (§10.3 step 5): the user's username or a personal number.
        guard let to = request.to?.uri, let toUser = to.user else {
            refuse(400, "To header names no address-of-record")
            return
        }
        guard isOurs(to, settings) || to.host.caseInsensitiveEquals(settings.realm) else {
            refuse(403, "Not a domain of this registrar")
            return
        }
        let aor: String
        if toUser == user.sipUsername {
            aor = toUser
        } else if let number = Self.e164(toUser), let entry = snapshot.number(number), entry.kind == .personal,
                  entry.ownerUserID == user.id {
            aor = number
        } else {
            refuse(403, "Not allowed to register \(toUser)")
            return
        }
        var contacts: [ContactEntry]? = []
        for contact in request.contacts {
            if contact.isWildcard {
                guard request.contacts.count == 1 else {
                    refuse(400, "Wildcard Contact must be the only one")
                    return
                }
                contacts = nil
                continue
            }
            guard let uri = contact.uri else {
                refuse(400, "Invalid Contact header")
                return
            }
            let parameters = contact.parameters
            let instance = parameters.value(named: "+sip.instance").flatMap { $0 }.map(Self.unquotedParameter)
            contacts?.append(ContactEntry(uri: uri.description, expires: parameters.value(named: "expires").flatMap { $0 },
                                          q: parameters.value(named: "q").flatMap { $0 }, instance: instance,
                                          regID: parameters.value(named: "reg-id").flatMap { $0 }))
        }
        if contacts?.isEmpty == true {
            // A REGISTER without Contact asks for the current bindings (§10.3 step 8).
            let now = clock()
            let bindings = location.bindings(aor: aor).filter { $0.expiresAt > now }
            statistics.registersAccepted.increment()
            respondStatefully(to: request, inbound, key, status: 200, reason: "OK", settings) { response in
                try self.describe(bindings, now: now, in: response)
            }
            return
        }
        var paths: [String] = []
        for value in request.headerValues("Path") {
            for item in Self.listItems(value) {
                guard NameAddress(parsing: item)?.uri != nil else {
                    refuse(400, "Invalid Path header")
                    return
                }
                paths.append(item)
            }
        }
        let supported = Set(request.headerValues("Supported").flatMap { $0.split(separator: ",") }
            .map { String($0).sipTrimmed.asciiLowercased })
        let now = clock()
        // RFC 3581 §4: a Via whose sent-by is not where the request came from means a NAT in between.
        let via = request.topVia
        let sentBy = via.map { SocketAddress(host: $0.host, port: $0.port ?? 5060) }
        let behindNAT = sentBy != inbound.source
        let register = RegisterRequest(
            aor: aor, userID: user.id, contacts: contacts, expires: request.header("Expires")?.sipTrimmed,
            callID: request.callID ?? "", cseq: request.cseq?.number ?? 0, path: paths, supported: supported,
            transport: inbound.transport.rawValue, source: inbound.source.description, local: inbound.local.description,
            behindNAT: behindNAT, connection: inbound.connection?.rawValue, userAgent: request.header("User-Agent"))
        let policy = settings.registrar
        do {
            let bindings = try location.update(aor: aor) { (current: [Binding]) throws(RegisterRefusal) in
                // Bindings past their time count as gone even before the sweeper removes them.
                let live = current.filter { $0.expiresAt > now }
                let expired = current.filter { $0.expiresAt <= now }.map { BindingChange(.expired, $0) }
                let outcome = try Registration.apply(register, to: live, now: now, policy: policy)
                return (outcome.bindings, expired + outcome.changes, outcome.bindings)
            }
            statistics.registersAccepted.increment()
            respondStatefully(to: request, inbound, key, status: 200, reason: "OK", settings) { response in
                try self.describe(bindings, now: now, in: response)
                for path in paths { try response.addHeader("Path", path) }
            }
        } catch {
            switch error {
            case .refused(let refusal):
                statistics.registersRefused.increment()
                respondStatefully(to: request, inbound, key, status: refusal.status, reason: refusal.reason, settings) { response in
                    for header in refusal.headers { try response.addHeader(header.name, header.value) }
                }
            case .storage(let failure):
                logger.error("cannot store a registration", [("aor", aor), ("reason", "\(failure)")])
                refuse(500, "Location service unavailable")
            }
        }
    }

    /// The 200 OK's Contact list (§10.3 step 8): every current binding with the seconds it has left.
    private func describe(_ bindings: [Binding], now: Int64, in response: SIPMessage) throws(SIPMessageError) {
        for binding in bindings {
            var value = "<\(binding.contact)>;expires=\(binding.secondsLeft(now: now))"
            if binding.q != 1000 { value += ";q=\(Registration.qText(binding.q))" }
            if let instance = binding.instance { value += ";+sip.instance=\"\(instance)\"" }
            if let regID = binding.regID { value += ";reg-id=\(regID)" }
            try response.addHeader("Contact", value)
        }
        try response.addHeader("Date", Self.httpDate(now))
    }

    /// RFC 3261 §20.17: the Date header, in RFC 1123 form, GMT.
    static func httpDate(_ milliseconds: Int64) -> String {
        var time = time_t(milliseconds / 1000)
        var parts = tm()
        gmtime_r(&time, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }

    /// `"<urn:uuid:…>"` → `<urn:uuid:…>` (RFC 5626 §4.1 quotes the instance in a Contact parameter).
    static func unquotedParameter(_ text: String) -> String {
        text.count >= 2 && text.hasPrefix("\"") && text.hasSuffix("\"") ? String(text.dropFirst().dropLast()) : text
    }

    /// The entries of a comma-separated header value such as Path (RFC 3261 §7.3.1), each then parsed
    /// by libosip2; commas inside `<…>` or quotes do not separate.
    static func listItems(_ value: String) -> [String] {
        var items: [String] = []
        var current = ""
        var inAngle = false, inQuotes = false
        for character in value {
            switch character {
            case "\"" where !inAngle: inQuotes.toggle()
            case "<" where !inQuotes: inAngle = true
            case ">" where !inQuotes: inAngle = false
            case "," where !inAngle && !inQuotes:
                items.append(current.sipTrimmed)
                current = ""
                continue
            default: break
            }
            current.append(character)
        }
        items.append(current.sipTrimmed)
        return items.filter { !$0.isEmpty }
    }

    /// Answers and keeps the answer, so a retransmitted REGISTER gets this same answer instead of
    /// being processed again (and refused as out of order).
    func respondStatefully(
        to request: SIPMessage, _ inbound: InboundMessage, _ key: ServerKey, status: Int, reason: String, _ settings: Settings,
        _ decorate: (SIPMessage) throws -> Void = { _ in }
    ) {
        guard let bytes = responseBytes(to: request, status: status, reason: reason, settings, decorate),
              let upstream = Self.responseDestination(request.topVia, inbound) else { return }
        // Over TCP the client does not retransmit (Timer J is 0, §17.2.2); over UDP the answer is kept
        // for Timer J so a retransmission gets these bytes again (`AnsweredRequests`).
        if request.topVia?.hasRFC3261Branch == true, inbound.transport == .udp {
            let now = timers.now(), timerJ = settings.timers.sixtyFourT1
            proxy.withLock(key.shard) { state in
                state.answered.remember(key, .init(bytes: bytes, destination: upstream), now: now, timerJ: timerJ)
            }
        }
        send(bytes, upstream, what: "response \(status)")
    }

    // MARK: Requests to registered users

    /// A fork target for one binding: the contact as Request-URI, sent along its Path when it has one
    /// (RFC 3327); over TCP, on the connection the REGISTER came on while it is open (RFC 5626 flows);
    /// for a device behind a NAT, to the address the REGISTER came from (RFC 3581), through the NAT
    /// binding it opened; otherwise to the Contact itself.
    func forwardTarget(_ binding: Binding) -> ForwardTarget? {
        guard let contact = SIPURI(parsing: binding.contact) else { return nil }
        if let first = binding.path.first, let route = NameAddress(parsing: first)?.uri {
            return ForwardTarget(nextHop: route, requestURI: binding.contact, routes: binding.path)
        }
        let local = try? ListenPoint(parsing: binding.local)
        let source = try? ListenPoint(parsing: "udp:" + binding.source).address
        let contactAddress = SocketAddress(host: contact.host, port: contact.port ?? 5060)
        if binding.transport == "tcp", let connection = binding.connection {
            // A new connection, if this one closed, goes to the contact's own address (the REGISTER's
            // source port was the device's ephemeral one).
            let fallback = contactAddress.isNumeric ? contactAddress : (source ?? contactAddress)
            let destination = Destination(transport: .tcp, address: fallback, connection: ConnectionID(connection), local: local)
            return ForwardTarget(nextHop: contact, requestURI: binding.contact, destination: destination)
        }
        if binding.behindNAT, let source {
            let transport: TransportKind = binding.transport == "tcp" ? .tcp : .udp
            return ForwardTarget(nextHop: contact, requestURI: binding.contact,
                                 destination: Destination(transport: transport, address: source, local: local))
        }
        return ForwardTarget(nextHop: contact, requestURI: binding.contact)
    }

    // MARK: Maintenance

    /// Starts the once-a-second sweep: expired bindings (each recorded as an event), ended bans,
    /// forgotten nonces.
    ///
    /// The sweep writes to the registry file, so it runs on `queue`, never on the timer thread: a
    /// slow or failing disk must not delay the transaction timers of calls. A tick that comes while
    /// the last sweep still runs is skipped. `nil` runs it on the timer's thread (manual timers in
    /// tests, where the order of events must not depend on a second thread).
    public func startMaintenance(every interval: Double = 1, on queue: DispatchQueue?) {
        let id = newTimerID()
        timers.schedule(id, after: interval) { [self] in
            if let queue {
                if !self.maintenanceRunning.exchange(true, ordering: .acquiringAndReleasing) {
                    queue.async {
                        self.maintain()
                        self.maintenanceRunning.store(false, ordering: .releasing)
                    }
                }
            } else {
                self.maintain()
            }
            self.startMaintenance(every: interval, on: queue)
        }
    }

    /// One sweep (the maintenance timer's work; tests call it directly).
    public func maintain() {
        let now = clock()
        do {
            let expired = try location.sweep(now: now)
            if !expired.isEmpty {
                statistics.bindingsExpired.add(expired.count)
                logger.info("registrations expired", [("count", String(expired.count))])
            }
        } catch {
            logger.error("cannot remove expired registrations", [("reason", "\(error)")])
        }
        authFailures.sweep(now: now)
        // While calls are in progress, a mark every few seconds bounds how long an interrupted one
        // is billed for after a crash (docs/cdr.md).
        if openCallCount > 0, now - lastAliveMark.load(ordering: .relaxed) >= 5_000 {
            lastAliveMark.store(now, ordering: .relaxed)
            callLog.heartbeat()
        }
        // Failed commits are retried with nothing dropped; the operator still needs to know why.
        let log = callLog.status
        if log.failures > reportedCallLogFailures.exchange(log.failures, ordering: .relaxed) {
            logger.error("call records cannot be written; retrying every second",
                         [("failures", String(log.failures)), ("pending", String(log.pending)), ("reason", log.lastError ?? "")])
        }
        let writes = location.writeStatus
        if writes.failures > reportedLocationFailures.exchange(writes.failures, ordering: .relaxed) {
            logger.error("registrations cannot be written; retrying every second",
                         [("failures", String(writes.failures)), ("pending", String(writes.pending)), ("reason", writes.lastError ?? "")])
        }
        if writes.dropped > reportedLocationRefusals.exchange(writes.dropped, ordering: .relaxed) {
            logger.error("the registry file refused a registration; its address is back to what the file holds",
                         [("refused", String(writes.dropped)), ("reason", writes.lastError ?? "")])
        }
        nonceCounts.forget(issuedBefore: now / 1000 - Int64(currentSettings.nonceLifetime))
    }
}
