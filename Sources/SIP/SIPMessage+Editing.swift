import COsip

/// The edits a proxy makes (RFC 3261 §16.6). Each leaves libosip2's cached bytes marked stale.
extension SIPMessage {
    /// Inserts a Via at the top (§16.6 step 8).
    public func pushVia(_ value: String) throws(SIPMessageError) {
        var via: UnsafeMutablePointer<osip_via_t>? = nil
        guard osip_via_init(&via) == OSIP_SUCCESS, let via else { throw SIPMessageError(.invalidValue, "Out of memory") }
        guard osip_via_parse(via, value) == OSIP_SUCCESS else {
            osip_via_free(via)
            throw SIPMessageError(.invalidValue, "Invalid Via: \(value)")
        }
        osip_list_add(&raw.pointee.vias, via, 0)
        changed()
    }

    /// Removes the top Via (§16.7 step 3, a response travelling upstream); returns it.
    @discardableResult
    public func popVia() -> Via? {
        guard let first = osip_list_get(&raw.pointee.vias, 0) else { return nil }
        let via = first.assumingMemoryBound(to: osip_via_t.self)
        let value = Via(via, describe: false)
        osip_list_remove(&raw.pointee.vias, 0)
        osip_via_free(via)
        changed()
        return value
    }

    /// Adds `received` and fills `rport` on the top Via from the packet's source (RFC 3261 §18.2.1,
    /// RFC 3581 §4).
    public func stampTopVia(sourceHost: String, sourcePort: Int) {
        guard let first = osip_list_get(&raw.pointee.vias, 0) else { return }
        let via = first.assumingMemoryBound(to: osip_via_t.self)
        let hasRport = tandem_osip_has_param(&via.pointee.via_params, "rport") != 0
        let sentBy = string(via.pointee.host) ?? ""
        if hasRport || sentBy != sourceHost {
            setParameter(&via.pointee.via_params, "received", sourceHost)
        }
        if hasRport {
            setParameter(&via.pointee.via_params, "rport", String(sourcePort))
        }
        changed()
    }

    private func setParameter(_ params: UnsafeMutablePointer<osip_list_t>, _ name: String, _ value: String) {
        var existing: UnsafeMutablePointer<osip_generic_param_t>? = nil
        let found = name.withCString { osip_uri_param_get_byname(params, UnsafeMutablePointer(mutating: $0), &existing) }
        if found == OSIP_SUCCESS, let existing {
            tandem_osip_free(existing.pointee.gvalue)
            existing.pointee.gvalue = tandem_osip_strdup(value)
        } else {
            _ = tandem_osip_param_add(params, name, value)
        }
    }

    /// Sets Max-Forwards, adding the header when absent (§16.6 step 3).
    public func setMaxForwards(_ value: Int) {
        if let header = maxForwardsHeader {
            tandem_osip_free(header.pointee.hvalue)
            header.pointee.hvalue = tandem_osip_strdup(String(value))
            changed()
        } else {
            setHeader("Max-Forwards", String(value))
        }
    }

    /// Decrements Max-Forwards, or adds it with 70 when absent (§16.6 step 3). Returns the new value.
    @discardableResult
    public func decrementMaxForwards() -> Int {
        let next = maxForwards.map { max($0 - 1, 0) } ?? 70
        setMaxForwards(next)
        return next
    }

    /// Adds a Record-Route at the top (§16.6 step 4).
    public func pushRecordRoute(_ value: String) throws(SIPMessageError) {
        var route: UnsafeMutablePointer<osip_record_route_t>? = nil
        guard osip_record_route_init(&route) == OSIP_SUCCESS, let route else {
            throw SIPMessageError(.invalidValue, "Out of memory")
        }
        guard osip_record_route_parse(route, value) == OSIP_SUCCESS else {
            osip_record_route_free(route)
            throw SIPMessageError(.invalidValue, "Invalid Record-Route: \(value)")
        }
        osip_list_add(&raw.pointee.record_routes, route, 0)
        changed()
    }

    /// Adds a Route at the top (a pre-loaded route set, §16.6 step 2 alternative).
    public func pushRoute(_ value: String) throws(SIPMessageError) {
        var route: UnsafeMutablePointer<osip_route_t>? = nil
        guard osip_route_init(&route) == OSIP_SUCCESS, let route else {
            throw SIPMessageError(.invalidValue, "Out of memory")
        }
        guard osip_route_parse(route, value) == OSIP_SUCCESS else {
            osip_route_free(route)
            throw SIPMessageError(.invalidValue, "Invalid Route: \(value)")
        }
        osip_list_add(&raw.pointee.routes, route, 0)
        changed()
    }

