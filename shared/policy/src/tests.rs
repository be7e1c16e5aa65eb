//! The policy, written as one table.
//!
//! `SPEC` below is the specification in rows, read top to bottom: the first row whose
//! pattern matches a request gives the expected answer. `every_combination_matches_the_spec`
//! runs every combination of caller × target × self × acknowledgement × action through
//! [`decide`] and compares it with the table; `matrix.txt` beside this file lists every
//! one of those combinations with its answer (a reviewed snapshot: regenerate with
//! `UPDATE_POLICY_MATRIX=1 cargo test -p policy`).

use super::*;

const USER: RoleName = RoleName::Known(Role::User);
const ADMIN: RoleName = RoleName::Known(Role::Admin);
const OWNER: RoleName = RoleName::Known(Role::Owner);
const UNKNOWN: RoleName = RoleName::Unknown;

/// Pattern over the caller.
#[derive(Clone, Copy)]
enum C {
    Any,
    NoProfile,
    Tombstoned,
    Revoked,
    NotStaff, // user or unknown role string
    Admin,
    Owner,
}

/// Pattern over the target.
#[derive(Clone, Copy)]
enum T {
    Any,
    Missing,
    Tombstone,         // deleted, deletion finished or not
    TombstoneFinished, // deleted and the job completed
    PlainUser,         // an active user, or a running deletion of one
    Privileged,        // admin, owner or unknown role; active or a running deletion
    LastOwner,         // the only active owner
}

/// Pattern over a flag.
#[derive(Clone, Copy)]
enum F {
    Any,
    Yes,
    No,
}

#[derive(Clone, Copy)]
enum A {
    Any,
    Is(Action),
    Reads, // view messages
}

use Action::*;
use Denial::*;

const ALLOW: Decision = Decision::Allow;
const fn deny(d: Denial) -> Decision {
    Decision::Deny(d)
}

/// The specification. First matching row wins.
#[rustfmt::skip]
const SPEC: &[(C, A, T, /*self*/ F, /*ack*/ F, Decision)] = &[
    // caller              action                  target                   self    ack     answer
    (C::NoProfile,  A::Any,                 T::Any,                  F::Any, F::Any, deny(Unauthenticated)),
    (C::Tombstoned, A::Any,                 T::Any,                  F::Any, F::Any, deny(Unauthenticated)),
    (C::Revoked,    A::Any,                 T::Any,                  F::Any, F::Any, deny(Unauthenticated)),
    (C::NotStaff,   A::Any,                 T::Any,                  F::Any, F::Any, deny(ForbiddenRole)),
    (C::Any,        A::Is(ListUsers),       T::Any,                  F::Any, F::Any, ALLOW),
    (C::Any,        A::Is(ReadAudit),       T::Any,                  F::Any, F::Any, ALLOW),
    (C::Any,        A::Any,                 T::Missing,              F::Any, F::Any, deny(UserNotFound)),
    // messages: any live target, self included; never a tombstone
    (C::Any,        A::Is(SendMessage),     T::Tombstone,            F::Any, F::Any, deny(UserDeleted)),
    (C::Any,        A::Reads,               T::Tombstone,            F::Any, F::Any, deny(UserDeleted)),
    (C::Any,        A::Is(SendMessage),     T::Any,                  F::Any, F::Any, ALLOW),
    (C::Any,        A::Reads,               T::Any,                  F::Any, F::Any, ALLOW),
    // deletion status: live or tombstoned
    (C::Any,        A::Is(ViewDeletion),    T::Any,                  F::Any, F::Any, ALLOW),
    // delete
    (C::Any,        A::Is(DeleteUser),      T::TombstoneFinished,    F::Any, F::Any, deny(UserDeleted)),
    (C::Any,        A::Is(DeleteUser),      T::Any,                  F::Yes, F::Any, deny(SelfDeletion)),
    (C::Any,        A::Is(DeleteUser),      T::LastOwner,            F::No,  F::Any, deny(LastOwner)),
    (C::Any,        A::Is(DeleteUser),      T::PlainUser,            F::No,  F::Any, ALLOW),
    (C::Admin,      A::Is(DeleteUser),      T::Privileged,           F::No,  F::Any, deny(PrivilegedTarget)),
    (C::Owner,      A::Is(DeleteUser),      T::Privileged,           F::No,  F::No,  deny(AcknowledgementRequired)),
    (C::Owner,      A::Is(DeleteUser),      T::Privileged,           F::No,  F::Yes, ALLOW),
];

