#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Admin
import Events
import Foundation
import Gateway
import Node
import Registry
import Routing
import SIPTransaction
import SIPTransport

/// `tandem`: the gateway process. Reads its configuration, opens the store, binds every listen
/// point, and serves until SIGTERM/SIGINT; SIGHUP re-reads the configuration.
struct CommandLine {
    var configPath = "Config/tandem.conf"
    var overrides: [String] = []
    var checkOnly = false

    static let usage = """
    usage: tandem [--config PATH] [--set section.key=value …] [--check-config] [--version] [--help]

      --config PATH        configuration file (default: Config/tandem.conf)
      --set KEY=VALUE      override one key, e.g. --set sip.listen=udp:0.0.0.0:5060 (repeatable)
      --check-config       validate the configuration and exit (0 when valid)
      --version            print the version and exit
      --help               print this help and exit

    Signals: SIGTERM/SIGINT stop cleanly; SIGHUP reloads the configuration; SIGUSR1 logs all counters.
    Keys are documented in docs/configuration.md.
    """

    static func parse(_ arguments: [String]) -> CommandLine {
        var result = CommandLine()
        var index = 0
        func value(_ option: String) -> String {
            index += 1
            guard index < arguments.count else { fail("\(option) needs a value") }
            return arguments[index]
        }
        while index < arguments.count {
            let argument = arguments[index]
            switch argument {
            case "--config", "-c": result.configPath = value(argument)
            case "--set", "-s": result.overrides.append(value(argument))
            case "--check-config": result.checkOnly = true
            case "--admin-api":
                print(AdminAPIDocument.methodsSection())
                exit(0)
            case "--version", "-V":
                print("tandem \(TandemVersion.current)")
                exit(0)
            case "--help", "-h":
                print(usage)
                exit(0)
            default:
                if argument.hasPrefix("--config=") { result.configPath = String(argument.dropFirst(9)) }
                else if argument.hasPrefix("--set=") { result.overrides.append(String(argument.dropFirst(6))) }
                else { fail("unknown option '\(argument)'\n\n\(usage)") }
            }
            index += 1
        }
        return result
    }
}

func fail(_ message: String) -> Never {
    StandardErrorSink().write("tandem: \(message)")
    exit(2)
}

