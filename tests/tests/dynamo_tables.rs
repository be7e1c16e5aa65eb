//! The tables of `infra/template.yaml`, created in the emulator exactly as defined there.

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::{item, str_attr, Harness};
use test_support::infra::dynamo_tables;

#[tokio::test]
async fn every_table_of_the_template_exists_with_its_keys_indexes_and_ttl() {
    let h = Harness::new().await;
    for def in dynamo_tables() {
        let name = h.table(&def.env_var);
        assert!(
            name.starts_with(&h.tables.prefix) && name.ends_with(&def.logical_id),
            "{name}"
        );
        let out = h
            .dynamo
            .describe_table()
            .table_name(&name)
            .send()
            .await
            .expect("describe_table");
        let table = out.table().expect("a table description");
        let key: Vec<(String, String)> = table
            .key_schema()
            .iter()
            .map(|k| (k.attribute_name().to_owned(), k.key_type().as_str().to_owned()))
            .collect();
        let want: Vec<(String, String)> = def
            .key
            .iter()
            .map(|k| (k.attribute.clone(), k.key_type.clone()))
            .collect();
        assert_eq!(key, want, "key of {}", def.logical_id);
        let mut indexes: Vec<String> = table
            .global_secondary_indexes()
            .iter()
            .filter_map(|i| i.index_name().map(str::to_owned))
            .collect();
        let mut want_indexes: Vec<String> = def.indexes.iter().map(|i| i.name.clone()).collect();
        indexes.sort();
        want_indexes.sort();
        assert_eq!(indexes, want_indexes, "indexes of {}", def.logical_id);
        if let Some(ttl) = &def.ttl_attribute {
            let out = h
                .dynamo
                .describe_time_to_live()
                .table_name(&name)
                .send()
                .await
                .expect("describe_time_to_live");
            let desc = out.time_to_live_description().expect("a TTL description");
            assert_eq!(desc.attribute_name(), Some(ttl.as_str()));
        }
    }
}

#[tokio::test]
async fn the_tables_the_design_names_are_all_there() {
    let h = Harness::new().await;
    for var in test_support::settings::table_vars() {
        assert!(h.tables.get(var).is_some(), "{var}");
    }
}

#[tokio::test]
async fn a_conditional_put_is_refused_on_the_second_write() {
    let h = Harness::new().await;
    let table = h.table("SECURITY_LOGS_TABLE");
    let put = |value: &'static str| {
        h.dynamo
            .put_item()
            .table_name(&table)
            .set_item(Some(item(&[("event_id", "e-1"), ("event_type", value)])))
            .condition_expression("attribute_not_exists(event_id)")
            .send()
    };
    put("first").await.expect("the first write succeeds");
    let err = put("second").await.expect_err("the second write is refused");
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_conditional_check_failed_exception()));
    let row = h.get(&table, "event_id", "e-1").await.expect("the row");
    assert_eq!(str_attr(&row, "event_type"), Some("first"));
}

#[tokio::test]
async fn the_by_recipient_index_returns_one_recipients_messages_newest_first() {
    let h = Harness::new().await;
    let table = h.table("ADMIN_MESSAGES_TABLE");
    for (id, recipient, at) in [
        ("m1", "u1", "2025-01-01T10:00:00.000Z"),
        ("m2", "u2", "2025-01-01T11:00:00.000Z"),
        ("m3", "u1", "2025-01-01T12:00:00.000Z"),
        ("m4", "u1", "2025-01-01T09:00:00.000Z"),
    ] {
        h.put(
            &table,
            item(&[
                ("message_id", id),
                ("recipient_id", recipient),
                ("created_at", at),
                ("status", "sent"),
            ]),
        )
        .await;
    }
    let out = h
        .dynamo
        .query()
        .table_name(&table)
        .index_name("by_recipient")
        .key_condition_expression("recipient_id = :r")
        .expression_attribute_values(":r", AttributeValue::S("u1".into()))
        .scan_index_forward(false)
        .send()
        .await
        .expect("query");
    let ids: Vec<&str> = out
        .items()
        .iter()
        .filter_map(|i| str_attr(i, "message_id"))
        .collect();
    assert_eq!(ids, vec!["m3", "m1", "m4"]);
}
