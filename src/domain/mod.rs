//! Pure rules of the product, free of I/O: roles, module policy, email addresses and domains,
//! and the validated shape of an invite request.

pub mod email;
pub mod invite;
pub mod policy;
pub mod roles;

pub use email::{DomainRule, EmailAddress};
pub use policy::{AllowedUsers, Inviter, ModuleSettings, Refusal, UseLimit};
pub use roles::{EntryPermission, InviteeRole, MediaType, PlatformRole};