fn caller_matches(p: C, c: Caller) -> bool {
    match p {
        C::Any => true,
        C::NoProfile => c == Caller::Missing,
        C::Tombstoned => c == Caller::Deleted,
        C::Revoked => c == Caller::Revoked,
        C::NotStaff => matches!(c, Caller::Active(USER) | Caller::Active(UNKNOWN)),
        C::Admin => c == Caller::Active(ADMIN),
        C::Owner => c == Caller::Active(OWNER),
    }
}

fn target_matches(p: T, t: Target, last_owner: bool) -> bool {
    let live_role = match t {
        Target::Active(r) => Some(r),
        Target::Deleted {
            role,
            deletion_finished: false,
        } => Some(role),
        _ => None,
    };
    match p {
        T::Any => true,
        T::Missing => t == Target::Missing,
        T::Tombstone => matches!(t, Target::Deleted { .. }),
        T::TombstoneFinished => matches!(
            t,
            Target::Deleted {
                deletion_finished: true,
                ..
            }
        ),
        T::PlainUser => live_role == Some(USER),
        T::Privileged => matches!(live_role, Some(r) if r != USER),
        T::LastOwner => last_owner,
    }
}

fn flag_matches(p: F, v: bool) -> bool {
    match p {
        F::Any => true,
        F::Yes => v,
        F::No => !v,
    }
}

fn action_matches(p: A, a: Action) -> bool {
    match p {
        A::Any => true,
        A::Is(x) => x == a,
        A::Reads => a == ViewMessages,
    }
}

fn spec(req: Request) -> Option<Decision> {
    SPEC.iter()
        .find(|(c, a, t, s, k, _)| {
            caller_matches(*c, req.caller)
                && action_matches(*a, req.action)
                && target_matches(*t, req.target, req.last_owner)
                && flag_matches(*s, req.is_self)
                && flag_matches(*k, req.acknowledged)
        })
        .map(|row| row.5)
}

const ROLES: [RoleName; 4] = [USER, ADMIN, OWNER, UNKNOWN];
const ACTIONS: [Action; 6] = [
    SendMessage,
    ViewMessages,
    DeleteUser,
    ViewDeletion,
    ListUsers,
    ReadAudit,
];

fn callers() -> Vec<Caller> {
    let mut v = vec![Caller::Missing, Caller::Deleted, Caller::Revoked];
    v.extend(ROLES.iter().map(|r| Caller::Active(*r)));
    v
}

fn targets() -> Vec<Target> {
    let mut v = vec![Target::Missing];
    for r in ROLES {
        v.push(Target::Active(r));
        v.push(Target::Deleted {
            role: r,
            deletion_finished: false,
        });
        v.push(Target::Deleted {
            role: r,
            deletion_finished: true,
        });
    }
    v
}

