import JSON
import Registry

// How registry records appear in results. Credentials never leave the registry: a user shows only
// whether a password is set.

extension Account {
    var json: JSONValue {
        ["id": .string(id), "name": .string(name), "status": .string(status.rawValue), "time_zone": .string(timeZone),
         "plan": JSONValue(plan), "created_at": .string(createdAt), "updated_at": .string(updatedAt)]
    }
}

extension User {
    var json: JSONValue {
        ["id": .string(id), "account": .string(accountID), "display_name": .string(displayName), "role": .string(role.rawValue),
         "sip_username": .string(sipUsername), "status": .string(status.rawValue), "has_password": .bool(credentials != nil),
         "grants": JSONValue(grants.sorted()), "created_at": .string(createdAt), "updated_at": .string(updatedAt)]
    }
}

extension TelephoneNumber {
    var json: JSONValue {
        ["number": .string(number), "account": .string(accountID), "kind": .string(kind.rawValue), "owner": JSONValue(ownerUserID),
         "provider": JSONValue(providerID), "ring_timeout": JSONValue(delivery.ringTimeout), "fork": .string(delivery.fork.rawValue),
         "transfer": .string(delivery.transfer.rawValue), "created_at": .string(createdAt), "updated_at": .string(updatedAt)]
    }
}

extension Provider {
    var json: JSONValue {
        ["id": .string(id), "name": .string(name), "kind": .string(kind.rawValue), "hops": JSONValue(hops),
         "trusted_sources": JSONValue(trustedSources), "id_scheme": .string(idScheme.text), "domain": JSONValue(domain),
         "webhook_url": JSONValue(webhookURL), "webhook_secret": JSONValue(webhookSecret), "currency": .string(currency), "rate_per_minute": JSONValue(ratePerMinute),
         "monthly_fee": JSONValue(monthlyFee), "created_at": .string(createdAt), "updated_at": .string(updatedAt)]
    }
}

extension App {
    var json: JSONValue {
        ["id": .string(id), "provider": .string(providerID), "name": .string(name), "kind": .string(kind),
         "position": JSONValue(position), "on_failure": .string(onFailure.rawValue), "hop": JSONValue(hop),
         "created_at": .string(createdAt), "updated_at": .string(updatedAt)]
    }
}

extension Activation {
    var json: JSONValue {
        ["number": .string(number), "app": .string(appID), "provider": .string(providerID), "status": .string(status.rawValue),
         "subscriber_id": .string(subscriberID), "routing": .string(routing), "activated_at": .string(activatedAt),
         "deactivated_at": JSONValue(deactivatedAt)]
    }
}

extension Page {
    func json(limit: Int, offset: Int, _ item: (Item) -> JSONValue) -> JSONValue {
        ["items": .array(items.map(item)), "total": JSONValue(total), "limit": JSONValue(limit), "offset": JSONValue(offset)]
    }
}

extension ImportReport {
    var json: JSONValue {
        ["rows": JSONValue(progress.rows), "imported": JSONValue(progress.imported), "skipped": JSONValue(progress.skipped),
         "failed": JSONValue(progress.failed), "chunks": JSONValue(progress.chunks),
         "errors": .array(errors.map { ["line": JSONValue($0.line), "field": JSONValue($0.field), "reason": .string($0.reason)] })]
    }
}
