//! The cascade plan: every table that holds a user's data and how to find their items.
//! Declared once, as data. `infra/template.yaml` is checked against it by a test, so a new
//! user-data table cannot be forgotten.

/// How the user's items are found in a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Query the table on its partition key.
    PartitionKey { attr: &'static str },
    /// Query a global secondary index whose partition key is the user id.
    Index { index: &'static str, attr: &'static str },
}

/// One table in the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CascadeTable {
    /// Logical name, used in job progress and in the `deleted` counts of the answer.
    pub name: &'static str,
    /// The environment variable holding the physical table name.
    pub env_var: &'static str,
    /// The table's primary key attributes (partition key first).
    pub key: &'static [&'static str],
    pub lookup: Lookup,
}

/// Every user-data table, in the order the routine erases them.
pub const CASCADE_PLAN: &[CascadeTable] = &[
    CascadeTable {
        name: "transactions",
        env_var: "TRANSACTIONS_TABLE",
        key: &["user_id", "transaction_id"],
        lookup: Lookup::PartitionKey { attr: "user_id" },
    },
    CascadeTable {
        name: "followed_companies",
        env_var: "FOLLOWED_COMPANIES_TABLE",
        key: &["user_id", "company_id"],
        lookup: Lookup::PartitionKey { attr: "user_id" },
    },
    CascadeTable {
        name: "billing_records",
        env_var: "BILLING_RECORDS_TABLE",
        key: &["user_id", "record_id"],
        lookup: Lookup::PartitionKey { attr: "user_id" },
    },
    CascadeTable {
        name: "sessions",
        env_var: "SESSIONS_TABLE",
        key: &["session_id"],
        lookup: Lookup::Index {
            index: "by_user",
            attr: "user_id",
        },
    },
    CascadeTable {
        name: "help_requests",
        env_var: "HELP_REQUESTS_TABLE",
        key: &["request_id"],
        lookup: Lookup::Index {
            index: "by_user",
            attr: "user_id",
        },
    },
    CascadeTable {
        name: "admin_messages",
        env_var: "ADMIN_MESSAGES_TABLE",
        key: &["message_id"],
        lookup: Lookup::Index {
            index: "by_recipient",
            attr: "recipient_id",
        },
    },
];

/// Tables that are deliberately not cascaded, each with the reason. Every table in the
/// template is either in [`CASCADE_PLAN`] or here.
pub const KEPT_TABLES: &[(&str, &str)] = &[
    ("PROFILES_TABLE", "anonymised in place into the tombstone (no email, \"Deleted User\")"),
    ("SECURITY_LOGS_TABLE", "append-only audit trail; holds ids and the email hash only"),
    ("DELETION_JOBS_TABLE", "the erasure receipt: ids, role, email hash and counts"),
    (
        "IDEMPOTENCY_TABLE",
        "idempotency keys and rate-limit windows of the acting admin: ids and payload hashes only; expire within 24 h",
    ),
];

pub fn table(name: &str) -> Option<&'static CascadeTable> {
    CASCADE_PLAN.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plan_entry_has_a_unique_name_and_env_var() {
        let mut names: Vec<_> = CASCADE_PLAN.iter().map(|t| t.name).collect();
        let mut vars: Vec<_> = CASCADE_PLAN.iter().map(|t| t.env_var).collect();
        names.sort();
        names.dedup();
        vars.sort();
        vars.dedup();
        assert_eq!(names.len(), CASCADE_PLAN.len());
        assert_eq!(vars.len(), CASCADE_PLAN.len());
    }

    #[test]
    fn a_partition_key_lookup_uses_the_tables_own_partition_key() {
        for t in CASCADE_PLAN {
            if let Lookup::PartitionKey { attr } = t.lookup {
                assert_eq!(t.key[0], attr, "{}", t.name);
            }
        }
    }
}
