// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Tandem",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tandem", targets: ["tandem"]),
        .executable(name: "tandem-replay", targets: ["tandem-replay"]),
        .executable(name: "tandemctl", targets: ["tandemctl"]),
    ],
    targets: [
        // One door per C library (STYLE.md §3): only SIP imports COsip, only Registry imports CSQLite.
        .systemLibrary(name: "COsip", pkgConfig: "libosip2", providers: [.apt(["libosip2-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),

        .target(name: "SIP", dependencies: ["COsip"]),
        .systemLibrary(name: "CLinux"),
        .target(name: "SIPTransport", dependencies: ["SIP", "CLinux"]),
        .target(name: "SIPTransaction", dependencies: ["CLinux"]),
        .target(name: "Crypto", dependencies: ["COpenSSL"]),
        .target(name: "JSON"),
        // The registry's values — records, the snapshot, call records, bindings — with no C library
        // under them: what Routing and Billing decide on. The SQLite store (`Registry`) sits beside it.
        .target(name: "RegistryModel", dependencies: ["JSON"]),
        .target(name: "Registry", dependencies: ["RegistryModel", "CSQLite", "Crypto", "JSON", "SIP"]),
        .target(name: "Registrar", dependencies: ["Registry", "Crypto", "SIP"]),
        .target(name: "Routing", dependencies: ["RegistryModel"]),
        .target(name: "Billing", dependencies: ["RegistryModel"]),
        // Pure: presence subscriptions and what each owes its watcher, PIDF documents.
        .target(name: "Presence", dependencies: ["Routing"]),
        .target(name: "Events", dependencies: ["Registry", "JSON", "Crypto"]),
        .target(name: "Admin", dependencies: ["Registry", "Registrar", "Routing", "Billing", "Events", "SIP", "JSON", "Crypto", "CLinux"]),
        .target(name: "Gateway", dependencies: ["SIP", "SIPTransport", "SIPTransaction", "Registry", "Registrar", "Routing", "Billing", "Presence", "JSON", "Crypto"]),
        .target(name: "Node", dependencies: ["Gateway", "Admin", "Events", "Registry", "Routing", "SIPTransport", "SIPTransaction"]),
        .target(name: "GatewayTesting", dependencies: ["Node", "Gateway", "SIP", "SIPTransport", "SIPTransaction", "Admin", "Registry",
                                                       "Registrar", "Routing", "Crypto", "JSON"]),

        .executableTarget(name: "tandem", dependencies: ["Node", "Gateway", "SIPTransport", "SIPTransaction", "Registry", "Registrar", "Routing", "Admin", "Events", "CLinux"]),
        .executableTarget(name: "tandemctl", dependencies: ["Admin", "JSON"]),
        .executableTarget(name: "tandem-replay", dependencies: ["GatewayTesting", "SIPTransport", "Admin", "JSON"]),
        .executableTarget(name: "tandem-bench", dependencies: ["Node", "SIP", "Gateway", "SIPTransport", "SIPTransaction", "Registry", "Registrar", "Routing", "Admin", "JSON", "Crypto"]),

        .testTarget(name: "SIPTests", dependencies: ["SIP"]),
        .testTarget(name: "SIPTransportTests", dependencies: ["SIPTransport", "SIP"]),
        .testTarget(name: "SIPTransactionTests", dependencies: ["SIPTransaction"]),
        .testTarget(name: "RegistryTests", dependencies: ["Registry", "Crypto"]),
        .testTarget(name: "AdminTests", dependencies: ["Admin", "Registry", "Registrar", "Events", "JSON", "CLinux"]),
        .testTarget(name: "JSONTests", dependencies: ["JSON"]),
        .testTarget(name: "CryptoTests", dependencies: ["Crypto"]),
        .testTarget(name: "RoutingTests", dependencies: ["Routing", "Registry"]),
        .testTarget(name: "BillingTests", dependencies: ["Billing", "Registry"]),
        .testTarget(name: "PresenceTests", dependencies: ["Presence", "Routing", "RegistryModel"]),
        .testTarget(name: "EventsTests", dependencies: ["Events", "Registry", "JSON", "Crypto"]),
        .testTarget(name: "RegistrarTests", dependencies: ["Registrar", "Registry", "SIP", "Crypto"]),
        .testTarget(name: "GatewayTests", dependencies: ["Gateway", "GatewayTesting", "SIP", "SIPTransport"],
                    resources: [.copy("../Traces")]),
    ],
    swiftLanguageModes: [.v6]
)

// The libFuzzer targets (tools/fuzz/run): only when asked for, since the binary has no `main` of its
// own — libFuzzer's, linked by -sanitize=fuzzer, is its entry point.
if Context.environment["TANDEM_FUZZ"] == "1" {
    package.targets.append(.executableTarget(name: "tandem-fuzz", dependencies: ["Admin", "Gateway", "GatewayTesting", "JSON", "Registrar",
                                                                              "Registry", "Routing", "SIP", "SIPTransport"],
                                             path: "tools/fuzz/targets"))
}
