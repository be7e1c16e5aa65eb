//! The message outbox, idempotency keys and the delivery log, in memory.

use super::*;

#[async_trait]
impl MessageOutbox for InMemoryBackend {
    async fn reserve(&self, message: &AdminMessage, lease_until: DateTime<Utc>) -> StoreResult<Reserved> {
        self.call("admin_messages", |st| {
            if let Some(existing) = st.messages.get(&message.message_id) {
                // A pending row SES was never called for may be reserved again (a retry).
                if !(existing.status == MessageStatus::Pending && existing.attempt.is_none()) {
                    return Reserved::Exists(existing.clone());
                }
            }
            let ok = st
                .profiles
                .get(&message.recipient_id)
                .is_some_and(|p| p.email.is_some() && !p.is_deleted());
            if !ok {
                return Reserved::RecipientGone;
            }
            let lease = st
                .send_leases
                .entry(message.recipient_id.clone())
                .or_insert_with(|| (BTreeSet::new(), lease_until));
            lease.0.insert(message.message_id.clone());
            lease.1 = lease_until;
            if !st.messages.contains_key(&message.message_id) {
                st.messages.insert(message.message_id.clone(), message.clone());
            }
            Reserved::Reserved
        })
        .await
    }

    async fn begin_attempt(
        &self, message_id: &str, attempt: &str, event: &SecurityEvent,
    ) -> StoreResult<Attempt> {
        self.call("admin_messages", |st| {
            let Some(mut m) = st.messages.get_mut(message_id) else {
                return Attempt::NotPending;
            };
            if m.status != MessageStatus::Pending {
                return Attempt::NotPending;
            }
            match m.attempt.as_deref() {
                Some(a) if a != attempt => return Attempt::Taken,
                _ => m.attempt = Some(attempt.to_owned()),
            }
            st.security_logs
                .entry(event.event_id.clone())
                .or_insert_with(|| event.clone());
            Attempt::Began
        })
        .await
    }

    async fn mark_sent(&self, message_id: &str, ses_message_id: &str, at: &str) -> StoreResult<()> {
        self.call("admin_messages", |st| {
            if let Some(mut m) = st.messages.get_mut(message_id) {
                if matches!(m.status, MessageStatus::Pending | MessageStatus::Unconfirmed) {
                    m.status = MessageStatus::Sent;
                    m.updated_at = Some(at.to_owned());
                }
                m.ses_message_id.get_or_insert_with(|| ses_message_id.to_owned());
                m.sent_at.get_or_insert_with(|| at.to_owned());
            }
        })
        .await
    }

    async fn mark_failed(&self, message_id: &str, error_code: &str, at: &str) -> StoreResult<()> {
        self.call("admin_messages", |st| {
            if let Some(mut m) = st.messages.get_mut(message_id) {
                if m.status == MessageStatus::Pending {
                    m.status = MessageStatus::Failed;
                    m.error_code = Some(error_code.to_owned());
                    m.updated_at = Some(at.to_owned());
                }
            }
        })
        .await
    }

    async fn release(&self, recipient_id: &str, message_id: &str) -> StoreResult<()> {
        self.call("profiles", |st| {
            if let Some((ids, _)) = st.send_leases.get_mut(recipient_id) {
                ids.remove(message_id);
            }
        })
        .await
    }

    async fn get(&self, message_id: &str) -> StoreResult<Option<AdminMessage>> {
        self.call("admin_messages", |st| st.messages.get(message_id).cloned())
            .await
    }

    async fn history(
        &self, recipient_id: &str, limit: usize, cursor: Option<&MessageCursor>,
    ) -> StoreResult<Page<AdminMessage>> {
        self.call("admin_messages", |st| {
            // Newest first: a page continues with what sorts strictly after the cursor's message.
            let after = cursor.map(|c| (c.created_at(), c.message_id()));
            let mut rows = st.messages.of_recipient(recipient_id, after);
            let items: Vec<AdminMessage> = rows.by_ref().take(limit).cloned().collect();
            let next = if rows.next().is_some() {
                let last = items
                    .last()
                    .map(|m| MessageCursor::after(&m.created_at, &m.message_id));
                next_cursor("admin_messages", last)?
            } else {
                None
            };
            Ok(Page { items, next })
        })
        .await?
    }

    async fn stale_pending(&self, before: DateTime<Utc>, limit: usize) -> StoreResult<Vec<String>> {
        self.call("admin_messages", |st| {
            let mut rows: Vec<&AdminMessage> = st
                .messages
                .values()
                .filter(|m| m.status == MessageStatus::Pending)
                .filter(|m| parse_timestamp(&m.created_at).is_some_and(|t| t < before))
                .collect();
            rows.sort_by(|a, b| a.created_at.cmp(&b.created_at));
            rows.into_iter()
                .take(limit)
                .map(|m| m.message_id.clone())
                .collect()
        })
        .await
    }

