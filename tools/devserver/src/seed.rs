//! Deterministic demo data: an owner, two admins, ~40 users with data in every table of the
//! cascade plan, one user without an email address, one tombstone and one user with more than
//! 10,000 transactions (so a deletion runs long enough to show its progress).

use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::cascade::{table, CASCADE_PLAN};
use domain::memory::InMemoryBackend;
use domain::model::{timestamp, AdminMessage, MessageStatus, Profile};
use domain::ports::SuppressionReason;
use serde::Serialize;
use std::collections::BTreeMap;

/// Somebody the "Signed in as" picker offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub user_id: String,
    pub display_name: String,
    pub role: String,
}

/// What was seeded, for the picker and for tests.
#[derive(Debug, Clone, Default)]
pub struct Seeded {
    pub owner: String,
    pub admins: Vec<String>,
    pub users: Vec<String>,
    pub no_email: String,
    pub tombstone: String,
    pub heavy: String,
    /// The identities the picker offers, in order (with their names as seeded: a deleted
    /// identity's profile is a "Deleted User" tombstone).
    pub identities: Vec<Identity>,
}

const OWNER: (&str, &str) = ("Olivia Bennett", "olivia.bennett@example.com");
const ADMINS: [(&str, &str); 2] = [
    ("Marcus Chen", "marcus.chen@example.com"),
    ("Priya Raman", "priya.raman@example.com"),
];

const USERS: [(&str, &str); 40] = [
    ("Ana Lima", "ana.lima@example.org"),
    ("Benjamin Okafor", "ben.okafor@example.com"),
    ("Chloé Dubois", "chloe.dubois@example.org"),
    ("Daniel Kowalski", "d.kowalski@example.com"),
    ("Elena Petrova", "elena.petrova@example.org"),
    ("Farah Haddad", "farah.haddad@example.com"),
    ("Gabriel Santos", "gabriel.santos@example.org"),
    ("Hannah Schmidt", "hannah.schmidt@example.com"),
    ("Isaac Goldberg", "isaac.goldberg@example.org"),
    ("Jasmine Patel", "jasmine.patel@example.com"),
    ("Kenji Watanabe", "kenji.watanabe@example.org"),
    ("Laura Rossi", "laura.rossi@example.com"),
    ("Mateo García", "mateo.garcia@example.org"),
    ("Nadia Rahman", "nadia.rahman@example.com"),
    ("Oscar Lindqvist", "oscar.lindqvist@example.org"),
    ("Paula Fernández", "paula.fernandez@example.com"),
    ("Quentin Moreau", "quentin.moreau@example.org"),
    ("Rachel Adeyemi", "rachel.adeyemi@example.com"),
    ("Samuel O'Brien", "sam.obrien@example.org"),
    ("Tanya Ivanova", "tanya.ivanova@example.com"),
    ("Umar Siddiqui", "umar.siddiqui@example.org"),
    ("Valentina Conti", "valentina.conti@example.com"),
    ("William Turner", "will.turner@example.org"),
    ("Ximena Torres", "ximena.torres@example.com"),
    ("Yusuf Demir", "yusuf.demir@example.org"),
    ("Zoë Müller", "zoe.mueller@example.com"),
    ("Aiden Murphy", "aiden.murphy@example.org"),
    ("Beatriz Costa", "beatriz.costa@example.com"),
    ("Carlos Mendoza", "carlos.mendoza@example.org"),
    ("Diana Novak", "diana.novak@example.com"),
    ("Emeka Nwosu", "emeka.nwosu@example.org"),
    ("Fiona MacLeod", "fiona.macleod@example.com"),
    ("George Papadopoulos", "george.papadopoulos@example.org"),
    ("Hiroko Tanaka", "hiroko.tanaka@example.com"),
    ("Ingrid Johansson", "ingrid.johansson@example.org"),
    ("Jamal Washington", "jamal.washington@example.com"),
    ("Katarzyna Wiśniewska", "kasia.wisniewska@example.org"),
    ("Liam Walsh", "liam.walsh@example.com"),
    ("Maya Cohen", "maya.cohen@example.org"),
    ("Noah Fischer", "noah.fischer@example.com"),
];

const HEAVY: (&str, &str) = ("Riley Archer", "riley.archer@example.com");
const HEAVY_TRANSACTIONS: usize = 12_500;
const NO_EMAIL_NAME: &str = "Jordan Blake";
/// On the dev mail provider's suppression list (a seeded user's address), and since when.
pub const SUPPRESSED: (&str, &str) = ("liam.walsh@example.com", "2026-10-02T09:15:00Z");

