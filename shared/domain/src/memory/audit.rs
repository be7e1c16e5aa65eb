//! The audit trail (both sides), the mailer and the suppression list, in memory.

use super::*;

#[async_trait]
impl SecurityLog for InMemoryBackend {
    async fn append(&self, event: &SecurityEvent) -> StoreResult<Appended> {
        self.call("security_logs", |st| {
            if st.security_logs.contains_key(&event.event_id) {
                return Appended::AlreadyRecorded;
            }
            st.security_logs.insert(event.event_id.clone(), event.clone());
            Appended::New
        })
        .await
    }

    async fn count_refusal(&self, first: &SecurityEvent, request_id: &str) -> StoreResult<u64> {
        self.call("security_logs", |st| {
            let counted = st.refusals.entry(first.event_id.clone()).or_default();
            counted.insert(request_id.to_owned());
            let n = counted.len() as u64;
            let row = st
                .security_logs
                .entry(first.event_id.clone())
                .or_insert_with(|| first.clone());
            if n > 1 {
                row.fields.insert("refusals".into(), n.to_string());
            }
            n
        })
        .await
    }
}

#[async_trait]
impl Mailer for InMemoryBackend {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, MailError> {
        let behaviour = lock(&self.mail).clone();
        self.state().mail_calls.push(email.message_id.clone());
        match behaviour {
            MailBehaviour::Accept | MailBehaviour::Unconfirmed => {}
            MailBehaviour::Reject => {
                return Err(MailError::Rejected {
                    code: "MessageRejected".into(),
                })
            }
            MailBehaviour::Throttle => {
                return Err(MailError::Throttled {
                    code: "TooManyRequestsException".into(),
                    retry_after: Some(Duration::from_secs(1)),
                })
            }
            MailBehaviour::NotSent => {
                return Err(MailError::NotSent {
                    code: "DispatchFailure".into(),
                    source: anyhow::anyhow!("injected: connection refused"),
                })
            }
            MailBehaviour::LostRequest => {
                return Err(MailError::Unconfirmed {
                    code: "Timeout".into(),
                    source: anyhow::anyhow!("injected: the request was lost"),
                })
            }
        }
        let provider_id = format!("mem-{}", uuid::Uuid::new_v4());
        self.state().sent_mail.push(SentMail {
            provider_id: provider_id.clone(),
            message_id: email.message_id.clone(),
            to: email.to.as_str().to_owned(),
            from: email.from.clone(),
            reply_to: email.reply_to.clone(),
            subject: email.subject.as_str().to_owned(),
            body: email.body.as_str().to_owned(),
        });
        let hook = lock(&self.mail_hook).clone();
        if let Some(hook) = hook {
            hook(email);
        }
        if behaviour == MailBehaviour::Unconfirmed {
            return Err(MailError::Unconfirmed {
                code: "Timeout".into(),
                source: anyhow::anyhow!("injected: the answer was lost"),
            });
        }
        Ok(provider_id)
    }
}

/// Newest first: `created_at`, then `event_id`, descending.
fn newest_first(a: &SecurityEvent, b: &SecurityEvent) -> std::cmp::Ordering {
    (&b.created_at, &b.event_id).cmp(&(&a.created_at, &a.event_id))
}

#[async_trait]
impl AuditTrail for InMemoryBackend {
    async fn list(&self, query: &AuditQuery) -> StoreResult<AuditPage> {
        self.call("security_logs", |st| {
            let mut rows: Vec<SecurityEvent> = st
                .security_logs
                .values()
                .filter(|e| query.matches(e))
                .filter(|e| {
                    query
                        .after
                        .as_ref()
                        .is_none_or(|c| c.is_before(&e.created_at, &e.event_id))
                })
                .cloned()
                .collect();
            rows.sort_by(newest_first);
            let more = rows.len() > query.limit;
            rows.truncate(query.limit);
            AuditPage { items: rows, more }
        })
        .await
    }

    async fn erasure_receipts(&self, email_sha256: &str, limit: usize) -> StoreResult<Vec<SecurityEvent>> {
        self.call("security_logs", |st| {
            let mut rows: Vec<SecurityEvent> = st
                .security_logs
                .values()
                .filter(|e| {
                    e.event_type == EventType::AdminDeletedUser
                        && e.fields.get("target_email_sha256").map(String::as_str) == Some(email_sha256)
                })
                .cloned()
                .collect();
            rows.sort_by(newest_first);
            rows.truncate(limit);
            rows
        })
        .await
    }
}

#[async_trait]
impl SuppressionList for InMemoryBackend {
    async fn check(&self, to: &EmailAddress) -> StoreResult<Option<Suppression>> {
        if self.suppression_list_down.load(Ordering::SeqCst) {
            return Err(DependencyError::new(
                "ses",
                true,
                anyhow::anyhow!("the suppression list is down (injected)"),
            ));
        }
        Ok(self.state().suppressed.get(to.normalized()).cloned())
    }
}
