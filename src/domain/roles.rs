//! Platform roles, entry permissions, media types and the invitee roles each one offers.

use std::fmt;

/// Declares a closed set of string identifiers with `parse`/`as_str`, so the wire spelling of each
/// value lives in exactly one place.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vmeta])* #[doc = concat!("`", $text, "`")] $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The identifier as the platform spells it.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the platform's spelling; anything else is `None`.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

string_enum! {
    /// The platform (application) role of a user, lowest to highest; the derived order is the
    /// privilege order, so "at least" checks are plain comparisons.
    PlatformRole {
        Anonymous = "anonymousRole",
        Viewer = "viewerRole",
        PrivateOnly = "privateOnlyRole",
        Admin = "adminRole",
        UnmoderatedAdmin = "unmoderatedAdminRole",
    }
}

string_enum! {
    /// The inviter's permission on the media entry, as the platform backend reports it.
    EntryPermission {
        Owner = "owner",
        CoOwner = "co_owner",
        CoEditor = "co_editor",
        CoPublisher = "co_publisher",
        CoViewer = "co_viewer",
        None = "none",
    }
}

impl EntryPermission {
    /// Owners and the editing/publishing collaborators may invite; viewers may not.
    pub fn may_invite(self) -> bool {
        matches!(
            self,
            Self::Owner | Self::CoOwner | Self::CoEditor | Self::CoPublisher
        )
    }

    /// Only owners assign moderators (the platform's rule for webcast moderators).
    pub fn may_grant_moderator(self) -> bool {
        matches!(self, Self::Owner | Self::CoOwner)
    }
}

string_enum! {
    /// The kind of media entry an invite opens.
    MediaType {
        Room = "room",
        Live = "live",
        Video = "video",
        Audio = "audio",
        Document = "document",
        Image = "image",
        Quiz = "quiz",
    }
}

string_enum! {
    /// The role the invitee receives on the entry.
    InviteeRole {
        Viewer = "viewer",
        Speaker = "speaker",
        Moderator = "moderator",
    }
}

impl MediaType {
    /// The invitee roles this media type offers: interactive sessions have speakers and
    /// moderators, everything else is watched.
    pub fn roles(self) -> &'static [InviteeRole] {
        match self {
            Self::Room | Self::Live => InviteeRole::ALL,
            _ => &[InviteeRole::Viewer],
        }
    }

    /// Whether `role` can be granted on this media type.
    pub fn offers(self, role: InviteeRole) -> bool {
        self.roles().contains(&role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_roles_are_ordered_by_privilege() {
        assert!(PlatformRole::Anonymous < PlatformRole::Viewer);
        assert!(PlatformRole::Viewer < PlatformRole::PrivateOnly);
        assert!(PlatformRole::PrivateOnly < PlatformRole::Admin);
        assert!(PlatformRole::Admin < PlatformRole::UnmoderatedAdmin);
    }

    #[test]
    fn spellings_round_trip() {
        for role in PlatformRole::ALL {
            assert_eq!(PlatformRole::parse(role.as_str()), Some(*role));
        }
        for t in MediaType::ALL {
            assert_eq!(MediaType::parse(t.as_str()), Some(*t));
        }
        assert_eq!(PlatformRole::parse("adminrole"), None);
        assert_eq!(MediaType::parse("Room"), None);
    }

    #[test]
    fn roles_by_media_type() {
        let cases = [
            (MediaType::Room, InviteeRole::Moderator, true),
            (MediaType::Live, InviteeRole::Speaker, true),
            (MediaType::Video, InviteeRole::Viewer, true),
            (MediaType::Video, InviteeRole::Moderator, false),
            (MediaType::Quiz, InviteeRole::Speaker, false),
            (MediaType::Document, InviteeRole::Viewer, true),
        ];
        for (media, role, offered) in cases {
            assert_eq!(media.offers(role), offered, "{media} {role}");
        }
    }

    #[test]
    fn permissions() {
        let cases = [
            (EntryPermission::Owner, true, true),
            (EntryPermission::CoOwner, true, true),
            (EntryPermission::CoEditor, true, false),
            (EntryPermission::CoPublisher, true, false),
            (EntryPermission::CoViewer, false, false),
            (EntryPermission::None, false, false),
        ];
        for (p, invite, moderator) in cases {
            assert_eq!(p.may_invite(), invite, "{p}");
            assert_eq!(p.may_grant_moderator(), moderator, "{p}");
        }
    }
}