    async fn settle_stale(&self, message_id: &str, at: &str) -> StoreResult<Option<MessageStatus>> {
        self.call("admin_messages", |st| match st.messages.get_mut(message_id) {
            Some(mut m) if m.status == MessageStatus::Pending => {
                if m.attempt.is_some() {
                    m.status = MessageStatus::Unconfirmed;
                } else {
                    m.status = MessageStatus::Failed;
                    m.error_code = Some(NOT_SENT.to_owned());
                }
                m.updated_at = Some(at.to_owned());
                Some(m.status)
            }
            _ => None,
        })
        .await
    }
}

#[async_trait]
impl Idempotency for InMemoryBackend {
    async fn claim(&self, claim: &ClaimRequest<'_>) -> StoreResult<Claim> {
        self.call("idempotency", |st| {
            let id = format!("{}#{}", claim.scope, claim.key);
            let mut message_id = claim.message_id.to_owned();
            if let Some(stored) = st.idempotency.get(&id).filter(|s| s.expires_at > claim.now) {
                if stored.owner == claim.owner {
                    // Our own claim, applied by an attempt whose answer was lost.
                    if let IdempotencyRecord::InFlight { message_id, .. } = &stored.record {
                        return Claim::Claimed {
                            message_id: message_id.clone(),
                        };
                    }
                }
                match &stored.record {
                    IdempotencyRecord::InFlight {
                        lease_until,
                        message_id: earlier,
                        fingerprint,
                    } if *lease_until <= claim.now && fingerprint == claim.fingerprint => {
                        message_id = earlier.clone();
                    }
                    other => return Claim::Taken(other.clone()),
                }
            }
            st.idempotency.insert(
                id,
                StoredKey {
                    record: IdempotencyRecord::InFlight {
                        fingerprint: claim.fingerprint.to_owned(),
                        message_id: message_id.clone(),
                        lease_until: claim.lease_until,
                    },
                    expires_at: claim.expires_at,
                    owner: claim.owner.to_owned(),
                },
            );
            Claim::Claimed { message_id }
        })
        .await
    }

    async fn complete(
        &self, scope: &str, key: &str, owner: &str, status: u16, response: &str,
    ) -> StoreResult<()> {
        self.call("idempotency", |st| {
            if let Some(stored) = st.idempotency.get_mut(&format!("{scope}#{key}")) {
                if stored.owner != owner {
                    return;
                }
                if let IdempotencyRecord::InFlight { fingerprint, .. } = &stored.record {
                    stored.record = IdempotencyRecord::Done {
                        fingerprint: fingerprint.clone(),
                        status,
                        response: response.to_owned(),
                    };
                }
            }
        })
        .await
    }

    async fn release(&self, scope: &str, key: &str, owner: &str) -> StoreResult<()> {
        self.call("idempotency", |st| {
            let id = format!("{scope}#{key}");
            if st
                .idempotency
                .get(&id)
                .is_some_and(|s| s.owner == owner && matches!(s.record, IdempotencyRecord::InFlight { .. }))
            {
                st.idempotency.remove(&id);
            }
        })
        .await
    }

    async fn get(
        &self, scope: &str, key: &str, now: DateTime<Utc>,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        self.call("idempotency", |st| {
            st.idempotency
                .get(&format!("{scope}#{key}"))
                .filter(|s| s.expires_at > now)
                .map(|s| s.record.clone())
        })
        .await
    }
}

#[async_trait]
impl DeliveryLog for InMemoryBackend {
    async fn record_delivery(&self, record: &DeliveryRecord) -> StoreResult<Recorded> {
        self.call("admin_messages", |st| {
            let id = match &record.message_id {
                Some(id) => Some(id.clone()),
                None => st
                    .messages
                    .values()
                    .find(|m| m.ses_message_id.as_deref() == Some(record.ses_message_id.as_str()))
                    .map(|m| m.message_id.clone()),
            };
            let Some(mut m) = id.and_then(|id| st.messages.get_mut(&id)) else {
                return Recorded::UnknownMessage;
            };
            if m.ses_message_id
                .as_deref()
                .is_some_and(|s| s != record.ses_message_id)
            {
                return Recorded::Unchanged;
            }
            if !record.update.applies_to(m.status) {
                return Recorded::Unchanged;
            }
            m.status = record.update.status();
            m.updated_at = Some(record.at.clone());
            m.ses_message_id
                .get_or_insert_with(|| record.ses_message_id.clone());
            if record.update == DeliveryUpdate::Sent {
                m.sent_at.get_or_insert_with(|| record.at.clone());
            }
            Recorded::Updated
        })
        .await
    }
}
