//! The `admin_messages` rows of the in-memory backend, with the index DynamoDB keeps as the
//! table's recipient GSI (`recipient_id`, newest first by `created_at`), so that reading a
//! recipient's history or erasing their messages costs what it costs in DynamoDB: the rows of
//! that recipient, not a scan of every message ever stored.

use crate::model::AdminMessage;
use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::{Deref, DerefMut};

/// Per recipient: (created_at, message_id) of each of their rows.
type ByRecipient = BTreeMap<String, BTreeSet<(String, String)>>;

/// Message rows by `message_id`, indexed by recipient. Reads like a `BTreeMap`; a row changed
/// through [`Messages::get_mut`] is indexed again when the change is done.
#[derive(Clone, Default)]
pub struct Messages {
    rows: BTreeMap<String, AdminMessage>,
    by_recipient: ByRecipient,
}

fn index_key(m: &AdminMessage) -> (String, String) {
    (m.created_at.clone(), m.message_id.clone())
}

fn unindex(index: &mut ByRecipient, recipient: &str, key: &(String, String)) {
    if let Some(set) = index.get_mut(recipient) {
        set.remove(key);
        if set.is_empty() {
            index.remove(recipient);
        }
    }
}

impl Messages {
    pub fn get<Q>(&self, message_id: &Q) -> Option<&AdminMessage>
    where
        String: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.rows.get(message_id)
    }

    pub fn contains_key<Q>(&self, message_id: &Q) -> bool
    where
        String: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.rows.contains_key(message_id)
    }

    /// The row, to change in place; indexed again when the returned guard is dropped.
    pub fn get_mut<Q>(&mut self, message_id: &Q) -> Option<MessageMut<'_>>
    where
        String: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let row = self.rows.get_mut(message_id)?;
        let was = (row.recipient_id.clone(), index_key(row));
        Some(MessageMut {
            row,
            index: &mut self.by_recipient,
            was,
        })
    }

    /// Store `row` under `message_id`, replacing (and returning) what was there.
    pub fn insert(&mut self, message_id: String, row: AdminMessage) -> Option<AdminMessage> {
        if let Some(old) = self.rows.get(&message_id) {
            unindex(&mut self.by_recipient, &old.recipient_id, &index_key(old));
        }
        self.by_recipient
            .entry(row.recipient_id.clone())
            .or_default()
            .insert(index_key(&row));
        self.rows.insert(message_id, row)
    }

    pub fn remove<Q>(&mut self, message_id: &Q) -> Option<AdminMessage>
    where
        String: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let old = self.rows.remove(message_id)?;
        unindex(&mut self.by_recipient, &old.recipient_id, &index_key(&old));
        Some(old)
    }

    /// Every row, by message id.
    pub fn values(&self) -> impl Iterator<Item = &AdminMessage> {
        self.rows.values()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// A recipient's rows, newest first (by `created_at`, then `message_id`), starting strictly
    /// after `after` (the `(created_at, message_id)` of the last row of the previous page).
    pub fn of_recipient<'a>(
        &'a self, recipient_id: &str, after: Option<(&str, &str)>,
    ) -> impl Iterator<Item = &'a AdminMessage> + 'a {
        let keys = self.by_recipient.get(recipient_id);
        let newest_first: Box<dyn Iterator<Item = &(String, String)> + 'a> = match (keys, after) {
            (None, _) => Box::new(std::iter::empty()),
            (Some(keys), None) => Box::new(keys.iter().rev()),
            (Some(keys), Some((created_at, message_id))) => {
                Box::new(keys.range(..(created_at.to_owned(), message_id.to_owned())).rev())
            }
        };
        newest_first.filter_map(|(_, id)| self.rows.get(id))
    }

    /// How many rows a recipient has.
    pub fn count_of_recipient(&self, recipient_id: &str) -> usize {
        self.by_recipient.get(recipient_id).map_or(0, BTreeSet::len)
    }
}

/// The rows alone: the index is derived from them.
impl PartialEq for Messages {
    fn eq(&self, other: &Self) -> bool {
        self.rows == other.rows
    }
}

impl fmt::Debug for Messages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.rows.fmt(f)
    }
}

/// A row being changed in place; indexed again on drop if its recipient or time changed.
pub struct MessageMut<'a> {
    row: &'a mut AdminMessage,
    index: &'a mut ByRecipient,
    was: (String, (String, String)),
}

impl Deref for MessageMut<'_> {
    type Target = AdminMessage;

    fn deref(&self) -> &AdminMessage {
        self.row
    }
}

impl DerefMut for MessageMut<'_> {
    fn deref_mut(&mut self) -> &mut AdminMessage {
        self.row
    }
}

impl Drop for MessageMut<'_> {
    fn drop(&mut self) {
        let now = (self.row.recipient_id.clone(), index_key(self.row));
        if now != self.was {
            unindex(self.index, &self.was.0, &self.was.1);
            self.index.entry(now.0).or_default().insert(now.1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MessageStatus;

    fn row(id: &str, to: &str, at: &str) -> AdminMessage {
        AdminMessage {
            message_id: id.into(),
            sender_id: "admin-1".into(),
            recipient_id: to.into(),
            subject: "s".into(),
            body: "b".into(),
            status: MessageStatus::Pending,
            ses_message_id: None,
            error_code: None,
            created_at: at.into(),
            sent_at: None,
            updated_at: None,
            attempt: None,
        }
    }

    fn ids<'a>(it: impl Iterator<Item = &'a AdminMessage>) -> Vec<&'a str> {
        it.map(|m| m.message_id.as_str()).collect()
    }

    #[test]
    fn a_recipients_rows_come_newest_first_and_pages_continue_after_the_cursor() {
        let mut m = Messages::default();
        m.insert("b".into(), row("b", "u1", "2025-01-01T00:00:02.000Z"));
        m.insert("a".into(), row("a", "u1", "2025-01-01T00:00:01.000Z"));
        m.insert("c".into(), row("c", "u1", "2025-01-01T00:00:02.000Z"));
        m.insert("x".into(), row("x", "u2", "2025-01-01T00:00:03.000Z"));
        assert_eq!(ids(m.of_recipient("u1", None)), ["c", "b", "a"]);
        assert_eq!(
            ids(m.of_recipient("u1", Some(("2025-01-01T00:00:02.000Z", "c")))),
            ["b", "a"]
        );
        assert_eq!(ids(m.of_recipient("u3", None)), Vec::<&str>::new());
        assert_eq!(m.count_of_recipient("u1"), 3);
    }

    #[test]
    fn the_index_follows_replaced_changed_and_removed_rows() {
        let mut m = Messages::default();
        m.insert("a".into(), row("a", "u1", "2025-01-01T00:00:01.000Z"));
        m.insert("a".into(), row("a", "u2", "2025-01-01T00:00:01.000Z"));
        assert_eq!(m.count_of_recipient("u1"), 0);
        assert_eq!(ids(m.of_recipient("u2", None)), ["a"]);
        m.get_mut("a").unwrap().recipient_id = "u3".into();
        assert_eq!(m.count_of_recipient("u2"), 0);
        assert_eq!(ids(m.of_recipient("u3", None)), ["a"]);
        m.get_mut("a").unwrap().status = MessageStatus::Sent;
        assert_eq!(m.get("a").map(|r| r.status), Some(MessageStatus::Sent));
        assert_eq!(m.remove("a").map(|r| r.message_id), Some("a".into()));
        assert_eq!(m.count_of_recipient("u3"), 0);
        assert!(m.is_empty());
    }
}
