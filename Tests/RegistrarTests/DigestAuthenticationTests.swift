import Crypto
import SIP
import Testing
@testable import Registrar

@Suite struct DigestAuthenticationTests {
    /// RFC 7616 §3.9.1: the example's credentials and responses for MD5 and SHA-256.
    @Test(arguments: [(DigestAlgorithm.md5, "8ca523f5e9506fed4657c9700eebdbec"),
                      (.sha256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1")])
    func rfc7616Example(_ algorithm: DigestAlgorithm, _ expected: String) throws {
        let ha1 = algorithm.ha1(username: "Mufasa", realm: "http-auth@example.org", password: "Circle of Life")
        let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
        #expect(DigestVerifier.response(algorithm: algorithm, ha1: ha1, nonce: nonce, nc: "00000001", cnonce: cnonce,
                                        method: "GET", uri: "/dir/index.html") == expected)
        let header = "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", uri=\"/dir/index.html\", algorithm=\(algorithm.rawValue), nonce=\"\(nonce)\", nc=00000001, cnonce=\"\(cnonce)\", qop=auth, response=\"\(expected)\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
        let credentials = try #require(DigestCredentials(parsing: header))
        #expect(credentials.username == "Mufasa" && credentials.realm == "http-auth@example.org" && credentials.qop == "auth")
        #expect(DigestVerifier.verify(credentials, method: "GET", ha1: ha1) == .valid)
        #expect(DigestVerifier.verify(credentials, method: "POST", ha1: ha1) == .wrongResponse)
        var noQop = credentials
        noQop.qop = nil
        #expect(DigestVerifier.verify(noQop, method: "GET", ha1: ha1) == .malformed("qop (auth is required)"))
        var badCount = credentials
        badCount.nonceCount = "1"
        #expect(DigestVerifier.verify(badCount, method: "GET", ha1: ha1) == .malformed("nc"))
    }

    @Test func unknownAlgorithmIsReported() throws {
        let credentials = try #require(DigestCredentials(parsing: "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"0\", algorithm=SHA-512-256"))
        #expect(DigestVerifier.algorithm(of: credentials) == nil)
        #expect(DigestVerifier.verify(credentials, method: "REGISTER", ha1: "") == .unsupportedAlgorithm("SHA-512-256"))
    }

    @Test func noncesAreSignedAndAge() {
        let issuer = NonceIssuer(secret: Array("0123456789abcdef0123".utf8))
        let now: Int64 = 1_795_219_200_000
        let nonce = issuer.issue(now: now, realm: "tandem")
        #expect(nonce.count == 64)
        #expect(issuer.check(nonce, now: now + 299_000, realm: "tandem", lifetime: 300) == .valid(issuedAt: now / 1000))
        #expect(issuer.check(nonce, now: now + 301_000, realm: "tandem", lifetime: 300) == .stale)
        #expect(issuer.check(nonce, now: now, realm: "other", lifetime: 300) == .invalid)
        #expect(issuer.issue(now: now, realm: "tandem") != nonce)
        // One altered digit, or another server's secret, is not ours.
        var altered = Array(nonce)
        altered[3] = altered[3] == "0" ? "1" : "0"
        #expect(issuer.check(String(altered), now: now, realm: "tandem", lifetime: 300) == .invalid)
        #expect(NonceIssuer(secret: Array("another secret!!".utf8)).check(nonce, now: now, realm: "tandem", lifetime: 300) == .invalid)
        #expect(issuer.check("zz", now: now, realm: "tandem", lifetime: 300) == .invalid)
    }

    @Test func nonceCountsRefuseReplaysAndForgottenNonces() {
        let counts = NonceCounts(capacity: 2)
        #expect(counts.accept(nonce: "a", issuedAt: 10, nc: 1) == .accepted)
        #expect(counts.accept(nonce: "a", issuedAt: 10, nc: 1) == .replayed)
        #expect(counts.accept(nonce: "a", issuedAt: 10, nc: 3) == .accepted)
        #expect(counts.accept(nonce: "a", issuedAt: 10, nc: 2) == .replayed)
        #expect(counts.accept(nonce: "b", issuedAt: 11, nc: 1) == .accepted)
        // A third nonce evicts "a" (issued at 10): "a" may no longer be trusted, newer nonces may.
        #expect(counts.accept(nonce: "c", issuedAt: 12, nc: 1) == .accepted)
        #expect(counts.count == 2)
        #expect(counts.accept(nonce: "a", issuedAt: 10, nc: 9) == .unknown)
        #expect(counts.accept(nonce: "d", issuedAt: 13, nc: 1) == .accepted)
        counts.forget(issuedBefore: 13)
        #expect(counts.count == 1)
    }
}

@Suite struct AuthFailuresTests {
    @Test func sourceIsBannedPastTheLimitWithinTheWindow() {
        let failures = AuthFailures(policy: BanPolicy(maxFailures: 2, window: 60, banTime: 600))
        let t: Int64 = 1_000_000
        #expect(failures.recordFailure(source: "192.0.2.1", username: "alice", now: t) == nil)
        #expect(failures.recordFailure(source: "192.0.2.1", username: "alice", now: t + 61_000) == nil)  // first left the window
        #expect(failures.recordFailure(source: "192.0.2.1", username: "bob", now: t + 62_000) == nil)
        let ban = failures.recordFailure(source: "192.0.2.1", username: "carol", now: t + 63_000)
        #expect(ban?.failures == 3 && ban?.username == nil)
        #expect(failures.ban(of: "192.0.2.1", now: t + 63_000 + 599_000) != nil)
        #expect(failures.ban(of: "192.0.2.1", now: t + 63_000 + 600_000) == nil)
        #expect(failures.ban(of: "192.0.2.2", now: t) == nil)
    }