const MERCHANTS: [&str; 8] = [
    "Comcast",
    "Verizon",
    "Delta Air Lines",
    "Chase",
    "AT&T",
    "Spotify",
    "United Airlines",
    "T-Mobile",
];
const COMPANIES: [(&str, &str); 8] = [
    ("cmp-comcast", "Comcast"),
    ("cmp-verizon", "Verizon"),
    ("cmp-delta", "Delta Air Lines"),
    ("cmp-chase", "Chase"),
    ("cmp-att", "AT&T"),
    ("cmp-spotify", "Spotify"),
    ("cmp-united", "United Airlines"),
    ("cmp-tmobile", "T-Mobile"),
];
const HELP_TOPICS: [&str; 4] = ["billing", "login", "company-catalog", "extension"];

/// A small deterministic generator (splitmix64), so every run seeds the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A UUIDv7-shaped id (time-ordered, like a sign-up order), deterministic per seed.
fn user_id(created: DateTime<Utc>, rng: &mut Rng) -> String {
    let ms = u64::try_from(created.timestamp_millis()).unwrap_or_default();
    let r = rng.next();
    format!(
        "{:08x}-{:04x}-7{:03x}-{:04x}-{:012x}",
        (ms >> 16) & 0xffff_ffff,
        ms & 0xffff,
        (r >> 52) & 0xfff,
        0x8000 | ((r >> 36) & 0x3fff),
        r & 0xffff_ffff_ffff
    )
}