    /// Removes the top Route (§16.4, a Route naming this proxy); returns it.
    @discardableResult
    public func popRoute() -> NameAddress? {
        guard let first = osip_list_get(&raw.pointee.routes, 0) else { return nil }
        let route = first.assumingMemoryBound(to: osip_route_t.self)
        let value = NameAddress(route, describe: true)
        osip_list_remove(&raw.pointee.routes, 0)
        osip_route_free(route)
        changed()
        return value
    }

    /// Removes the last Route (§16.4: undoing a strict-routing previous hop); returns it.
    @discardableResult
    public func popLastRoute() -> NameAddress? {
        let count = osip_list_size(&raw.pointee.routes)
        guard count > 0, let last = osip_list_get(&raw.pointee.routes, count - 1) else { return nil }
        let route = last.assumingMemoryBound(to: osip_route_t.self)
        let value = NameAddress(route, describe: true)
        osip_list_remove(&raw.pointee.routes, count - 1)
        osip_route_free(route)
        changed()
        return value
    }

    /// Replaces the Request-URI (§16.6 step 6).
    public func setRequestURI(_ value: String) throws(SIPMessageError) {
        var uri: UnsafeMutablePointer<osip_uri_t>? = nil
        guard osip_uri_init(&uri) == OSIP_SUCCESS, let uri else { throw SIPMessageError(.invalidValue, "Out of memory") }
        guard osip_uri_parse(uri, value) == OSIP_SUCCESS else {
            osip_uri_free(uri)
            throw SIPMessageError(.invalidValue, "Invalid Request-URI: \(value)")
        }
        if let old = raw.pointee.req_uri { osip_uri_free(old) }
        raw.pointee.req_uri = uri
        changed()
    }

    /// Appends a header; known headers are parsed into libosip2's typed lists.
    public func addHeader(_ name: String, _ value: String) throws(SIPMessageError) {
        guard osip_message_set_header(raw, name, value) == OSIP_SUCCESS else {
            throw SIPMessageError(.invalidValue, "Invalid \(name) header")
        }
        changed()
    }

    /// Replaces every value of a generic header with one value.
    public func setHeader(_ name: String, _ value: String) {
        removeHeaders(name)
        _ = osip_message_set_header(raw, name, value)
        changed()
    }

    /// Removes every occurrence of a header (long or compact form). Returns how many were removed.
    @discardableResult
    public func removeHeaders(_ name: String) -> Int {
        let canonical = HeaderName.canonical(name)
        var removed = 0
        switch canonical {
        case "via": removed = clear(&raw.pointee.vias) { osip_via_free($0.assumingMemoryBound(to: osip_via_t.self)) }
        case "route": removed = clear(&raw.pointee.routes) { osip_route_free($0.assumingMemoryBound(to: osip_route_t.self)) }
        case "record-route":
            removed = clear(&raw.pointee.record_routes) {
                osip_record_route_free($0.assumingMemoryBound(to: osip_record_route_t.self))
            }
        case "contact":
            removed = clear(&raw.pointee.contacts) { osip_contact_free($0.assumingMemoryBound(to: osip_contact_t.self)) }
        case "allow":
            removed = clear(&raw.pointee.allows) {
                osip_content_length_free($0.assumingMemoryBound(to: osip_content_length_t.self))
            }
        case "proxy-authorization":
            removed = clear(&raw.pointee.proxy_authorizations) {
                osip_authorization_free($0.assumingMemoryBound(to: osip_authorization_t.self))
            }
        case "authorization":
            removed = clear(&raw.pointee.authorizations) {
                osip_authorization_free($0.assumingMemoryBound(to: osip_authorization_t.self))
            }
        default:
            let compact = HeaderName.compact(canonical)
            var index: Int32 = 0
            while let element = osip_list_get(&raw.pointee.headers, index) {
                let header = element.assumingMemoryBound(to: osip_header_t.self)
                let headerName = string(header.pointee.hname)?.asciiLowercased
                if headerName == canonical || (compact != nil && headerName == compact) {
                    osip_list_remove(&raw.pointee.headers, index)
                    osip_header_free(header)
                    removed += 1
                } else {
                    index += 1
                }
            }
        }
        if removed > 0 { changed() }
        return removed
    }

    private func clear(_ list: UnsafeMutablePointer<osip_list_t>, _ free: (UnsafeMutableRawPointer) -> Void) -> Int {
        var removed = 0
        while let element = osip_list_get(list, 0) {
            osip_list_remove(list, 0)
            free(element)
            removed += 1
        }
        return removed
    }
}
