//! `DynamoUserData` over every table of the cascade plan: keys page by page (through the
//! table's own key or through its index), deletes in batches, consistent existence checks,
//! capped counts.
//!
//! This file also runs in the `dynalite` stage of `scripts/test.sh`, against dynalite, which
//! refuses what DynamoDB refuses (more than 25 writes or 100 keys per batch, duplicate keys in
//! a batch, unused expression names, malformed start keys) where moto lets it through.

use domain::cascade::{table, CascadeTable, CASCADE_PLAN};
use domain::model::ItemKey;
use domain::ports::{Count, UserData};
use integration_tests::{key_of, user_attr, user_data_row, Harness, Item};
use std::collections::BTreeSet;

/// Read every key of the user through `page`, following the cursor.
async fn all_keys(h: &Harness, t: &CascadeTable, user: &str, limit: usize) -> (Vec<ItemKey>, usize) {
    let store = h.user_data();
    let mut keys = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = store.page(t, user, cursor.as_ref(), limit).await.unwrap();
        pages += 1;
        assert!(page.keys.len() <= limit);
        for k in &page.keys {
            let names: Vec<&str> = k.keys().map(String::as_str).collect();
            let mut want: Vec<&str> = t.key.to_vec();
            want.sort();
            assert_eq!(names, want, "a page of {} holds table keys only", t.name);
        }
        keys.extend(page.keys);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return (keys, pages),
        }
        assert!(pages < 100, "paging ends");
    }
}

async fn seed(h: &Harness, t: &CascadeTable, user: &str, n: usize) -> Vec<Item> {
    let rows: Vec<Item> = (0..n).map(|i| user_data_row(t, user, i)).collect();
    h.seed(&h.table(t.env_var), rows.clone()).await;
    rows
}

async fn count(h: &Harness, t: &CascadeTable, user: &str, cap: u64) -> Count {
    h.user_data().count(t, user, cap).await.unwrap()
}

#[tokio::test]
async fn in_every_cascade_table_a_users_keys_are_paged_counted_and_deleted() {
    let h = Harness::new().await;
    eprintln!("user-data tables on {}", h.user_data_backend());
    for t in CASCADE_PLAN {
        let rows = seed(&h, t, "u-1", 60).await;
        seed(&h, t, "u-2", 5).await;

        let (keys, pages) = all_keys(&h, t, "u-1", 25).await;
        assert_eq!(keys.len(), 60, "{}", t.name);
        let unique: BTreeSet<&ItemKey> = keys.iter().collect();
        assert_eq!(unique.len(), 60, "no key twice in {}", t.name);
        let seeded: BTreeSet<ItemKey> = rows.iter().map(|r| key_of(t, r)).collect();
        assert_eq!(
            unique.into_iter().cloned().collect::<BTreeSet<_>>(),
            seeded,
            "{}",
            t.name
        );
        assert!(pages >= 3, "{}: {pages} pages", t.name);

        assert_eq!(
            count(&h, t, "u-1", 1_000).await,
            Count {
                count: 60,
                capped: false
            },
            "{}",
            t.name
        );
        assert_eq!(
            count(&h, t, "u-1", 10).await,
            Count {
                count: 10,
                capped: true
            },
            "{}",
            t.name
        );

        h.user_data().delete(t, &keys).await.unwrap();
        assert_eq!(count(&h, t, "u-1", 1_000).await.count, 0, "{}", t.name);
        assert_eq!(
            count(&h, t, "u-2", 1_000).await.count,
            5,
            "other users keep their data in {}",
            t.name
        );
        let left = h.rows_where(&h.table(t.env_var), user_attr(t), "u-1").await;
        assert!(left.is_empty(), "{} still has rows", t.name);
        // Deleting keys that are gone already is fine.
        h.user_data().delete(t, &keys).await.unwrap();
    }
}

