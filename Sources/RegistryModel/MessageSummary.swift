/// A user's voice messages waiting, as a voicemail application reports them (`messages.set`).
public struct MessageSummary: Sendable, Equatable {
    /// The most of any count: more than a phone shows, small enough that no count overflows.
    public static let limit = 1_000_000

    public var newMessages: Int
    public var oldMessages: Int
    public var urgentNew: Int
    public var urgentOld: Int
    /// The mailbox a phone calls to hear them (`Message-Account`), when the application names one.
    public var account: String?

    public init(newMessages: Int = 0, oldMessages: Int = 0, urgentNew: Int = 0, urgentOld: Int = 0, account: String? = nil) {
        self.newMessages = newMessages
        self.oldMessages = oldMessages
        self.urgentNew = urgentNew
        self.urgentOld = urgentOld
        self.account = account
    }

    public static let none = MessageSummary()
}

