//! The one place that decides who may do what to whom in the admin Users tab.
//!
//! Everything here is pure: the caller's and the target's state are read by the
//! use cases (from the profiles table, on every request) and handed in; the answer
//! is a [`Decision`]. Handlers never re-implement any of these rules.
//!
//! The rules (`docs/DESIGN.md`, "Rules"):
//! - only callers whose profile role is `admin` or `owner` may act; a caller with no
//!   profile, a tombstoned profile or an unknown role string has no rights;
//! - nobody deletes their own account here;
//! - an `admin` cannot delete an `admin` or an `owner`; an `owner` can, but only with
//!   the explicit acknowledgement flag;
//! - a target whose role string this version does not know is treated as privileged
//!   (fail closed): only an owner with the acknowledgement can delete it;
//! - the last active owner cannot be deleted;
//! - the user list and the audit trail have no single target: any admin or owner may read them.

/// A role as stored in a profile. Anything else is [`RoleName::Unknown`] and grants nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    User,
    Admin,
    Owner,
}

impl Role {
    /// Parses the exact stored spelling (`user`, `admin`, `owner`); anything else is `None`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }
}

/// A profile's role as far as the policy can tell: a known role or an unknown string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoleName {
    Known(Role),
    Unknown,
}

impl RoleName {
    pub fn parse(s: &str) -> RoleName {
        Role::parse(s).map_or(RoleName::Unknown, RoleName::Known)
    }

    fn is_staff(self) -> bool {
        matches!(self, RoleName::Known(Role::Admin | Role::Owner))
    }

    /// Admins, owners and roles this version does not know are privileged targets.
    fn is_privileged_target(self) -> bool {
        !matches!(self, RoleName::Known(Role::User))
    }
}

/// The caller, as read from their own profile on this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// No `sub` claim, or no profile for it.
    Missing,
    /// The caller's profile is a tombstone, or a deletion job for them exists.
    Deleted,
    /// The caller's token was issued before their sessions were revoked (signed out or
    /// disabled in Cognito): it no longer speaks for them.
    Revoked,
    Active(RoleName),
}

/// The target user, as read from the profiles table (and the deletion job, if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Missing,
    /// A tombstone. `deletion_finished` is false while the deletion job is still running,
    /// in which case `role` is the role captured when the job started.
    Deleted {
        role: RoleName,
        deletion_finished: bool,
    },
    Active(RoleName),
}

/// What the caller wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `POST /admin/users/{id}/messages`
    SendMessage,
    /// `GET /admin/users/{id}/messages`
    ViewMessages,
    /// `DELETE /admin/users/{id}`
    DeleteUser,
    /// `GET /admin/users/{id}/deletion` and the deletion preview.
    ViewDeletion,
    /// `GET /admin/users` (no single target).
    ListUsers,
    /// `GET /admin/audit` and `GET /admin/erasures`: the audit trail (no single target).
    ReadAudit,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::SendMessage => "send_message",
            Action::ViewMessages => "view_messages",
            Action::DeleteUser => "delete_user",
            Action::ViewDeletion => "view_deletion",
            Action::ListUsers => "list_users",
            Action::ReadAudit => "read_audit",
        }
    }
}

/// Everything the policy needs for one decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub action: Action,
    pub caller: Caller,
    pub target: Target,
    /// The caller and the target are the same user id.
    pub is_self: bool,
    /// `"acknowledge_privileged": true` was in the request.
    pub acknowledged: bool,
    /// The target is an active owner and no other active owner exists (the use case counts
    /// the caller's own fresh profile in). Only deletions read it.
    pub last_owner: bool,
}

/// Why a request is refused. Each maps to one stable error code and HTTP status
/// (`docs/DESIGN.md`, "Errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Denial {
    /// 401 `unauthenticated`: no caller, no profile, a deleted caller, or a revoked token.
    Unauthenticated,
    /// 403 `forbidden_role`: the caller is not an admin or owner.
    ForbiddenRole,
    /// 403 `self_deletion`: use the account-deletion flow in the profile instead.
    SelfDeletion,
    /// 403 `privileged_target`: only an owner may delete an admin or owner.
    PrivilegedTarget,
    /// 404 `user_not_found`
    UserNotFound,
    /// 410 `user_deleted`: the target is a tombstone.
    UserDeleted,
    /// 422 `acknowledgement_required`: an owner deleting an admin/owner must acknowledge it.
    AcknowledgementRequired,
    /// 409 `last_owner`: the last active owner cannot be deleted.
    LastOwner,
}

