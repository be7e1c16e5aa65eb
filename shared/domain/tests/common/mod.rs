//! Shared fixtures for the use-case tests.
#![allow(dead_code)]

use domain::cascade::{CascadeTable, CASCADE_PLAN};
use domain::deletion::{Deletion, DeletionSettings};
use domain::memory::InMemoryBackend;
use domain::model::{AdminMessage, MessageStatus, Profile, RequestMeta};
use domain::ports::ManualClock;
use std::collections::BTreeMap;
use std::sync::Arc;

pub fn profile(id: &str, role: &str, email: Option<&str>) -> Profile {
    Profile {
        user_id: id.into(),
        email: email.map(Into::into),
        display_name: format!("Name of {id}"),
        role: role.into(),
        created_at: "2026-01-01T00:00:00.000Z".into(),
        deleted_at: None,
        auth_username: None,
        deletion_job_id: None,
    }
}

pub fn meta(caller: &str) -> RequestMeta {
    RequestMeta {
        caller: Some(caller.into()),
        request_id: format!("req-{}", uuid::Uuid::new_v4()),
        source_ip: Some("198.51.100.7".into()),
        user_agent: Some("tests".into()),
    }
}

/// A backend with an owner, two admins and users; `target` has `per_table` items in every
/// table of the cascade plan, and an item of another user in each table that must survive.
pub fn seeded(per_table: usize) -> Arc<InMemoryBackend> {
    let b = InMemoryBackend::new();
    b.put_profile(profile("owner-1", "owner", Some("owner@example.com")));
    b.put_profile(profile("admin-1", "admin", Some("admin1@example.com")));
    b.put_profile(profile("admin-2", "admin", Some("admin2@example.com")));
    b.put_profile(profile("user-1", "user", Some("Target.User@Example.com")));
    b.put_profile(profile("user-2", "user", Some("bystander@example.com")));
    for id in ["owner-1", "admin-1", "admin-2", "user-1", "user-2"] {
        b.put_auth_user(id);
    }
    for table in CASCADE_PLAN {
        for i in 0..per_table {
            put_user_item(&b, table, "user-1", i);
        }
        put_user_item(&b, table, "user-2", 0);
    }
    b
}

pub fn put_user_item(b: &InMemoryBackend, table: &CascadeTable, user: &str, i: usize) {
    if table.name == "admin_messages" {
        let m = AdminMessage {
            message_id: format!("{user}-msg-{i:05}"),
            sender_id: "admin-1".into(),
            recipient_id: user.into(),
            subject: "s".into(),
            body: "b".into(),
            status: MessageStatus::Sent,
            ses_message_id: Some(format!("ses-{i}")),
            error_code: None,
            created_at: format!("2026-01-01T00:00:{:02}.000Z", i % 60),
            sent_at: None,
            updated_at: None,
            attempt: None,
        };
        b.state().messages.insert(m.message_id.clone(), m);
        return;
    }
    let mut item = BTreeMap::new();
    let attr = match table.lookup {
        domain::cascade::Lookup::PartitionKey { attr } | domain::cascade::Lookup::Index { attr, .. } => attr,
    };
    item.insert(attr.to_owned(), user.to_owned());
    for k in table.key {
        item.entry((*k).to_owned())
            .or_insert_with(|| format!("{user}-{}-{i:05}", table.name));
    }
    item.insert("payload".into(), "data".into());
    b.put_item(table, item);
}

pub fn deletion_with_clock(b: &Arc<InMemoryBackend>, clock: Arc<ManualClock>, page_size: usize) -> Deletion {
    let mut d = b.deletion(DeletionSettings {
        page_size,
        ..DeletionSettings::default()
    });
    d.clock = clock;
    d
}