/// Every possible request. A request on oneself sees one's own state as the target. The
/// actions with no single target (the list, the audit trail) always come with
/// `Target::Missing`, not oneself and no acknowledgement: that is all their use cases send.
fn every_request() -> Vec<Request> {
    let mut out = Vec::new();
    for action in ACTIONS {
        let untargeted = matches!(action, ListUsers | ReadAudit);
        for caller in callers() {
            for target in targets() {
                if untargeted && target != Target::Missing {
                    continue;
                }
                for is_self in [false, true] {
                    if untargeted && is_self {
                        continue;
                    }
                    if is_self {
                        let consistent = match (caller, target) {
                            (Caller::Missing, Target::Missing) => true,
                            (Caller::Deleted, Target::Deleted { .. }) => true,
                            (Caller::Revoked, Target::Active(_)) => true,
                            (Caller::Active(a), Target::Active(b)) => a == b,
                            _ => false,
                        };
                        if !consistent {
                            continue;
                        }
                    }
                    // The target is the last active owner only when it is an active owner and
                    // the caller is not another active owner (the use case counts the caller).
                    let can_be_last = action == DeleteUser
                        && target == Target::Active(OWNER)
                        && (is_self || caller != Caller::Active(OWNER));
                    let lasts: &[bool] = if can_be_last { &[false, true] } else { &[false] };
                    let acks: &[bool] = if untargeted { &[false] } else { &[false, true] };
                    for &last_owner in lasts {
                        for &acknowledged in acks {
                            out.push(Request {
                                action,
                                caller,
                                target,
                                is_self,
                                acknowledged,
                                last_owner,
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

fn describe(r: &Request) -> String {
    let role = |r: RoleName| match r {
        RoleName::Known(k) => k.as_str(),
        RoleName::Unknown => "unknown-role",
    };
    let caller = match r.caller {
        Caller::Missing => "no-profile".to_string(),
        Caller::Deleted => "tombstoned".to_string(),
        Caller::Revoked => "revoked".to_string(),
        Caller::Active(x) => role(x).to_string(),
    };
    let target = match r.target {
        Target::Missing => "missing".to_string(),
        Target::Active(x) => role(x).to_string(),
        Target::Deleted {
            role: x,
            deletion_finished: false,
        } => format!("{}(deleting)", role(x)),
        Target::Deleted {
            role: x,
            deletion_finished: true,
        } => format!("{}(deleted)", role(x)),
    };
    let answer = match decide(*r) {
        Decision::Allow => "allow".to_string(),
        Decision::Deny(d) => format!("{} {}", d.status(), d.code()),
    };
    let target = if r.last_owner {
        format!("{target}(last)")
    } else {
        target
    };
    format!(
        "{:<14} {:<12} {:<20} {:<5} {:<5} {}",
        r.action.as_str(),
        caller,
        target,
        if r.is_self { "self" } else { "-" },
        if r.acknowledged { "ack" } else { "-" },
        answer
    )
}

#[test]
fn every_combination_matches_the_spec() {
    let all = every_request();
    assert!(all.len() >= 894, "the matrix lost rows: {}", all.len());
    let mut failures = Vec::new();
    for req in &all {
        let expected = spec(*req).unwrap_or_else(|| panic!("no spec row covers {req:?}"));
        if decide(*req) != expected {
            failures.push(format!("{} (expected {expected:?})", describe(req)));
        }
    }
    assert!(
        failures.is_empty(),
        "policy disagrees with the spec table:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_spec_row_is_reached() {
    let all = every_request();
    for (i, row) in SPEC.iter().enumerate() {
        let reached = all.iter().any(|req| {
            SPEC.iter().position(|(c, a, t, s, k, _)| {
                caller_matches(*c, req.caller)
                    && action_matches(*a, req.action)
                    && target_matches(*t, req.target, req.last_owner)
                    && flag_matches(*s, req.is_self)
                    && flag_matches(*k, req.acknowledged)
            }) == Some(i)
        });
        assert!(reached, "spec row {i} is shadowed by an earlier row: {:?}", row.5);
    }
}

#[test]
fn the_matrix_snapshot_lists_every_combination() {
    let mut text = String::from(
        "# Every request the policy can see, and its answer. Generated by `UPDATE_POLICY_MATRIX=1 cargo test -p policy`.\n\
         # action       caller       target               self  ack   answer\n",
    );
    for req in every_request() {
        text.push_str(&describe(&req));
        text.push('\n');
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/matrix.txt");
    if std::env::var_os("UPDATE_POLICY_MATRIX").is_some() {
        std::fs::write(path, &text).expect("write matrix.txt");
    }
    let stored = std::fs::read_to_string(path).expect("shared/policy/matrix.txt exists");
    assert!(
        stored == text,
        "the policy's answers changed; review and regenerate shared/policy/matrix.txt with UPDATE_POLICY_MATRIX=1"
    );
}

fn req(action: Action, caller: Caller, target: Target, is_self: bool, acknowledged: bool) -> Request {
    Request {
        action,
        caller,
        target,
        is_self,
        acknowledged,
        last_owner: false,
    }
}

#[test]
fn the_last_active_owner_cannot_be_deleted() {
    for caller in [Caller::Active(ADMIN), Caller::Active(OWNER)] {
        for acknowledged in [false, true] {
            let mut r = req(DeleteUser, caller, Target::Active(OWNER), false, acknowledged);
            r.last_owner = true;
            assert_eq!(decide(r), Decision::Deny(LastOwner), "{caller:?}");
        }
    }
    // Self-deletion is refused first, with its own pointer to the profile's flow.
    let mut own = req(
        DeleteUser,
        Caller::Active(OWNER),
        Target::Active(OWNER),
        true,
        true,
    );
    own.last_owner = true;
    assert_eq!(decide(own), Decision::Deny(SelfDeletion));
}

#[test]
fn an_admin_cannot_delete_an_owner() {
    let d = decide(req(
        DeleteUser,
        Caller::Active(ADMIN),
        Target::Active(OWNER),
        false,
        true,
    ));
    assert_eq!(d, Decision::Deny(PrivilegedTarget));
}

#[test]
fn an_admin_cannot_delete_another_admin_even_with_acknowledgement() {
    let d = decide(req(
        DeleteUser,
        Caller::Active(ADMIN),
        Target::Active(ADMIN),
        false,
        true,
    ));
    assert_eq!(d, Decision::Deny(PrivilegedTarget));
}

#[test]
fn an_owner_deletes_an_admin_only_with_acknowledgement() {
    let without = decide(req(
        DeleteUser,
        Caller::Active(OWNER),
        Target::Active(ADMIN),
        false,
        false,
    ));
    let with = decide(req(
        DeleteUser,
        Caller::Active(OWNER),
        Target::Active(ADMIN),
        false,
        true,
    ));
    assert_eq!(without, Decision::Deny(AcknowledgementRequired));
    assert_eq!(with, Decision::Allow);
}

#[test]
fn nobody_deletes_themselves() {
    for role in [ADMIN, OWNER] {
        let d = decide(req(
            DeleteUser,
            Caller::Active(role),
            Target::Active(role),
            true,
            true,
        ));
        assert_eq!(d, Decision::Deny(SelfDeletion));
    }
}

#[test]
fn a_user_role_has_no_rights() {
    for action in ACTIONS {
        let d = decide(req(
            action,
            Caller::Active(USER),
            Target::Active(USER),
            false,
            false,
        ));
        assert_eq!(d, Decision::Deny(ForbiddenRole));
    }
}

#[test]
fn an_unknown_role_string_has_no_rights() {
    assert_eq!(RoleName::parse("Admin"), RoleName::Unknown);
    assert_eq!(RoleName::parse("superadmin"), RoleName::Unknown);
    let d = decide(req(
        SendMessage,
        Caller::Active(UNKNOWN),
        Target::Active(USER),
        false,
        false,
    ));
    assert_eq!(d, Decision::Deny(ForbiddenRole));
}

#[test]
fn a_target_with_an_unknown_role_is_treated_as_privileged() {
    let admin = decide(req(
        DeleteUser,
        Caller::Active(ADMIN),
        Target::Active(UNKNOWN),
        false,
        true,
    ));
    assert_eq!(admin, Decision::Deny(PrivilegedTarget));
    let owner = decide(req(
        DeleteUser,
        Caller::Active(OWNER),
        Target::Active(UNKNOWN),
        false,
        true,
    ));
    assert_eq!(owner, Decision::Allow);
}

#[test]
fn a_revoked_token_has_no_rights_whatever_the_role() {
    for action in ACTIONS {
        let d = decide(req(action, Caller::Revoked, Target::Active(USER), false, true));
        assert_eq!(d, Decision::Deny(Unauthenticated), "{action:?}");
    }
}

#[test]
fn a_deleted_caller_loses_access_at_once() {
    let d = decide(req(
        SendMessage,
        Caller::Deleted,
        Target::Active(USER),
        false,
        false,
    ));
    assert_eq!(d, Decision::Deny(Unauthenticated));
}

#[test]
fn a_second_delete_joins_a_running_deletion_but_not_a_finished_one() {
    let running = Target::Deleted {
        role: USER,
        deletion_finished: false,
    };
    let finished = Target::Deleted {
        role: USER,
        deletion_finished: true,
    };
    assert_eq!(
        decide(req(DeleteUser, Caller::Active(ADMIN), running, false, false)),
        Decision::Allow
    );
    assert_eq!(
        decide(req(DeleteUser, Caller::Active(ADMIN), finished, false, false)),
        Decision::Deny(UserDeleted)
    );
}

#[test]
fn nobody_messages_a_deleted_user() {
    let t = Target::Deleted {
        role: USER,
        deletion_finished: false,
    };
    assert_eq!(
        decide(req(SendMessage, Caller::Active(OWNER), t, false, false)),
        Decision::Deny(UserDeleted)
    );
}

#[test]
fn every_denial_has_a_distinct_code_and_an_http_status() {
    let all = [
        Unauthenticated,
        ForbiddenRole,
        SelfDeletion,
        PrivilegedTarget,
        UserNotFound,
        UserDeleted,
        AcknowledgementRequired,
        LastOwner,
    ];
    let codes: std::collections::HashSet<_> = all.iter().map(|d| d.code()).collect();
    assert_eq!(codes.len(), all.len());
    for d in all {
        assert!((400..500).contains(&d.status()));
        assert!(!d.explain().is_empty());
    }
}
