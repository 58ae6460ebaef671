import COpenSSL

/// Hash functions of RFC 7616 digest authentication, computed by OpenSSL's libcrypto (the one
/// importer of COpenSSL, STYLE.md §3).
public enum DigestAlgorithm: String, Sendable, CaseIterable {
    case md5 = "MD5"
    case sha256 = "SHA-256"

    /// The lowercase hex digest of `text`'s UTF-8 bytes.
    public func hex(_ text: String) -> String {
        var bytes = Array(text.utf8)
        return Hex.encode(hash(&bytes))
    }

    /// OpenSSL 3 looks an algorithm up on every use unless it is fetched once; fetched objects are
    /// immutable and safe to share between threads.
    nonisolated(unsafe) private static let fetchedMD5 = EVP_MD_fetch(nil, "MD5", nil)
    nonisolated(unsafe) private static let fetchedSHA256 = EVP_MD_fetch(nil, "SHA256", nil)

    func hash(_ bytes: inout [UInt8]) -> [UInt8] {
        let md: OpaquePointer? = switch self {
        case .md5: Self.fetchedMD5 ?? EVP_md5()
        case .sha256: Self.fetchedSHA256 ?? EVP_sha256()
        }
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = bytes.withUnsafeBytes { input in
            output.withUnsafeMutableBufferPointer { out in
                EVP_Digest(input.baseAddress, input.count, out.baseAddress, &length, md, nil)
            }
        }
        precondition(ok == 1, "EVP_Digest failed")
        return Array(output.prefix(Int(length)))
    }

    /// RFC 7616 §3.4.2 HA1 = H(username ":" realm ":" password): what Tandem stores instead of passwords.
    public func ha1(username: String, realm: String, password: String) -> String {
        hex("\(username):\(realm):\(password)")
    }
}

/// HMAC-SHA256, for stateless nonces and signed webhook bodies.
public enum HMAC {
    public static func sha256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        key.withUnsafeBytes { keyBytes in
            message.withUnsafeBytes { messageBytes in
                output.withUnsafeMutableBufferPointer { out in
                    _ = COpenSSL.HMAC(EVP_sha256(), keyBytes.baseAddress, Int32(keyBytes.count),
                                      messageBytes.baseAddress, messageBytes.count, out.baseAddress, &length)
                }
            }
        }
        return Array(output.prefix(Int(length)))
    }
}

/// Comparison whose time does not depend on where two secrets differ (OpenSSL's CRYPTO_memcmp).
public func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    if a.isEmpty { return true }
    return a.withUnsafeBytes { x in b.withUnsafeBytes { y in CRYPTO_memcmp(x.baseAddress, y.baseAddress, a.count) == 0 } }
}

/// Bytes from OpenSSL's CSPRNG, for secrets and minted identifiers.
public func secureRandomBytes(_ count: Int) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    let ok = bytes.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32(count)) }
    precondition(ok == 1, "RAND_bytes failed")
    return bytes
}

public enum Hex {
    public static func encode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
