import Crypto
import JSON

extension RegistryStore {
    /// Creates a user. The operator may create any role; the account's primary user may create
    /// members and children. An account has at most one primary user.
    public func createUser(accountID: String, id: String?, displayName: String, role: User.Role, sipUsername: String,
                           password: String?, grants: [String]?, status: User.Status = .active,
                           acting: String?) throws(RegistryError) -> User {
        guard try fetchAccount(accountID) != nil else {
            throw .notFound("account", "no account '\(accountID)'")
        }
        try requirePrimary(acting, account: accountID, "create users")
        if acting != nil, role == .primary { throw .forbidden("only the operator may create a primary user") }
        let id = try id.map { v throws(RegistryError) in try Validate.identifier("id", v) } ?? MintedID.make("usr")
        let displayName = try Validate.text("display_name", displayName)
        let sipUsername = try Validate.sipUsername("sip_username", sipUsername)
        let password = try password.map { v throws(RegistryError) in try Validate.password("password", v) }
        guard try count("SELECT count(*) FROM users WHERE id = ?", [.text(id)]) == 0 else {
            throw .conflict("id", "user '\(id)' already exists")
        }
        guard try count("SELECT count(*) FROM users WHERE sip_username = ?", [.text(sipUsername)]) == 0 else {
            throw .conflict("sip_username", "SIP username '\(sipUsername)' is taken")
        }
        if role == .primary, try count("SELECT count(*) FROM users WHERE account_id = ? AND role = 'primary'", [.text(accountID)]) > 0 {
            throw .conflict("role", "account '\(accountID)' already has a primary user")
        }
        let services = try grants.map { list throws(RegistryError) in try validServices(list, account: accountID) } ?? Service.defaults(for: role)
        let now = timestamp()
        let credentials = password.map { self.credentials(username: sipUsername, password: $0) }
        try sql("""
            INSERT INTO users (id, account_id, display_name, role, sip_username, status, realm, ha1_md5, ha1_sha256, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [.text(id), .text(accountID), .text(displayName), .text(role.rawValue), .text(sipUsername), .text(status.rawValue),
                  .optional(credentials?.realm), .optional(credentials?.ha1MD5), .optional(credentials?.ha1SHA256), .text(now), .text(now)])
        for service in services.sorted() {
            try sql("INSERT INTO grants (user_id, service, granted_at) VALUES (?, ?, ?)", [.text(id), .text(service), .text(now)])
        }
        touched.users.insert(id)
        return User(id: id, accountID: accountID, displayName: displayName, role: role, sipUsername: sipUsername, status: status,
                    credentials: credentials, grants: services, createdAt: now, updatedAt: now)
    }

    func credentials(username: String, password: String) -> User.Credentials {
        User.Credentials(realm: realm,
                         ha1MD5: DigestAlgorithm.md5.ha1(username: username, realm: realm, password: password),
                         ha1SHA256: DigestAlgorithm.sha256.ha1(username: username, realm: realm, password: password))
    }

    public func user(_ id: String, acting: String?) throws(RegistryError) -> User {
        guard let user = try fetchUser(id) else { throw .notFound("id", "no user '\(id)'") }
        try requireMember(acting, account: user.accountID)
        return user
    }

    public func users(accountID: String?, role: User.Role?, limit: Int, offset: Int, acting: String?) throws(RegistryError) -> Page<User> {
        var filter = try accountFilter(acting, accountID: accountID)
        filter.add("role = ?", role?.rawValue)
        let total = try count("SELECT count(*) FROM users" + filter.clause, filter.values)
        var items = try rows("SELECT \(Self.userColumns) FROM users\(filter.clause) ORDER BY id LIMIT ? OFFSET ?",
                             filter.values + Self.paging(limit, offset)) { Self.user($0, grants: []) }
        for index in items.indices {
            items[index].grants = try grants(of: items[index].id)
        }
        return Page(items: items, total: total)
    }

    /// Changes a user. Making a user primary demotes the account's current primary to member, in the
    /// same transaction. A new SIP username needs the password too: the stored HA1s cover the username.
    public func updateUser(_ id: String, displayName: String?, role: User.Role?, status: User.Status?, sipUsername: String?,
                           password: String?, acting: String?) throws(RegistryError) -> User {
        var user = try self.user(id, acting: nil)
        try requirePrimary(acting, account: user.accountID, "change users")
        if let displayName { user.displayName = try Validate.text("display_name", displayName) }
        if let status {
            if acting == id, status == .disabled { throw .forbidden("a user may not disable themselves") }
            user.status = status
        }
        let now = timestamp()
        if let role, role != user.role {
            if user.role == .primary { throw .conflict("role", "make another user primary instead; the account keeps one primary") }
            if role == .primary {
                try sql("UPDATE users SET role = 'member', updated_at = ? WHERE account_id = ? AND role = 'primary'",
                        [.text(now), .text(user.accountID)])
                for previous in try rows("SELECT id FROM users WHERE account_id = ? AND role = 'member'", [.text(user.accountID)], { $0.text(0) }) {
                    touched.users.insert(previous)
                }
            }
            user.role = role
        }
        if let sipUsername, sipUsername != user.sipUsername {
            let name = try Validate.sipUsername("sip_username", sipUsername)
            guard password != nil else { throw .invalid("password", "required when sip_username changes (the digest hashes cover the username)") }
            guard try count("SELECT count(*) FROM users WHERE sip_username = ?", [.text(name)]) == 0 else {
                throw .conflict("sip_username", "SIP username '\(name)' is taken")
            }
            user.sipUsername = name
        }
        if let password {
            user.credentials = credentials(username: user.sipUsername, password: try Validate.password("password", password))
        }
        user.updatedAt = now
        try sql("""
            UPDATE users SET display_name = ?, role = ?, status = ?, sip_username = ?, realm = ?, ha1_md5 = ?, ha1_sha256 = ?, updated_at = ?
            WHERE id = ?
            """, [.text(user.displayName), .text(user.role.rawValue), .text(user.status.rawValue), .text(user.sipUsername),
                  .optional(user.credentials?.realm), .optional(user.credentials?.ha1MD5), .optional(user.credentials?.ha1SHA256),
                  .text(now), .text(id)])
        touched.users.insert(id)
        return user
    }

    /// The primary user (or the operator) sets anyone's password in the account; a user sets their own.
    public func setPassword(_ id: String, password: String, acting: String?) throws(RegistryError) -> User {
        let user = try self.user(id, acting: nil)
        try requirePrimary(acting, account: user.accountID, "set other users' passwords", orSelf: id)
        let credentials = credentials(username: user.sipUsername, password: try Validate.password("password", password))
        let now = timestamp()
        try sql("UPDATE users SET realm = ?, ha1_md5 = ?, ha1_sha256 = ?, updated_at = ? WHERE id = ?",
                [.text(credentials.realm), .text(credentials.ha1MD5), .text(credentials.ha1SHA256), .text(now), .text(id)])
        touched.users.insert(id)
        var result = user
        result.credentials = credentials
        result.updatedAt = now
        return result
    }

    public func deleteUser(_ id: String, acting: String?) throws(RegistryError) {
        let user = try self.user(id, acting: nil)
        try requirePrimary(acting, account: user.accountID, "delete users")
        let owned = try rows("SELECT number FROM numbers WHERE owner_user_id = ? ORDER BY number LIMIT 5", [.text(id)], { $0.text(0) })
        guard owned.isEmpty else {
            throw .conflict("id", "user '\(id)' owns personal number(s) \(owned.joined(separator: ", ")); delete or reassign them first")
        }
        if user.role == .primary {
            let others = try count("SELECT count(*) FROM users WHERE account_id = ? AND id != ?", [.text(user.accountID), .text(id)])
            guard others == 0 else {
                throw .conflict("id", "user '\(id)' is the primary of account '\(user.accountID)', which has \(others) other user(s); make another user primary first")
            }
        }
        try sql("DELETE FROM grants WHERE user_id = ?", [.text(id)])
        try sql("DELETE FROM users WHERE id = ?", [.text(id)])
        touched.users.insert(id)
    }

    // MARK: Grants

    /// A grant names a fixed service or `app:ID` of an app activated on one of the account's numbers.
    func validServices(_ services: [String], account: String) throws(RegistryError) -> Set<String> {
        var result = Set<String>()
        for service in services {
            if Service.fixed.contains(service) { result.insert(service); continue }
            guard service.hasPrefix("app:") else {
                throw .invalid("services", "'\(service)' is not one of \(Service.fixed.joined(separator: ", ")) or app:ID")
            }
            let app = String(service.dropFirst(4))
            let active = try count("""
                SELECT count(*) FROM activations a JOIN numbers n ON n.number = a.number
                WHERE a.app_id = ? AND a.status = 'active' AND n.account_id = ?
                """, [.text(app), .text(account)])
            guard active > 0 else { throw .invalid("services", "app '\(app)' is not activated on any number of account '\(account)'") }
            result.insert(service)
        }
        return result
    }

    public func grant(_ id: String, services: [String], acting: String?) throws(RegistryError) -> User {
        let user = try self.user(id, acting: nil)
        try requirePrimary(acting, account: user.accountID, "grant services")
        guard !services.isEmpty else { throw .invalid("services", "name at least one service") }
        let now = timestamp()
        for service in try validServices(services, account: user.accountID).sorted() {
            try sql("INSERT OR IGNORE INTO grants (user_id, service, granted_at) VALUES (?, ?, ?)", [.text(id), .text(service), .text(now)])
        }
        touched.users.insert(id)
        return try self.user(id, acting: nil)
    }

    public func revoke(_ id: String, services: [String], acting: String?) throws(RegistryError) -> User {
        let user = try self.user(id, acting: nil)
        try requirePrimary(acting, account: user.accountID, "revoke services")
        guard !services.isEmpty else { throw .invalid("services", "name at least one service") }
        for service in services {
            guard user.grants.contains(service) else { throw .invalid("services", "user '\(id)' has no grant '\(service)'") }
            try sql("DELETE FROM grants WHERE user_id = ? AND service = ?", [.text(id), .text(service)])
        }
        touched.users.insert(id)
        return try self.user(id, acting: nil)
    }
}