#[tokio::test]
async fn existing_keeps_only_the_keys_the_table_still_holds_read_consistently() {
    let h = Harness::new().await;
    for t in CASCADE_PLAN {
        let rows = seed(&h, t, "u-1", 130).await;
        let keys: Vec<ItemKey> = rows.iter().map(|r| key_of(t, r)).collect();
        // 40 of them are deleted behind the index's back (what a stale index entry points at).
        let gone: Vec<Item> = rows[..40]
            .iter()
            .map(|r| t.key.iter().map(|k| ((*k).to_owned(), r[*k].clone())).collect())
            .collect();
        h.delete_keys(&h.table(t.env_var), gone).await;

        // More than one BatchGetItem's worth (100), with keys that never existed and
        // duplicates (DynamoDB refuses a batch that names a key twice).
        let mut asked = keys.clone();
        asked.extend(keys[100..].iter().cloned());
        asked.extend((0..10).map(|i| key_of(t, &user_data_row(t, "nobody", i))));
        let found = h.user_data().existing(t, &asked).await.unwrap();
        let found_set: BTreeSet<ItemKey> = found.iter().cloned().collect();
        assert_eq!(found.len(), found_set.len(), "each key once in {}", t.name);
        let want: BTreeSet<ItemKey> = keys[40..].iter().cloned().collect();
        assert_eq!(found_set, want, "{}", t.name);
        for k in &found {
            let names: Vec<&str> = k.keys().map(String::as_str).collect();
            let mut want: Vec<&str> = t.key.to_vec();
            want.sort();
            assert_eq!(names, want, "{} answers table keys only", t.name);
        }
        assert!(h.user_data().existing(t, &[]).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn through_an_index_the_cursor_survives_the_deletes_between_pages() {
    let h = Harness::new().await;
    let t = table("sessions").unwrap();
    seed(&h, t, "u-1", 57).await;
    seed(&h, t, "u-2", 3).await;
    let store = h.user_data();

    // The delete routine's loop: read a page, delete it, continue from the cursor.
    let mut cursor = None;
    let mut deleted = 0;
    loop {
        let page = store.page(t, "u-1", cursor.as_ref(), 20).await.unwrap();
        store.delete(t, &page.keys).await.unwrap();
        deleted += page.keys.len();
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(deleted, 57);
    assert_eq!(
        count(&h, t, "u-1", 100).await,
        Count {
            count: 0,
            capped: false
        }
    );
    assert_eq!(h.rows_where(&h.table(t.env_var), "user_id", "u-2").await.len(), 3);
}

/// `user-03432` and `user-04731` begin with the same 24 bits of MD5 (after dynalite's salt),
/// which dynalite 4.0.0 took as an item's whole identity inside an index: the later write
/// replaced the earlier one there, and a user's session that no query finds outlives the
/// erasure. tests/dynalite/patch-dynalite.js gives each index entry the item's full key.
#[tokio::test]
async fn an_index_shows_every_item_even_two_whose_keys_dynalite_hashed_alike() {
    let h = Harness::new().await;
    let t = table("sessions").unwrap();
    let rows: Vec<Item> = [3432, 4731].map(|i| user_data_row(t, "user", i)).into();
    h.seed(&h.table(t.env_var), rows.clone()).await;
    let (keys, _) = all_keys(&h, t, "user", 10).await;
    let want: BTreeSet<ItemKey> = rows.iter().map(|r| key_of(t, r)).collect();
    assert_eq!(
        keys.into_iter().collect::<BTreeSet<_>>(),
        want,
        "both sessions are in the index"
    );
    assert_eq!(count(&h, t, "user", 10).await.count, 2);
}

#[tokio::test]
async fn a_big_delete_goes_through_in_batches_of_twenty_five() {
    let h = Harness::new().await;
    let t = table("help_requests").unwrap();
    seed(&h, t, "u-1", 260).await;
    let (keys, _) = all_keys(&h, t, "u-1", 1_000).await;
    assert_eq!(keys.len(), 260);
    // Duplicates in the input are sent once (a batch may not name an item twice).
    let mut twice = keys.clone();
    twice.extend(keys[..30].iter().cloned());
    h.user_data().delete(t, &twice).await.unwrap();
    assert!(h.scan(&h.table(t.env_var)).await.is_empty());
}
