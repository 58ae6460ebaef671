import Testing
@testable import SIP

@Suite struct DigestCredentialsTests {
    @Test(arguments: [
        (#"Digest username="alice", realm="tandem""#, "alice", "tandem"),
        // Quoted-pairs (RFC 3261 §25.1) are resolved: \" is a quote, \\ a backslash.
        (#"Digest username="al\"ice", realm="a\\b""#, #"al"ice"#, #"a\b"#),
        // UTF-8 stays UTF-8.
        (#"Digest username="zoé", realm="tandem""#, "zoé", "tandem"),
    ])
    func quotedValuesAreUnquoted(_ header: String, _ username: String, _ realm: String) throws {
        let credentials = try #require(DigestCredentials(parsing: header))
        #expect(credentials.username == username)
        #expect(credentials.realm == realm)
    }

    @Test func tokenValuesStayAsTheyAre() throws {
        let credentials = try #require(DigestCredentials(parsing: #"Digest username="a", realm="r", nonce="n", uri="sip:x", response="0", algorithm=MD5, qop=auth, nc=00000001"#))
        #expect(credentials.algorithm == "MD5" && credentials.qop == "auth" && credentials.nonceCount == "00000001")
    }
}
