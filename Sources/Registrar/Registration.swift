import Registry

/// One Contact of a REGISTER, as the gateway read it from libosip2's parse.
public struct ContactEntry: Sendable, Equatable {
    /// The Contact URI.
    public var uri: String
    /// The `expires` parameter, as written.
    public var expires: String?
    /// The `q` parameter, as written.
    public var q: String?
    /// `+sip.instance`, unquoted.
    public var instance: String?
    /// `reg-id`, as written.
    public var regID: String?

    public init(uri: String, expires: String? = nil, q: String? = nil, instance: String? = nil, regID: String? = nil) {
        self.uri = uri
        self.expires = expires
        self.q = q
        self.instance = instance
        self.regID = regID
    }
}

/// What the registrar needs of a REGISTER (RFC 3261 §10.3), once authenticated.
public struct RegisterRequest: Sendable {
    public var aor: String
    public var userID: String
    /// `nil` for `Contact: *`.
    public var contacts: [ContactEntry]?
    /// The `Expires` header, as written.
    public var expires: String?
    public var callID: String
    public var cseq: UInt32
    public var path: [String]
    /// `Supported` option tags, lowercased.
    public var supported: Set<String>
    public var transport: String
    public var source: String
    public var local: String
    /// The source differs from the Via's sent-by (RFC 3581).
    public var behindNAT: Bool
    public var connection: UInt64?
    public var userAgent: String?

    public init(aor: String, userID: String, contacts: [ContactEntry]?, expires: String?, callID: String, cseq: UInt32,
                path: [String] = [], supported: Set<String> = [], transport: String, source: String, local: String,
                behindNAT: Bool = false, connection: UInt64? = nil, userAgent: String? = nil) {
        self.aor = aor
        self.userID = userID
        self.contacts = contacts
        self.expires = expires
        self.callID = callID
        self.cseq = cseq
        self.path = path
        self.supported = supported
        self.transport = transport
        self.source = source
        self.local = local
        self.behindNAT = behindNAT
        self.connection = connection
        self.userAgent = userAgent
    }
}

/// The registrar's limits (`registrar.*` configuration keys).
public struct RegistrarPolicy: Sendable, Equatable {
    /// Shortest non-zero expiry accepted; shorter ones get 423 (RFC 3261 §10.3 step 7).
    public var minExpires = 60
    /// Longest expiry granted; longer requests are shortened to it.
    public var maxExpires = 3_600
    /// Expiry when the request names none.
    public var defaultExpires = 3_600
    /// Most contacts one address-of-record may hold.
    public var maxContacts = 10

    public init(minExpires: Int = 60, maxExpires: Int = 3_600, defaultExpires: Int = 3_600, maxContacts: Int = 10) {
        self.minExpires = minExpires
        self.maxExpires = maxExpires
        self.defaultExpires = defaultExpires
        self.maxContacts = maxContacts
    }
}

/// A REGISTER the registrar refuses, with the response that says why.
public struct RegisterRefusal: Error, Sendable, Equatable {
    public var status: Int
    public var reason: String
    /// Extra response headers (`Min-Expires`, `Unsupported`).
    public var headers: [Header]

    public struct Header: Sendable, Equatable {
        public var name: String
        public var value: String
    }

    init(_ status: Int, _ reason: String, _ headers: [Header] = []) {
        self.status = status
        self.reason = reason
        self.headers = headers
    }
}

