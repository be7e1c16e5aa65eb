//! The environment contract's tables as the design names them (the README's configuration
//! table), written out once for every test that lists settings: the user-data tables the
//! cascade empties and the other tables. The tests below check them against
//! `infra/template.yaml` and `domain::cascade`.

/// The user-data tables, by their variable: the cascade deletes a user's rows from each.
pub const USER_DATA_TABLE_VARS: &[&str] = &[
    "TRANSACTIONS_TABLE",
    "FOLLOWED_COMPANIES_TABLE",
    "BILLING_RECORDS_TABLE",
    "SESSIONS_TABLE",
    "HELP_REQUESTS_TABLE",
    "ADMIN_MESSAGES_TABLE",
];

/// The tables a deletion keeps (anonymised, appended to, or expiring), by their variable.
pub const KEPT_TABLE_VARS: &[&str] = &[
    "PROFILES_TABLE",
    "SECURITY_LOGS_TABLE",
    "DELETION_JOBS_TABLE",
    "IDEMPOTENCY_TABLE",
];

/// Every table's variable: the kept tables, then the user-data tables.
pub fn table_vars() -> Vec<&'static str> {
    KEPT_TABLE_VARS
        .iter()
        .chain(USER_DATA_TABLE_VARS)
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn set<'a>(vars: impl IntoIterator<Item = &'a str>) -> BTreeSet<&'a str> {
        vars.into_iter().collect()
    }

    #[test]
    fn the_tables_are_the_templates() {
        let tables = crate::infra::dynamo_tables();
        let in_template = set(tables.iter().map(|t| t.env_var.as_str()));
        assert_eq!(set(table_vars()), in_template);
        assert_eq!(table_vars().len(), in_template.len(), "no table is listed twice");
    }

    #[test]
    fn the_user_data_tables_are_the_cascade_plans_and_the_kept_ones_the_kept_tables() {
        let cascaded = set(domain::cascade::CASCADE_PLAN.iter().map(|t| t.env_var));
        assert_eq!(set(USER_DATA_TABLE_VARS.iter().copied()), cascaded);
        let kept = set(domain::cascade::KEPT_TABLES.iter().map(|(var, _)| *var));
        assert_eq!(set(KEPT_TABLE_VARS.iter().copied()), kept);
    }
}