/// Everything runs outside the main actor: listeners, workers and signal handlers are plain threads
/// and dispatch queues.
enum Server {
    nonisolated static func run() -> Never {
        Allocator.tune()
        let options = CommandLine.parse(Array(Swift.CommandLine.arguments.dropFirst()))
        let configuration: Configuration
        do {
            configuration = try Configuration.load(file: options.configPath, overrides: options.overrides)
        } catch {
            StandardErrorSink().write("tandem: configuration error: \(error)")
            exit(1)
        }
        if options.checkOnly {
            print("tandem: configuration \(options.configPath) is valid")
            exit(0)
        }

        let threshold = Logger.Threshold(configuration.logLevel)
        let logger = Logger(label: "tandem", threshold: threshold)

        // The store: create its folder, open (WAL) and migrate before anything listens.
        let storageFolder = (configuration.storagePath as NSString).deletingLastPathComponent
        if !storageFolder.isEmpty {
            try? FileManager.default.createDirectory(atPath: storageFolder, withIntermediateDirectories: true)
        }
        let registry: Registry
        do {
            let database = try Database(path: configuration.storagePath)
            logger.info("store opened", [("path", configuration.storagePath), ("schema", String(database.schemaVersion))])
            registry = try Registry(database: database, realm: configuration.effectiveRealm, clock: Registry.systemClock)
            logger.info("registry loaded", registry.snapshot.counts.map { ($0.0, String($0.1)) })
        } catch let error as StoreError {
            logger.error("cannot open the store", [("path", configuration.storagePath), ("reason", error.reason)])
            exit(1)
        } catch {
            logger.error("cannot load the registry", [("path", configuration.storagePath), ("reason", "\(error)")])
            exit(1)
        }

        let cores = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        let openFiles = OpenFiles.fit(tcpMaxConnections: configuration.tcpMaxConnections,
                                      adminMaxConnections: configuration.adminMaxConnections)
        if openFiles.tcpMaxConnections < configuration.tcpMaxConnections {
            logger.warning("the open-files limit is below what sip.tcp_max_connections needs; fewer connections are accepted",
                           [("open_files", String(openFiles.limit)), ("sip.tcp_max_connections", String(configuration.tcpMaxConnections)),
                            ("accepted_at_most", String(openFiles.tcpMaxConnections))])
        } else if openFiles.raised {
            logger.info("open-files limit raised", [("open_files", String(openFiles.limit))])
        }
        let transport: SocketTransport
        do {
            transport = try SocketTransport(options: .init(
                listen: configuration.listen,
                udpWorkers: configuration.udpWorkers == 0 ? cores : configuration.udpWorkers,
                udpReceiveBuffer: configuration.udpReceiveBuffer,
                maxMessageSize: configuration.maxMessageSize,
                tcpIdleTimeout: configuration.tcpIdleTimeout,
                tcpMaxConnections: openFiles.tcpMaxConnections,
                tcpMaxConnectionsPerSource: configuration.tcpMaxConnectionsPerSource,
                tcpMessageTimeout: configuration.tcpMessageTimeout))
        } catch {
            logger.error("cannot listen", [("reason", error.reason)])
            exit(1)
        }

        let socketFolder = (configuration.adminSocket as NSString).deletingLastPathComponent
        if !socketFolder.isEmpty {
            try? FileManager.default.createDirectory(atPath: socketFolder, withIntermediateDirectories: true)
        }

        let timers = TimerThread()
        // Dialplans: a file with an error stops the start, naming file and line (a reload keeps the old ones).
        var plans = DialplanSet()
        if let folder = configuration.dialplanDirectory {
            switch DialplanLibrary.read(directory: folder) {
            case .success(let loaded):
                plans = loaded
                logger.info("dialplans loaded", [("folder", folder), ("dialplans", loaded.names.joined(separator: ",")),
                                                 ("rules", String(loaded.ruleCount))])
            case .failure(let problems):
                for problem in problems.errors { logger.error("dialplan error", [("at", problem.description)]) }
                transport.stop()
                exit(1)
            }
        }
        var nodeOptions = Node.Options()
        var eventOptions = EventDispatcher.Options()
        eventOptions.subscriberQueue = configuration.eventSubscriberQueue
        eventOptions.webhookTimeout = configuration.webhookTimeout
        eventOptions.retry = RetrySchedule(initial: Int64(configuration.webhookBackoff), maximum: Int64(configuration.webhookMaxBackoff),
                                           attempts: configuration.webhookAttempts)
        eventOptions.userAgent = "Tandem/\(TandemVersion.current)"
        nodeOptions.events = eventOptions
        var listening = configuration
        listening.listen = transport.listenPoints
        let node: Node
        do {
            let (assembled, interrupted) = try Node.assemble(configuration: listening, registry: registry, transport: transport,
                                                             transportStatistics: transport.statistics, timers: timers, logger: logger,
                                                             clock: Registry.systemClock, dialplans: plans, options: nodeOptions)
            node = assembled
            // Calls a previous run left in progress were closed as interrupted before any new call.
            if !interrupted.isEmpty {
                logger.notice("calls in progress at the last stop closed as interrupted", [("count", String(interrupted.count))])
            }
        } catch {
            logger.error(error.stage.rawValue, [("path", configuration.storagePath), ("reason", error.reason)])
            transport.stop()
            exit(1)
        }
        let gateway = node.gateway
        logger.info("registrations loaded", [("bindings", String(node.location.count)), ("addresses", String(node.location.aorCount))])
        transport.onConnectFailure { address in gateway.connectionFailed(to: address) }
        node.start()
        let storageLogger = logger.labeled("storage")
        registry.storageHealth.observe { change in
            guard case .recovered(let outage, let at) = change else { return }
            storageLogger.warning("the registry file takes writes again; what was held is written",
                                  [("writer", outage.writer), ("outage_ms", String(at - outage.since)), ("failed_attempts", String(outage.failures))])
        }

        var adminOptions = AdminServer.Options(socketPath: configuration.adminSocket, tcpListen: configuration.adminListen,
                                               token: configuration.adminToken)
        adminOptions.maxConnections = configuration.adminMaxConnections
        adminOptions.maxRequest = configuration.adminMaxRequest
        adminOptions.idleTimeout = configuration.adminIdleTimeout
        adminOptions.requestTimeout = configuration.adminRequestTimeout
        let admin: AdminServer
        do {
            admin = try AdminServer(dispatcher: node.dispatcher, options: adminOptions)
        } catch {
            logger.error("cannot open the admin socket", [("reason", error.reason)])
            transport.stop()
            exit(1)
        }
        admin.start()
        logger.info("admin socket", [("path", configuration.adminSocket)] + (admin.tcpPort.map { [("tcp_port", String($0))] } ?? []))
        transport.start { message in node.receive(message) }
        for point in transport.listenPoints {
            logger.info("listening", [("on", point.description)])
        }
        logger.info("tandem started", [("version", TandemVersion.current), ("config", options.configPath),
                                       ("udp_workers", String(configuration.udpWorkers == 0 ? cores : configuration.udpWorkers)),
                                       ("allocator", Allocator.description)])

        // Signals are handled on a dispatch queue, never inside a signal handler.
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        signal(SIGHUP, SIG_IGN)
        signal(SIGPIPE, SIG_IGN)
        let signalQueue = DispatchQueue(label: "tandem.signals")

        func shutdown(_ name: String) {
            logger.info("stopping", [("signal", name)])
            admin.stop()
            timers.stop()
            transport.stop()
            // Registrations answered are written, calls still in progress end as interrupted, undelivered
            // webhook events stay owed in the store for the next start.
            let closed = node.stop()
            if !closed.isEmpty {
                logger.notice("calls in progress closed as interrupted", [("count", String(closed.count))])
            }
            let counters = node.statistics()
            logger.info("counters", counters.filter { $0.1 > 0 }.map { ($0.0, String($0.1)) })
            logger.info("tandem stopped")
            exit(0)
        }

        let termSource = DispatchSource.makeSignalSource(signal: SIGTERM, queue: signalQueue)
        termSource.setEventHandler { shutdown("SIGTERM") }
        termSource.resume()
        let intSource = DispatchSource.makeSignalSource(signal: SIGINT, queue: signalQueue)
        intSource.setEventHandler { shutdown("SIGINT") }
        intSource.resume()
        let hupSource = DispatchSource.makeSignalSource(signal: SIGHUP, queue: signalQueue)
        hupSource.setEventHandler {
            do {
                let fresh = try Configuration.load(file: options.configPath, overrides: options.overrides)
                threshold.set(fresh.logLevel)
                var next = Gateway.Settings(fresh)
                next.listen = transport.listenPoints
                gateway.update(next)
                gateway.reloadDialplans()
                var restartNeeded: [String] = []
                if fresh.listen != configuration.listen { restartNeeded.append("sip.listen") }
                if fresh.storagePath != configuration.storagePath { restartNeeded.append("storage.path") }
                if fresh.registrarPersistence != configuration.registrarPersistence { restartNeeded.append("registrar.persistence") }
                if fresh.effectiveRealm != configuration.effectiveRealm { restartNeeded.append("auth.realm") }
                if fresh.authSecret != configuration.authSecret { restartNeeded.append("auth.secret") }
                if fresh.adminSocket != configuration.adminSocket || fresh.adminListen != configuration.adminListen
                    || fresh.adminToken != configuration.adminToken || fresh.adminMaxConnections != configuration.adminMaxConnections
                    || fresh.adminMaxRequest != configuration.adminMaxRequest || fresh.adminIdleTimeout != configuration.adminIdleTimeout
                    || fresh.adminRequestTimeout != configuration.adminRequestTimeout {
                    restartNeeded.append("admin.*")
                }
                if fresh.udpWorkers != configuration.udpWorkers { restartNeeded.append("sip.udp_workers") }
                if fresh.tcpMaxConnections != configuration.tcpMaxConnections { restartNeeded.append("sip.tcp_max_connections") }
                if fresh.tcpIdleTimeout != configuration.tcpIdleTimeout { restartNeeded.append("sip.tcp_idle_timeout") }
                if fresh.tcpMaxConnectionsPerSource != configuration.tcpMaxConnectionsPerSource {
                    restartNeeded.append("sip.tcp_max_connections_per_source")
                }
                if fresh.tcpMessageTimeout != configuration.tcpMessageTimeout { restartNeeded.append("sip.tcp_message_timeout") }
                logger.info("configuration reloaded", [("config", options.configPath)])
                if !restartNeeded.isEmpty {
                    logger.warning("changed keys take effect after a restart", [("keys", restartNeeded.joined(separator: ","))])
                }
            } catch {
                logger.error("reload refused; the running configuration stays in force", [("error", "\(error)")])
            }
        }
        hupSource.resume()
        // SIGUSR1 writes every counter to the log (the same counters as `stats.get`).
        signal(SIGUSR1, SIG_IGN)
        let usr1Source = DispatchSource.makeSignalSource(signal: SIGUSR1, queue: signalQueue)
        usr1Source.setEventHandler {
            let counters = node.statistics()
            logger.info("counters", counters.map { ($0.0, String($0.1)) })
        }
        usr1Source.resume()
        dispatchMain()
    }
}

Server.run()
