import COsip

/// libosip2's global tables must be built exactly once before the first parse, and never again while
/// other threads parse (LIBOSIP2.md pitfall 3). A Swift global is initialised once, thread-safely.
let osipLibraryReady: Void = {
    parser_init()
    tandem_osip_silence()
}()

/// Copies a C string owned by libosip2 into a Swift string; `nil` stays `nil`.
@inline(__always)
func string(_ pointer: UnsafePointer<CChar>?) -> String? {
    guard let pointer else { return nil }
    return String(cString: pointer)
}

@inline(__always)
func string(_ pointer: UnsafeMutablePointer<CChar>?) -> String? {
    guard let pointer else { return nil }
    return String(cString: pointer)
}

/// Runs one of libosip2's `*_to_str` functions and takes ownership of the string it allocates.
func osipString(_ produce: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32) -> String? {
    var out: UnsafeMutablePointer<CChar>? = nil
    guard produce(&out) == OSIP_SUCCESS, let out else { return nil }
    defer { tandem_osip_free(out) }
    return String(cString: out)
}

/// Walks an `osip_list_t` of `T` elements.
func osipListElements<T>(_ list: UnsafeMutablePointer<osip_list_t>, as: T.Type) -> [UnsafeMutablePointer<T>] {
    var result: [UnsafeMutablePointer<T>] = []
    let count = Int(osip_list_size(list))
    guard count > 0 else { return result }
    result.reserveCapacity(count)
    for index in 0..<count {
        if let element = osip_list_get(list, Int32(index)) {
            result.append(element.assumingMemoryBound(to: T.self))
        }
    }
    return result
}

/// Reads an osip generic parameter list into Swift values, keeping their order.
func osipParameters(_ list: UnsafeMutablePointer<osip_list_t>) -> [SIPParameter] {
    osipListElements(list, as: osip_generic_param_t.self).map {
        SIPParameter(name: string($0.pointee.gname) ?? "", value: string($0.pointee.gvalue))
    }
}