fn item(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 8, 9, 30, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

/// Seeds `backend` and returns what it seeded.
pub fn seed(backend: &InMemoryBackend) -> Seeded {
    let mut rng = Rng(0x7e1e_9e25_0000_0001);
    let mut t = base_time();
    let mut seeded = Seeded::default();
    let mut next_time = |rng: &mut Rng| {
        t += Duration::hours(60 + i64::try_from(rng.below(200)).unwrap_or_default())
            + Duration::minutes(i64::try_from(rng.below(60)).unwrap_or_default());
        t
    };

    let add = |rng: &mut Rng, name: &str, email: Option<&str>, role: &str, created: DateTime<Utc>| {
        let id = user_id(created, rng);
        backend.put_profile(Profile::active(&id, role, email, name, &timestamp(created)));
        backend.put_auth_user(&id);
        id
    };

    seeded.owner = add(&mut rng, OWNER.0, Some(OWNER.1), "owner", base_time());
    for (name, email) in ADMINS {
        let created = next_time(&mut rng);
        let id = add(&mut rng, name, Some(email), "admin", created);
        seeded.admins.push(id);
    }
    for (i, (name, email)) in USERS.iter().enumerate() {
        let created = next_time(&mut rng);
        let id = add(&mut rng, name, Some(email), "user", created);
        seeded.users.push(id.clone());
        if i == 17 {
            let created = next_time(&mut rng);
            seeded.no_email = add(&mut rng, NO_EMAIL_NAME, None, "user", created);
        }
        if i == 29 {
            let created = next_time(&mut rng);
            seeded.heavy = add(&mut rng, HEAVY.0, Some(HEAVY.1), "user", created);
        }
    }

    // A user deleted earlier: the anonymised tombstone stays (and is hidden from the list).
    let created = next_time(&mut rng);
    let tomb = user_id(created, &mut rng);
    backend.put_profile(Profile {
        user_id: tomb.clone(),
        email: None,
        display_name: Profile::TOMBSTONE_NAME.to_owned(),
        role: "user".into(),
        created_at: timestamp(created),
        deleted_at: Some(timestamp(created + Duration::days(30))),
        auth_username: None,
        deletion_job_id: None,
        tokens_valid_after: None,
    });
    seeded.tombstone = tomb;

    // User data in every table of the cascade plan.
    let mut everyone: Vec<String> = vec![seeded.owner.clone()];
    everyone.extend(seeded.admins.iter().cloned());
    everyone.extend(seeded.users.iter().cloned());
    everyone.push(seeded.no_email.clone());
    everyone.push(seeded.heavy.clone());
    for (n, id) in everyone.iter().enumerate() {
        seed_user_data(backend, &mut rng, id, n);
    }
    seed_heavy(backend, &seeded.heavy);
    seed_messages(backend, &seeded);
    // The mail provider's suppression list: an earlier message to Liam Walsh bounced hard,
    // so a new one is refused with `recipient_suppressed` unless sent anyway.
    backend.suppress(SUPPRESSED.0, SuppressionReason::Bounce, SUPPRESSED.1);
    debug_assert!(CASCADE_PLAN.iter().all(|t| table(t.name).is_some()));

    let mut ids = vec![seeded.owner.clone()];
    ids.extend(seeded.admins.iter().cloned());
    ids.extend(seeded.users.iter().take(2).cloned());
    let st = backend.state();
    seeded.identities = ids
        .into_iter()
        .filter_map(|id| st.profiles.get(&id))
        .map(|p| Identity {
            user_id: p.user_id.clone(),
            display_name: p.display_name.clone(),
            role: p.role.clone(),
        })
        .collect();
    drop(st);
    seeded
}

fn seed_user_data(backend: &InMemoryBackend, rng: &mut Rng, id: &str, n: usize) {
    let when = |rng: &mut Rng| {
        timestamp(base_time() + Duration::days(i64::try_from(rng.below(680)).unwrap_or_default()))
    };
    if let Some(t) = table("transactions") {
        for k in 0..(2 + rng.below(14)) {
            let amount = 500 + rng.below(25_000);
            let merchant = MERCHANTS[usize::try_from(rng.below(8)).unwrap_or_default()];
            backend.put_item(
                t,
                item(&[
                    ("user_id", id.to_owned()),
                    ("transaction_id", format!("txn-{n:03}-{k:04}")),
                    ("merchant", merchant.to_owned()),
                    ("amount_cents", amount.to_string()),
                    ("currency", "USD".into()),
                    ("created_at", when(rng)),
                ]),
            );
        }
    }
    if let Some(t) = table("followed_companies") {
        let start = usize::try_from(rng.below(8)).unwrap_or_default();
        for k in 0..(1 + rng.below(5)) {
            let (company_id, name) =
                COMPANIES[(start + usize::try_from(k).unwrap_or_default()) % COMPANIES.len()];
            backend.put_item(
                t,
                item(&[
                    ("user_id", id.to_owned()),
                    ("company_id", company_id.to_owned()),
                    ("company_name", name.to_owned()),
                    ("followed_at", when(rng)),
                ]),
            );
        }
    }
    if let Some(t) = table("billing_records") {
        for k in 0..(1 + rng.below(4)) {
            backend.put_item(
                t,
                item(&[
                    ("user_id", id.to_owned()),
                    ("record_id", format!("bill-{n:03}-{k:02}")),
                    ("plan", if k % 2 == 0 { "pro".into() } else { "basic".into() }),
                    ("amount_cents", (999 + rng.below(2000)).to_string()),
                    ("period", format!("2025-{:02}", 1 + k)),
                ]),
            );
        }
    }
    if let Some(t) = table("sessions") {
        for k in 0..(1 + rng.below(3)) {
            backend.put_item(
                t,
                item(&[
                    (
                        "session_id",
                        format!("sess-{n:03}-{k:02}-{:08x}", rng.next() & 0xffff_ffff),
                    ),
                    ("user_id", id.to_owned()),
                    ("created_at", when(rng)),
                    (
                        "device",
                        if k == 0 {
                            "Chrome on macOS".into()
                        } else {
                            "Teleperson extension".into()
                        },
                    ),
                ]),
            );
        }
    }
    if let Some(t) = table("help_requests") {
        for k in 0..rng.below(3) {
            let topic = HELP_TOPICS[usize::try_from(rng.below(4)).unwrap_or_default()];
            backend.put_item(
                t,
                item(&[
                    ("request_id", format!("help-{n:03}-{k:02}")),
                    ("user_id", id.to_owned()),
                    ("topic", topic.to_owned()),
                    ("status", if k == 0 { "open".into() } else { "closed".into() }),
                    ("created_at", when(rng)),
                ]),
            );
        }
    }
}

fn seed_heavy(backend: &InMemoryBackend, id: &str) {
    let Some(t) = table("transactions") else { return };
    for k in 0..HEAVY_TRANSACTIONS {
        backend.put_item(
            t,
            item(&[
                ("user_id", id.to_owned()),
                ("transaction_id", format!("txn-heavy-{k:06}")),
                ("merchant", MERCHANTS[k % MERCHANTS.len()].to_owned()),
                ("amount_cents", (100 + k % 9000).to_string()),
                ("currency", "USD".into()),
                (
                    "created_at",
                    timestamp(base_time() + Duration::minutes(i64::try_from(k).unwrap_or_default())),
                ),
            ]),
        );
    }
}

/// A few earlier messages (the composer shows the history), from the owner and the admins,
/// in every delivery status: Ana Lima's were delivered, Hannah Schmidt's last one bounced and
/// Kenji Watanabe's drew a complaint (so sending to them asks for "send anyway").
fn seed_messages(backend: &InMemoryBackend, seeded: &Seeded) {
    let samples = [
        (
            0,
            "Welcome to Teleperson",
            "Hi Ana, thanks for joining Teleperson! Let us know if you need anything.",
            MessageStatus::Delivered,
        ),
        (
            0,
            "Your help request",
            "We fixed the login issue you reported. Please try again.",
            MessageStatus::Delivered,
        ),
        (
            3,
            "A message from Teleperson",
            "Your billing address looks incomplete; could you update it?",
            MessageStatus::Failed,
        ),
        (
            7,
            "A message from Teleperson",
            "Thanks for the feedback on the extension.",
            MessageStatus::Bounced,
        ),
        (
            10,
            "Your help request",
            "Your refund for the duplicate charge is on its way.",
            MessageStatus::Complained,
        ),
        (
            12,
            "A message from Teleperson",
            "Your account review is complete. Nothing else is needed from you.",
            MessageStatus::Sent,
        ),
    ];
    let mut st = backend.state();
    for (k, (user, subject, body, status)) in samples.iter().enumerate() {
        let Some(recipient) = seeded.users.get(*user) else {
            continue;
        };
        let sender = if k % 2 == 0 {
            &seeded.owner
        } else {
            &seeded.admins[0]
        };
        let sent = base_time() + Duration::days(400 + 20 * i64::try_from(k).unwrap_or_default());
        let at = timestamp(sent);
        let message_id = format!("00000000-0000-4000-8000-{:012x}", k + 1);
        // SES accepted every message but the failed one; delivery events came a little later.
        let accepted = *status != MessageStatus::Failed;
        let updated = match status {
            MessageStatus::Delivered | MessageStatus::Bounced => Duration::seconds(3),
            MessageStatus::Complained => Duration::hours(5),
            _ => Duration::zero(),
        };
        let updated_at = timestamp(sent + updated);
        st.messages.insert(
            message_id.clone(),
            AdminMessage {
                message_id,
                sender_id: sender.clone(),
                recipient_id: recipient.clone(),
                subject: (*subject).to_owned(),
                body: (*body).to_owned(),
                status: *status,
                ses_message_id: accepted.then(|| format!("seed-ses-{k}")),
                error_code: (!accepted).then(|| "MessageRejected".to_owned()),
                created_at: at.clone(),
                sent_at: accepted.then(|| at.clone()),
                updated_at: Some(updated_at),
                attempt: None,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeding_is_deterministic() {
        let (a, b) = (InMemoryBackend::new(), InMemoryBackend::new());
        let (sa, sb) = (seed(&a), seed(&b));
        assert_eq!(sa.identities, sb.identities);
        assert_eq!(a.snapshot().profiles, b.snapshot().profiles);
        assert_eq!(a.snapshot().tables, b.snapshot().tables);
    }

    #[test]
    fn every_active_user_has_items_in_every_user_data_table_but_help_requests_may_be_empty() {
        let backend = InMemoryBackend::new();
        let seeded = seed(&backend);
        for name in [
            "transactions",
            "followed_companies",
            "billing_records",
            "sessions",
        ] {
            let t = table(name).unwrap();
            for id in seeded.users.iter().chain([&seeded.owner, &seeded.no_email]) {
                assert!(backend.count_user_items(t, id) > 0, "{name} empty for {id}");
            }
        }
        for t in CASCADE_PLAN {
            let total: usize = seeded
                .users
                .iter()
                .map(|id| backend.count_user_items(t, id))
                .sum();
            assert!(total > 0, "no items at all in {}", t.name);
        }
        assert!(backend.count_user_items(table("transactions").unwrap(), &seeded.heavy) > 10_000);
    }

    #[test]
    fn ids_are_valid_user_ids_and_unique() {
        let backend = InMemoryBackend::new();
        seed(&backend);
        let st = backend.snapshot();
        assert_eq!(st.profiles.len(), 1 + 2 + 40 + 3);
        for id in st.profiles.keys() {
            domain::types::UserId::parse(id).unwrap();
        }
    }
}