    @Test func aGuessedUsernameBansEachNewSource() {
        let failures = AuthFailures(policy: BanPolicy(maxFailures: 2, window: 60, banTime: 600))
        for (index, source) in ["198.51.100.1", "198.51.100.2"].enumerated() {
            #expect(failures.recordFailure(source: source, username: "alice", now: Int64(index)) == nil)
        }
        let ban = failures.recordFailure(source: "198.51.100.3", username: "alice", now: 3)
        #expect(ban?.username == "alice" && ban?.source == "198.51.100.3")
        #expect(failures.bans(now: 4).map(\.source) == ["198.51.100.3"])
        #expect(failures.unban("198.51.100.3") && !failures.unban("198.51.100.3"))
    }

    @Test func zeroDisablesBans() {
        let failures = AuthFailures(policy: BanPolicy(maxFailures: 0))
        for time in 0..<50 { #expect(failures.recordFailure(source: "192.0.2.1", username: nil, now: Int64(time)) == nil) }
    }
}

@Suite struct AddressBlockTests {
    @Test(arguments: [("10.0.0.0/8", "10.200.3.4", true), ("10.0.0.0/8", "11.0.0.1", false), ("192.0.2.7", "192.0.2.7", true),
                      ("192.0.2.7", "192.0.2.8", false), ("2001:db8::/32", "2001:db8:1::5", true), ("2001:db8::/32", "[2001:db8::1]", true),
                      ("2001:db8::/32", "2001:db9::1", false), ("::1", "::1", true), ("127.0.0.0/8", "::1", false),
                      ("0.0.0.0/0", "203.0.113.9", true), ("192.0.2.0/25", "192.0.2.128", false), ("192.0.2.0/25", "192.0.2.127", true),
                      ("10.0.0.0/8", "example.com", false),
                      // Prefixes on each side of the 64-bit halves the matching works on.
                      ("2001:db8::/64", "2001:db8::ffff:1", true), ("2001:db8::/64", "2001:db8:0:1::1", false),
                      ("2001:db8::/63", "2001:db8:0:1::1", true), ("2001:db8::/65", "2001:db8::8000:0:0:1", false),
                      ("2001:db8::/65", "2001:db8::7fff:0:0:1", true), ("::/0", "2001:db8::1", true), ("::/0", "192.0.2.1", true),
                      ("2001:db8::1/128", "2001:db8::1", true), ("2001:db8::1/128", "2001:db8::2", false),
                      ("10.0.0.0/8", "::ffff:10.1.2.3", true), ("192.0.2.1/32", "192.0.2.1", true), ("0.0.0.0/0", "2001:db8::1", false)])
    func membership(_ block: String, _ host: String, _ inside: Bool) throws {
        #expect(try #require(AddressBlock(block)).contains(host) == inside)
    }

    @Test(arguments: ["10.0.0.0/33", "10.0.0/8", "example.com", "::1/129", "10.0.0.0/", "10.0.0.0/a", ""])
    func invalid(_ text: String) {
        #expect(AddressBlock(text) == nil)
    }
}