impl Denial {
    pub fn code(self) -> &'static str {
        match self {
            Denial::Unauthenticated => "unauthenticated",
            Denial::ForbiddenRole => "forbidden_role",
            Denial::SelfDeletion => "self_deletion",
            Denial::PrivilegedTarget => "privileged_target",
            Denial::UserNotFound => "user_not_found",
            Denial::UserDeleted => "user_deleted",
            Denial::AcknowledgementRequired => "acknowledgement_required",
            Denial::LastOwner => "last_owner",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            Denial::Unauthenticated => 401,
            Denial::ForbiddenRole | Denial::SelfDeletion | Denial::PrivilegedTarget => 403,
            Denial::UserNotFound => 404,
            Denial::UserDeleted => 410,
            Denial::LastOwner => 409,
            Denial::AcknowledgementRequired => 422,
        }
    }

    /// A sentence for the problem+json `detail`.
    pub fn explain(self) -> &'static str {
        match self {
            Denial::Unauthenticated => "The request is not from a signed-in user with an active profile.",
            Denial::ForbiddenRole => "Only admins and owners may use this action.",
            Denial::SelfDeletion => {
                "You cannot delete your own account here. Use the account-deletion flow in your profile instead."
            }
            Denial::PrivilegedTarget => "Only an owner can delete an admin or an owner.",
            Denial::UserNotFound => "There is no user with this id.",
            Denial::UserDeleted => "This user has been deleted.",
            Denial::AcknowledgementRequired => {
                "Deleting an admin or owner needs \"acknowledge_privileged\": true in the request."
            }
            Denial::LastOwner => {
                "This is the last active owner, who cannot be deleted. Make another user an owner first."
            }
        }
    }
}

/// The answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(Denial),
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        self == Decision::Allow
    }
}

/// Decides one request. The order of the checks is part of the contract:
/// who is asking, then whether they may act at all, then the target, then the
/// deletion-specific rules.
pub fn decide(req: Request) -> Decision {
    use Decision::{Allow, Deny};

    let caller_role = match req.caller {
        Caller::Missing | Caller::Deleted | Caller::Revoked => return Deny(Denial::Unauthenticated),
        Caller::Active(role) => role,
    };
    if !caller_role.is_staff() {
        return Deny(Denial::ForbiddenRole);
    }
    if matches!(req.action, Action::ListUsers | Action::ReadAudit) {
        return Allow;
    }

    match req.action {
        Action::SendMessage | Action::ViewMessages => match req.target {
            Target::Missing => Deny(Denial::UserNotFound),
            Target::Deleted { .. } => Deny(Denial::UserDeleted),
            Target::Active(_) => Allow,
        },
        Action::ViewDeletion => match req.target {
            Target::Missing => Deny(Denial::UserNotFound),
            Target::Deleted { .. } | Target::Active(_) => Allow,
        },
        Action::DeleteUser => {
            let target_role = match req.target {
                Target::Missing => return Deny(Denial::UserNotFound),
                Target::Deleted {
                    deletion_finished: true,
                    ..
                } => return Deny(Denial::UserDeleted),
                // A deletion still running: the request joins it, under the same rules
                // as if it were starting it.
                Target::Deleted {
                    role,
                    deletion_finished: false,
                } => role,
                Target::Active(role) => role,
            };
            if req.is_self {
                return Deny(Denial::SelfDeletion);
            }
            if req.last_owner {
                return Deny(Denial::LastOwner);
            }
            if target_role.is_privileged_target() {
                match caller_role {
                    RoleName::Known(Role::Owner) if req.acknowledged => Allow,
                    RoleName::Known(Role::Owner) => Deny(Denial::AcknowledgementRequired),
                    _ => Deny(Denial::PrivilegedTarget),
                }
            } else {
                Allow
            }
        }
        Action::ListUsers | Action::ReadAudit => Allow,
    }
}

#[cfg(test)]
mod tests;
