import Testing
import Crypto

@Suite struct DigestTests {
    // RFC 7616 §3.9.1: username Mufasa, realm http-auth@example.org, password "Circle of Life".
    @Test func ha1MatchesRFC7616Examples() {
        #expect(DigestAlgorithm.md5.ha1(username: "Mufasa", realm: "http-auth@example.org", password: "Circle of Life")
                == DigestAlgorithm.md5.hex("Mufasa:http-auth@example.org:Circle of Life"))
        #expect(DigestAlgorithm.md5.hex("") == "d41d8cd98f00b204e9800998ecf8427e")
        #expect(DigestAlgorithm.sha256.hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    // RFC 4231 test case 2.
    @Test func hmacSHA256() {
        let mac = HMAC.sha256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        #expect(Hex.encode(mac) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test func constantTimeComparison() {
        #expect(constantTimeEquals(Array("token-123".utf8), Array("token-123".utf8)))
        #expect(!constantTimeEquals(Array("token-123".utf8), Array("token-124".utf8)))
        #expect(!constantTimeEquals(Array("short".utf8), Array("longer".utf8)))
        #expect(secureRandomBytes(16) != secureRandomBytes(16))
    }
}
