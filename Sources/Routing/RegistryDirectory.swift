import RegistryModel

/// The live directory: a registry snapshot and the location service as of `now`. A class: the
/// decision passes it around freely, and a copy of a snapshot (a dozen maps) costs a dozen atomic
/// reference counts where a copy of a reference costs one.
public final class RegistryDirectory: RoutingDirectory {
    public let snapshot: RegistrySnapshot
    public let location: (any BindingLookup)?
    public let now: Int64

    public init(snapshot: RegistrySnapshot, location: (any BindingLookup)?, now: Int64) {
        self.snapshot = snapshot
        self.location = location
        self.now = now
    }

    public func number(_ e164: String) -> NumberEntry? { snapshot.number(e164) }
    public func account(_ id: String) -> Record<Account>? { snapshot.account(id) }
    public func user(_ id: String) -> Record<User>? { snapshot.user(id) }
    public func user(sipUsername: String) -> Record<User>? { snapshot.user(sipUsername: sipUsername) }
    public func users(inAccount accountID: String) -> [Record<User>] { snapshot.users(inAccount: accountID) }
    public func availability(of userID: String) -> Record<Availability>? { snapshot.availability(of: userID) }
    public func activeActivations(of number: String) -> [Activation] { snapshot.activeActivations(of: number) }
    public func app(_ id: String) -> Record<App>? { snapshot.app(id) }
    public func provider(_ id: String) -> Record<Provider>? { snapshot.provider(id) }
    public func isRegistered(_ userID: String) -> Bool {
        location?.bindings(userID: userID).contains { $0.expiresAt > now } ?? false
    }
}
