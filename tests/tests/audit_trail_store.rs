//! `DynamoSecurityLog` as the audit trail's read side, against the emulator: the log newest
//! first through by_target, by_actor and by_type (never a scan), pages that miss and repeat
//! nothing even inside one millisecond, and the erasure receipts through by_email_hash.

use aws_adapters::DynamoSecurityLog;
use domain::cursor::AuditCursor;
use domain::model::{EventType, RequestMeta, SecurityEvent};
use domain::ports::{AuditQuery, AuditTrail, SecurityLog};
use integration_tests::Harness;
use std::collections::BTreeSet;

fn log(h: &Harness) -> DynamoSecurityLog {
    DynamoSecurityLog::new(h.dynamo.clone(), h.table("SECURITY_LOGS_TABLE"))
}

fn event(id: &str, kind: EventType, actor: &str, target: &str, at: &str) -> SecurityEvent {
    let meta = RequestMeta {
        caller: Some(actor.into()),
        request_id: format!("req-{id}"),
        source_ip: Some("198.51.100.7".into()),
        user_agent: Some("tests".into()),
        token_issued_at: None,
    };
    SecurityEvent::new(id.into(), kind, target, &meta, at)
}

/// 24 rows over three actors, two targets and every type; six share one millisecond.
async fn logged(h: &Harness) -> Vec<SecurityEvent> {
    let store = log(h);
    let mut all = Vec::new();
    for i in 0..24 {
        let at = if (8..14).contains(&i) {
            "2026-11-20T10:00:00.000Z".to_owned()
        } else {
            format!("2026-11-{:02}T10:00:00.000Z", i + 1)
        };
        let kind = EventType::ALL[i % EventType::ALL.len()];
        let mut e = event(
            &format!("e-{i:02}#x"),
            kind,
            ["admin-1", "admin-2", "owner-1"][i % 3],
            ["user-1", "user-2"][i % 2],
            &at,
        );
        if kind == EventType::AdminDeletedUser {
            e = e
                .with("target_email_sha256", format!("hash-{}", i % 2))
                .with("job_id", format!("job-{i}"));
        }
        if kind == EventType::AdminDeletionCompleted {
            e = e.with("deleted", r#"{"transactions":3}"#);
        }
        store.append(&e).await.unwrap();
        all.push(e);
    }
    all
}

fn newest_first(mut rows: Vec<SecurityEvent>) -> Vec<SecurityEvent> {
    rows.sort_by(|a, b| (&b.created_at, &b.event_id).cmp(&(&a.created_at, &a.event_id)));
    rows
}

async fn read_all(store: &DynamoSecurityLog, mut query: AuditQuery) -> Vec<SecurityEvent> {
    let mut out = Vec::new();
    for _ in 0..100 {
        let page = store.list(&query).await.unwrap();
        assert!(page.items.len() <= query.limit);
        let last = page.items.last().cloned();
        out.extend(page.items);
        match (page.more, last) {
            (true, Some(last)) => {
                query.after = Some(AuditCursor::after(&last.created_at, &last.event_id).unwrap())
            }
            _ => return out,
        }
    }
    panic!("the pages never end");
}

#[tokio::test]
async fn every_filter_reads_its_rows_newest_first_in_pages_that_miss_and_repeat_nothing() {
    let h = Harness::new().await;
    let all = logged(&h).await;
    let store = log(&h);
    for (target, actor, kind) in [
        (None, None, None),
        (Some("user-1"), None, None),
        (None, Some("admin-2"), None),
        (None, None, Some(EventType::AdminActionDenied)),
        (Some("user-2"), Some("owner-1"), None),
        (Some("user-1"), None, Some(EventType::AdminDeletedUser)),
        (None, Some("admin-1"), Some(EventType::AdminSentUserMessage)),
    ] {
        let query = AuditQuery {
            target: target.map(str::to_owned),
            actor: actor.map(str::to_owned),
            event_type: kind,
            ..AuditQuery::default()
        };
        let expected = newest_first(all.iter().filter(|e| query.matches(e)).cloned().collect());
        assert!(
            !expected.is_empty(),
            "{query:?} matches nothing: the test proves nothing"
        );
        for limit in [1, 3, 100] {
            let rows = read_all(
                &store,
                AuditQuery {
                    limit,
                    ..query.clone()
                },
            )
            .await;
            assert_eq!(rows, expected, "{query:?}, {limit} a page");
        }
    }
}

#[tokio::test]
async fn a_refusal_row_comes_back_with_what_it_counts() {
    let h = Harness::new().await;
    let store = log(&h);
    let mut first = event(
        "refusals#u-9#2026-11-20T10:00:00.000Z",
        EventType::AdminActionDenied,
        "u-9",
        "*",
        "2026-11-20T10:00:00.000Z",
    )
    .with("action", "read_audit")
    .with("reason", "forbidden_role");
    first.expires_at = Some(1_800_000_000);
    for request in ["r-1", "r-2", "r-3"] {
        store.count_refusal(&first, request).await.unwrap();
    }
    let page = store
        .list(&AuditQuery {
            actor: Some("u-9".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    let row = &page.items[0];
    assert_eq!(row.fields["refusals"], "3");
    assert_eq!(row.fields["reason"], "forbidden_role");
    assert_eq!(row.expires_at, Some(1_800_000_000), "a refusal row expires");
    let keys: BTreeSet<&str> = row.fields.keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["action", "reason", "refusals"]));
}

#[tokio::test]
async fn erasure_receipts_are_found_by_the_address_hash_only() {
    let h = Harness::new().await;
    let all = logged(&h).await;
    let store = log(&h);
    // A lookup row with the same hash in another field is not a receipt.
    store
        .append(
            &event(
                "lookup-1",
                EventType::AdminLookedUpErasure,
                "owner-1",
                "*",
                "2026-11-30T10:00:00.000Z",
            )
            .with("email_sha256", "hash-0")
            .with("found", "2"),
        )
        .await
        .unwrap();
    for hash in ["hash-0", "hash-1"] {
        let expected = newest_first(
            all.iter()
                .filter(|e| e.fields.get("target_email_sha256").map(String::as_str) == Some(hash))
                .cloned()
                .collect(),
        );
        assert!(!expected.is_empty());
        assert_eq!(
            store.erasure_receipts(hash, 100).await.unwrap(),
            expected,
            "{hash}"
        );
        assert_eq!(
            store.erasure_receipts(hash, 1).await.unwrap(),
            expected[..1].to_vec()
        );
    }
    assert!(store.erasure_receipts("hash-none", 100).await.unwrap().is_empty());
}
