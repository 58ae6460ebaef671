import Testing
import SIP

@Suite struct SIPMethodTests {
    @Test(arguments: ["INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE", "NOTIFY", "PUBLISH",
                      "INFO", "REFER", "MESSAGE", "UPDATE", "NEWMETHOD", "!interesting-Method0123456789_*+`.%indeed'~"])
    func tokensRoundTrip(_ token: String) {
        #expect(SIPMethod(token).name == token)
    }

    /// RFC 3261 §7.1: the method is case-sensitive.
    @Test func methodsAreCaseSensitive() {
        #expect(SIPMethod("invite") == .other("invite"))
        #expect(SIPMethod("INVITE") == .invite)
    }

    @Test func onlyDialogCreatingMethodsAreRecordRouted() {
        #expect(SIPMethod.allowed.filter(\.createsDialog) == [.invite, .refer, .subscribe])
    }
}
