import Synchronization
import SIPTransport

/// Counters of what the gateway did with each message; every drop is counted somewhere here.
public final class GatewayStatistics: Sendable {
    public let requestsReceived = Counter()
    public let responsesReceived = Counter()
    /// Unparseable requests answered with 400.
    public let malformedAnswered = Counter()
    /// Unparseable messages with no readable Via (or unparseable responses): dropped.
    public let malformedDropped = Counter()
    public let oversizedAnswered = Counter()
    public let oversizedDropped = Counter()
    public let missingHeader = Counter()
    public let truncatedBody = Counter()
    public let unframeable = Counter()
    public let strayResponses = Counter()
    public let acksAbsorbed = Counter()
    public let optionsAnswered = Counter()
    public let tooManyHops = Counter()
    public let notFound = Counter()
    public let answered501 = Counter()
    public let noTransaction = Counter()
    public let retransmissionsAbsorbed = Counter()
    public let transactionsCreated = Counter()
    public let requestsForwarded = Counter()
    public let responsesForwarded = Counter()
    public let statelessForwards = Counter()
    public let forwardedByEditing = Counter()
    public let cancelsReceived = Counter()
    public let cancelsSent = Counter()
    public let transactionTimeouts = Counter()
    public let timerCFired = Counter()
    public let loopsDetected = Counter()
    public let badExtension = Counter()
    public let overloaded = Counter()
    public let responsesSent = Counter()
    public let sendErrors = Counter()
    // Registrar and authentication
    public let registersAccepted = Counter()
    public let registersRefused = Counter()
    public let challengesSent = Counter()
    public let staleNonces = Counter()
    public let replayedNonces = Counter()
    public let digestURIMismatch = Counter()
    public let floodBans = Counter()
    public let floodDropped = Counter()
    public let authFailures = Counter()
    public let authSucceeded = Counter()
    public let bannedRefused = Counter()
    public let bansStarted = Counter()
    public let trustedRequests = Counter()
    public let blockedUserAgents = Counter()
    public let callerIDRefused = Counter()
    public let suspendedRefused = Counter()
    public let forbiddenRefused = Counter()
    public let toRegisteredUser = Counter()
    public let unavailableUser = Counter()
    public let bindingsExpired = Counter()
    // Routing
    public let routeAccepted = Counter()
    public let routeVoicemail = Counter()
    public let routeRedirected = Counter()
    public let routeTransferred = Counter()
    public let routeRejected = Counter()
    public let routeChained = Counter()
    public let routeOutbound = Counter()
    public let chainReturns = Counter()
    public let chainForged = Counter()
    public let stagesStarted = Counter()
    public let stageTimeouts = Counter()
    public let dialplanReloads = Counter()
    public let dialplanReloadsRejected = Counter()
    public let callsOpened = Counter()
    public let callRecords = Counter()
    public let callsTimedOut = Counter()
    public let callLogFull = Counter()
    public let planRefused = Counter()
    public let planOverSoftLimit = Counter()
    // Presence
    public let presenceSubscribed = Counter()
    public let presenceRefreshed = Counter()
    public let presenceRefused = Counter()
    public let presenceNotifies = Counter()
    public let presenceNotifyFailures = Counter()
    public let mwiUnsolicited = Counter()

    public init() {}

    public func snapshot() -> [(String, Int)] {
        [
            ("requests_received", requestsReceived),
            ("registers_accepted", registersAccepted),
            ("registers_refused", registersRefused),
            ("auth_challenges", challengesSent),
            ("auth_stale_nonces", staleNonces),
            ("auth_replayed_nonces", replayedNonces),
            ("auth_uri_mismatch", digestURIMismatch),
            ("flood_bans", floodBans),
            ("flood_dropped", floodDropped),
            ("auth_failures", authFailures),
            ("auth_succeeded", authSucceeded),
            ("auth_banned_refused", bannedRefused),
            ("auth_bans_started", bansStarted),
            ("trusted_requests", trustedRequests),
            ("blocked_user_agents", blockedUserAgents),
            ("caller_id_refused", callerIDRefused),
            ("suspended_refused", suspendedRefused),
            ("forbidden_refused", forbiddenRefused),
            ("to_registered_user", toRegisteredUser),
            ("user_unavailable", unavailableUser),
            ("bindings_expired", bindingsExpired),
            ("route_accepted", routeAccepted),
            ("route_voicemail", routeVoicemail),
            ("route_redirected", routeRedirected),
            ("route_transferred", routeTransferred),
            ("route_rejected", routeRejected),
            ("route_chained", routeChained),
            ("route_outbound", routeOutbound),
            ("chain_returns", chainReturns),
            ("chain_forged", chainForged),
            ("stages_started", stagesStarted),
            ("stage_timeouts", stageTimeouts),
            ("dialplan_reloads", dialplanReloads),
            ("dialplan_reloads_rejected", dialplanReloadsRejected),
            ("calls_opened", callsOpened),
            ("call_records", callRecords),
            ("calls_timed_out", callsTimedOut),
            ("call_log_full", callLogFull),
            ("plan_refused", planRefused),
            ("plan_over_soft_limit", planOverSoftLimit),
            ("presence_subscribed", presenceSubscribed),
            ("presence_refreshed", presenceRefreshed),
            ("presence_refused", presenceRefused),
            ("presence_notifies", presenceNotifies),
            ("presence_notify_failures", presenceNotifyFailures),
            ("mwi_unsolicited", mwiUnsolicited),
            ("responses_received", responsesReceived),
            ("malformed_answered", malformedAnswered),
            ("malformed_dropped", malformedDropped),
            ("oversized_answered", oversizedAnswered),
            ("oversized_dropped", oversizedDropped),
            ("missing_header", missingHeader),
            ("truncated_body", truncatedBody),
            ("unframeable", unframeable),
            ("stray_responses", strayResponses),
            ("acks_absorbed", acksAbsorbed),
            ("options_answered", optionsAnswered),
            ("too_many_hops", tooManyHops),
            ("not_found", notFound),
            ("not_implemented", answered501),
            ("no_transaction", noTransaction),
            ("retransmissions_absorbed", retransmissionsAbsorbed),
            ("transactions_created", transactionsCreated),
            ("requests_forwarded", requestsForwarded),
            ("responses_forwarded", responsesForwarded),
            ("stateless_forwards", statelessForwards),
            ("forwarded_by_editing", forwardedByEditing),
            ("cancels_received", cancelsReceived),
            ("cancels_sent", cancelsSent),
            ("transaction_timeouts", transactionTimeouts),
            ("timer_c_fired", timerCFired),
            ("loops_detected", loopsDetected),
            ("bad_extension", badExtension),
            ("overloaded", overloaded),
            ("responses_sent", responsesSent),
            ("send_errors", sendErrors),
        ].map { ("gateway.\($0.0)", $0.1.value) }
    }
}