/// RFC 3261 §10.3 steps 6–8, with RFC 5626 instance replacement and RFC 3327 Path: given the
/// bindings an address-of-record holds, the new list and what changed — or a refusal. Pure: the
/// time comes in as a value, nothing is stored here.
public enum Registration {
    public static func apply(_ request: RegisterRequest, to current: [Binding], now: Int64,
                             policy: RegistrarPolicy) throws(RegisterRefusal) -> (bindings: [Binding], changes: [BindingChange]) {
        if !request.path.isEmpty && !request.supported.contains("path") {
            // RFC 3327 §5.3: a registrar that would store a Path the UA did not ask for refuses.
            throw RegisterRefusal(420, "Bad Extension", [.init(name: "Unsupported", value: "path")])
        }
        let headerExpires: Int?
        if let text = request.expires {
            guard let value = Int(text), value >= 0 else { throw RegisterRefusal(400, "Invalid Expires header") }
            headerExpires = value
        } else {
            headerExpires = nil
        }
        guard let contacts = request.contacts else {
            // Contact: * removes every binding, and only with Expires: 0 (§10.3 step 6).
            guard headerExpires == 0 else { throw RegisterRefusal(400, "Wildcard Contact requires Expires: 0") }
            try checkOrder(request, current)
            return ([], current.map { BindingChange(.removed, $0) })
        }
        // §10.3 step 7, applied to the whole address-of-record: a REGISTER on a Call-ID already seen
        // must carry a higher CSeq than the last one, whichever contacts it names — a delayed older
        // request must not undo a newer one.
        try checkOrder(request, current)
        var bindings = current
        var changes: [BindingChange] = []
        for entry in contacts {
            var seconds = headerExpires ?? policy.defaultExpires
            if let text = entry.expires {
                guard let value = Int(text), value >= 0 else { throw RegisterRefusal(400, "Invalid expires parameter in Contact") }
                seconds = value
            }
            if seconds > 0 && seconds < policy.minExpires {
                throw RegisterRefusal(423, "Interval Too Brief", [.init(name: "Min-Expires", value: String(policy.minExpires))])
            }
            seconds = min(seconds, policy.maxExpires)
            var q = 1000
            if let text = entry.q {
                guard let value = Self.qValue(text) else { throw RegisterRefusal(400, "Invalid q parameter in Contact") }
                q = value
            }
            var regID: Int?
            if let text = entry.regID {
                guard let value = Int(text), value > 0 else { throw RegisterRefusal(400, "Invalid reg-id parameter in Contact") }
                regID = value
            }
            let existing = bindings.firstIndex { Self.sameContact($0.contact, entry.uri) }
            if seconds == 0 {
                if let existing {
                    changes.append(BindingChange(.removed, bindings[existing]))
                    bindings.remove(at: existing)
                }
                continue
            }
            var binding = Binding(
                aor: request.aor, contact: entry.uri, userID: request.userID, instance: entry.instance, regID: regID, q: q,
                expiresAt: now + Int64(seconds) * 1000, callID: request.callID, cseq: request.cseq, path: request.path,
                transport: request.transport, source: request.source, local: request.local, behindNAT: request.behindNAT,
                userAgent: request.userAgent,
                registeredAt: now, updatedAt: now, connection: request.connection)
            if let existing {
                binding.registeredAt = bindings[existing].registeredAt
                bindings[existing] = binding
                changes.append(BindingChange(.refreshed, binding))
                continue
            }
            // RFC 5626 §6: the same device (instance, and reg-id when given) registering a new contact
            // replaces its old binding — a rebooted phone with a new port or address.
            if let instance = entry.instance,
               let previous = bindings.firstIndex(where: { $0.instance == instance && $0.regID == regID }) {
                changes.append(BindingChange(.replaced, bindings[previous]))
                bindings[previous] = binding
                changes.append(BindingChange(.added, binding))
                continue
            }
            bindings.append(binding)
            changes.append(BindingChange(.added, binding))
        }
        if bindings.count > policy.maxContacts && bindings.count > current.count {
            throw RegisterRefusal(403, "Too many contacts for this address (at most \(policy.maxContacts))")
        }
        return (bindings, changes)
    }

    static func checkOrder(_ request: RegisterRequest, _ current: [Binding]) throws(RegisterRefusal) {
        for binding in current where binding.callID == request.callID && request.cseq <= binding.cseq {
            throw RegisterRefusal(500, "Out of order REGISTER (CSeq \(request.cseq) not above \(binding.cseq))")
        }
    }

    /// RFC 3261 §10.3 step 5: URIs are compared with §19.1.4 rules; here scheme, user and host are
    /// case-compared as libosip2 wrote them, so a device re-registering the same text matches.
    static func sameContact(_ a: String, _ b: String) -> Bool {
        a == b || a.lowercased() == b.lowercased()
    }

    /// A q-value in thousandths as a Contact parameter writes it: `1`, `0.5`, `0.125`, `0`.
    public static func qText(_ thousandths: Int) -> String {
        guard thousandths > 0 else { return "0" }
        guard thousandths < 1000 else { return "1" }
        var text = String(thousandths + 1000).dropFirst()
        while text.hasSuffix("0") { text.removeLast() }
        return "0." + text
    }

    /// A q-value (RFC 3261 §25.1: `0`–`1` with up to three decimals) in thousandths.
    static func qValue(_ text: String) -> Int? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), parts[0].count == 1, parts[0].allSatisfy({ $0 == "0" || $0 == "1" }),
              let whole = Int(parts[0]) else { return nil }
        var thousandths = whole * 1000
        if parts.count == 2 {
            let digits = parts[1]
            guard digits.count <= 3, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            let padded = digits + String(repeating: "0", count: 3 - digits.count)
            thousandths += Int(padded) ?? 0
        }
        return thousandths <= 1000 ? thousandths : nil
    }
}
