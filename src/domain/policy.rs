//! The invitetomedia module settings of one tenant and the rules they impose on an invite.

use std::collections::HashSet;
use std::num::NonZeroU32;

use super::email::{DomainRule, EmailAddress};
use super::roles::{EntryPermission, InviteeRole, PlatformRole};

/// Longest link lifetime an admin may configure: one year, in minutes.
pub const MAX_LINK_DURATION_MINUTES: u32 = 525_600;

/// How many distinct devices may redeem a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UseLimit {
    /// At most this many devices.
    Limited(NonZeroU32),
    /// Any number of redemptions; only a counter is kept.
    Unlimited,
}

impl UseLimit {
    /// Parses the admin/wire form: `-1` unlimited, `N >= 1` that many uses.
    pub fn from_i64(value: i64) -> Option<Self> {
        match value {
            -1 => Some(Self::Unlimited),
            n if n >= 1 => u32::try_from(n)
                .ok()
                .and_then(NonZeroU32::new)
                .map(Self::Limited),
            _ => None,
        }
    }

    /// The wire form: `-1` for unlimited.
    pub fn as_i64(self) -> i64 {
        match self {
            Self::Limited(n) => i64::from(n.get()),
            Self::Unlimited => -1,
        }
    }

    /// Whether `self` allows no more than `ceiling` does.
    pub fn within(self, ceiling: UseLimit) -> bool {
        match (self, ceiling) {
            (_, Self::Unlimited) => true,
            (Self::Unlimited, Self::Limited(_)) => false,
            (Self::Limited(a), Self::Limited(b)) => a <= b,
        }
    }
}

/// Who may create invites for a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedUsers {
    /// Any user whose platform role is at least this one.
    MinimalRole(PlatformRole),
    /// Only these users, or members of these groups.
    Listed {
        /// User ids allowed to invite.
        users: HashSet<String>,
        /// Group ids whose members may invite.
        groups: HashSet<String>,
    },
}

/// The inviter, as the platform backend describes them in a create request.
#[derive(Debug, Clone)]
pub struct Inviter {
    /// The inviter's user id on the platform.
    pub id: String,
    /// The inviter's platform role.
    pub role: PlatformRole,
    /// Groups the inviter belongs to.
    pub groups: Vec<String>,
    /// The inviter's permission on the media entry.
    pub permission: EntryPermission,
}

/// Why the policy refuses an inviter or a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `AllowedUsers` does not include the inviter.
    InviterNotAllowed,
    /// The inviter is not an owner or editing collaborator of the entry.
    NotMediaCollaborator,
    /// Only owners may grant `moderator`.
    RoleNotGrantable,
}

/// The validated `[tenants.X.invitetomedia]` table.
#[derive(Debug, Clone)]
pub struct ModuleSettings {
    /// Module on/off.
    pub enable: bool,
    /// Longest (and default) link lifetime, minutes.
    pub link_duration: u32,
    /// Most (and default) uses of a link.
    pub link_reusability: UseLimit,
    /// Who may invite.
    pub allowed_users: AllowedUsers,
    /// Template used for invite emails; empty: email cannot be sent.
    pub invite_email_template: String,
    /// Domains whose people sign in through SSO and cannot be invited as new users.
    pub restrict_new_user_domains: Vec<DomainRule>,
    /// Whether links not bound to an email may be created.
    pub allow_open_links: bool,
    /// Each new device of an email-bound link needs a one-time code before its first use.
    pub require_email_code: bool,
    /// Template of the one-time code email.
    pub code_email_template: String,
}

impl Default for ModuleSettings {
    fn default() -> Self {
        Self {
            enable: false,
            link_duration: 1440,
            link_reusability: UseLimit::Limited(NonZeroU32::MIN),
            allowed_users: AllowedUsers::MinimalRole(PlatformRole::PrivateOnly),
            invite_email_template: String::new(),
            restrict_new_user_domains: Vec::new(),
            allow_open_links: false,
            require_email_code: false,
            code_email_template: "code".to_owned(),
        }
    }
}

impl ModuleSettings {
    /// Whether invite emails can be sent at all.
    pub fn email_enabled(&self) -> bool {
        !self.invite_email_template.is_empty()
    }

    /// Whether the code template must exist: codes are required, or invite emails are sent
    /// (whose recipients may need a code to move the link to another device).
    pub fn needs_code_template(&self) -> bool {
        self.require_email_code || self.email_enabled()
    }

    /// Checks that `inviter` may give `role` on an entry of `media_type`. The role must already
    /// be one the media type offers. The collaborator permission never overrides the
    /// application role: both `AllowedUsers` and the entry permission must agree.
    pub fn authorize(&self, inviter: &Inviter, role: InviteeRole) -> Result<(), Refusal> {
        let allowed = match &self.allowed_users {
            AllowedUsers::MinimalRole(min) => inviter.role >= *min,
            AllowedUsers::Listed { users, groups } => {
                users.contains(&inviter.id) || inviter.groups.iter().any(|g| groups.contains(g))
            }
        };
        if !allowed {
            return Err(Refusal::InviterNotAllowed);
        }
        if !inviter.permission.may_invite() {
            return Err(Refusal::NotMediaCollaborator);
        }
        if role == InviteeRole::Moderator && !inviter.permission.may_grant_moderator() {
            return Err(Refusal::RoleNotGrantable);
        }
        Ok(())
    }

    /// The lifetime of a new link: the request's, which may not exceed `LinkDuration`, or
    /// `LinkDuration` itself. Never clamped: asking for more is an error.
    pub fn duration_minutes(&self, requested: Option<i64>) -> Result<u32, String> {
        match requested {
            None => Ok(self.link_duration),
            Some(m) if m >= 1 && m <= i64::from(self.link_duration) => Ok(m as u32),
            Some(_) => Err(format!(
                "must be between 1 and {} (LinkDuration)",
                self.link_duration
            )),
        }
    }

    /// The use limit of a new link: the request's, which may not exceed `LinkReusability`, or
    /// `LinkReusability` itself.
    pub fn use_limit(&self, requested: Option<i64>) -> Result<UseLimit, String> {
        let Some(value) = requested else {
            return Ok(self.link_reusability);
        };
        let ceiling = self.link_reusability;
        match UseLimit::from_i64(value) {
            Some(limit) if limit.within(ceiling) => Ok(limit),
            _ => Err(match ceiling {
                UseLimit::Unlimited => "must be -1 (unlimited) or at least 1".to_owned(),
                UseLimit::Limited(n) => format!("must be between 1 and {n} (LinkReusability)"),
            }),
        }
    }

    /// Whether the address belongs to a domain whose people must sign in through SSO.
    pub fn is_restricted(&self, email: &EmailAddress) -> bool {
        self.restrict_new_user_domains
            .iter()
            .any(|rule| rule.matches(email.domain()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inviter(role: PlatformRole, permission: EntryPermission) -> Inviter {
        Inviter {
            id: "prof1".into(),
            role,
            groups: vec!["faculty".into()],
            permission,
        }
    }

    #[test]
    fn minimal_role_and_permission_both_apply() {
        let settings = ModuleSettings::default();
        let cases = [
            (
                PlatformRole::PrivateOnly,
                EntryPermission::Owner,
                InviteeRole::Moderator,
                Ok(()),
            ),
            (
                PlatformRole::Admin,
                EntryPermission::CoEditor,
                InviteeRole::Speaker,
                Ok(()),
            ),
            (
                PlatformRole::Viewer,
                EntryPermission::Owner,
                InviteeRole::Viewer,
                Err(Refusal::InviterNotAllowed),
            ),
            (
                PlatformRole::UnmoderatedAdmin,
                EntryPermission::CoViewer,
                InviteeRole::Viewer,
                Err(Refusal::NotMediaCollaborator),
            ),
            (
                PlatformRole::Admin,
                EntryPermission::None,
                InviteeRole::Viewer,
                Err(Refusal::NotMediaCollaborator),
            ),
            (
                PlatformRole::Admin,
                EntryPermission::CoPublisher,
                InviteeRole::Moderator,
                Err(Refusal::RoleNotGrantable),
            ),
            (
                PlatformRole::Admin,
                EntryPermission::CoOwner,
                InviteeRole::Moderator,
                Ok(()),
            ),
        ];
        for (role, permission, invitee, expected) in cases {
            assert_eq!(
                settings.authorize(&inviter(role, permission), invitee),
                expected,
                "{role} {permission} {invitee}"
            );
        }
    }

    #[test]
    fn listed_users_or_groups() {
        let settings = ModuleSettings {
            allowed_users: AllowedUsers::Listed {
                users: ["alice".to_owned()].into(),
                groups: ["faculty".to_owned()].into(),
            },
            ..ModuleSettings::default()
        };
        let mut i = inviter(PlatformRole::Viewer, EntryPermission::Owner);
        assert_eq!(settings.authorize(&i, InviteeRole::Viewer), Ok(()));
        i.groups = vec!["students".into()];
        assert_eq!(
            settings.authorize(&i, InviteeRole::Viewer),
            Err(Refusal::InviterNotAllowed)
        );
        i.id = "alice".into();
        assert_eq!(settings.authorize(&i, InviteeRole::Viewer), Ok(()));
    }

    #[test]
    fn durations_may_be_shorter_never_longer() {
        let settings = ModuleSettings {
            link_duration: 60,
            ..ModuleSettings::default()
        };
        assert_eq!(settings.duration_minutes(None), Ok(60));
        assert_eq!(settings.duration_minutes(Some(1)), Ok(1));
        assert_eq!(settings.duration_minutes(Some(60)), Ok(60));
        assert!(settings.duration_minutes(Some(61)).is_err());
        assert!(settings.duration_minutes(Some(0)).is_err());
        assert!(settings.duration_minutes(Some(-5)).is_err());
    }

    #[test]
    fn use_limits_may_be_fewer_never_more() {
        let three = ModuleSettings {
            link_reusability: UseLimit::from_i64(3).unwrap(),
            ..ModuleSettings::default()
        };
        let unlimited = ModuleSettings {
            link_reusability: UseLimit::Unlimited,
            ..ModuleSettings::default()
        };
        let cases = [
            (&three, None, Some(3)),
            (&three, Some(1), Some(1)),
            (&three, Some(3), Some(3)),
            (&three, Some(4), None),
            (&three, Some(-1), None),
            (&three, Some(0), None),
            (&three, Some(-2), None),
            (&unlimited, None, Some(-1)),
            (&unlimited, Some(-1), Some(-1)),
            (&unlimited, Some(1000), Some(1000)),
            (&unlimited, Some(0), None),
        ];
        for (settings, requested, expected) in cases {
            let got = settings.use_limit(requested).ok().map(UseLimit::as_i64);
            assert_eq!(
                got, expected,
                "{requested:?} under {:?}",
                settings.link_reusability
            );
        }
    }
}
