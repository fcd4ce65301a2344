//! `[tenants.X.invitetomedia]`: the admin console's table, spelled as admins know it, parsed
//! straight into [`ModuleSettings`]. Its defaults are `ModuleSettings::default()`, the one
//! place they are written in code.

use std::collections::HashSet;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::policy::MAX_LINK_DURATION_MINUTES;
use crate::domain::{AllowedUsers, DomainRule, ModuleSettings, PlatformRole, UseLimit};

use super::string_or_list;

/// The table's keys as admins spell them. The `config` crate lowercases keys (environment
/// overrides arrive upper-case), so errors map them back through this list.
pub const MODULE_KEYS: [&str; 9] = [
    "enable",
    "LinkDuration",
    "LinkReusability",
    "AllowedUsers",
    "inviteEmailTemplate",
    "RestrictNewUserDomains",
    "AllowOpenLinks",
    "RequireEmailCode",
    "codeEmailTemplate",
];

/// The table as configuration spells it (keys lowercased by the loader).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ModuleTable {
    enable: bool,
    #[serde(rename = "linkduration", deserialize_with = "link_duration")]
    link_duration: u32,
    #[serde(rename = "linkreusability", deserialize_with = "use_limit")]
    link_reusability: UseLimit,
    #[serde(rename = "allowedusers", deserialize_with = "allowed_users")]
    allowed_users: AllowedUsers,
    #[serde(rename = "inviteemailtemplate", deserialize_with = "template_name")]
    invite_email_template: String,
    #[serde(rename = "restrictnewuserdomains", deserialize_with = "domains")]
    restrict_new_user_domains: Vec<DomainRule>,
    #[serde(rename = "allowopenlinks")]
    allow_open_links: bool,
    #[serde(rename = "requireemailcode")]
    require_email_code: bool,
    #[serde(rename = "codeemailtemplate", deserialize_with = "template_name")]
    code_email_template: String,
}

impl Default for ModuleTable {
    fn default() -> Self {
        let d = ModuleSettings::default();
        Self {
            enable: d.enable,
            link_duration: d.link_duration,
            link_reusability: d.link_reusability,
            allowed_users: d.allowed_users,
            invite_email_template: d.invite_email_template,
            restrict_new_user_domains: d.restrict_new_user_domains,
            allow_open_links: d.allow_open_links,
            require_email_code: d.require_email_code,
            code_email_template: d.code_email_template,
        }
    }
}

impl<'de> Deserialize<'de> for ModuleSettings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let t = ModuleTable::deserialize(d)?;
        Ok(Self {
            enable: t.enable,
            link_duration: t.link_duration,
            link_reusability: t.link_reusability,
            allowed_users: t.allowed_users,
            invite_email_template: t.invite_email_template,
            restrict_new_user_domains: t.restrict_new_user_domains,
            allow_open_links: t.allow_open_links,
            require_email_code: t.require_email_code,
            code_email_template: t.code_email_template,
        })
    }
}

/// The table as `GET /v1/settings` and `check-config` show it.
#[derive(Serialize)]
#[allow(non_snake_case)]
struct ModuleView<'a> {
    enable: bool,
    LinkDuration: u32,
    LinkReusability: i64,
    AllowedUsers: AllowedUsersView<'a>,
    inviteEmailTemplate: &'a str,
    RestrictNewUserDomains: Vec<&'a str>,
    AllowOpenLinks: bool,
    RequireEmailCode: bool,
    codeEmailTemplate: &'a str,
}

#[derive(Serialize)]
#[serde(untagged)]
enum AllowedUsersView<'a> {
    Role(&'a str),
    Listed {
        users: Vec<&'a str>,
        groups: Vec<&'a str>,
    },
}

impl Serialize for ModuleSettings {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ModuleView {
            enable: self.enable,
            LinkDuration: self.link_duration,
            LinkReusability: self.link_reusability.as_i64(),
            AllowedUsers: match &self.allowed_users {
                AllowedUsers::MinimalRole(role) => AllowedUsersView::Role(role.as_str()),
                AllowedUsers::Listed { users, groups } => AllowedUsersView::Listed {
                    users: sorted(users),
                    groups: sorted(groups),
                },
            },
            inviteEmailTemplate: &self.invite_email_template,
            RestrictNewUserDomains: self
                .restrict_new_user_domains
                .iter()
                .map(DomainRule::as_str)
                .collect(),
            AllowOpenLinks: self.allow_open_links,
            RequireEmailCode: self.require_email_code,
            codeEmailTemplate: &self.code_email_template,
        }
        .serialize(s)
    }
}

fn sorted(set: &HashSet<String>) -> Vec<&str> {
    let mut v: Vec<&str> = set.iter().map(String::as_str).collect();
    v.sort_unstable();
    v
}

fn link_duration<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let minutes = i64::deserialize(d)?;
    u32::try_from(minutes)
        .ok()
        .filter(|m| (1..=MAX_LINK_DURATION_MINUTES).contains(m))
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{minutes}: must be between 1 and {MAX_LINK_DURATION_MINUTES} minutes"
            ))
        })
}

fn use_limit<'de, D: Deserializer<'de>>(d: D) -> Result<UseLimit, D::Error> {
    let uses = i64::deserialize(d)?;
    UseLimit::from_i64(uses).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "{uses}: must be 1, -1 (unlimited) or a number of uses above 1"
        ))
    })
}

fn allowed_users<'de, D: Deserializer<'de>>(d: D) -> Result<AllowedUsers, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Table {
        Role(String),
        Listed {
            #[serde(default, deserialize_with = "string_or_list")]
            users: Vec<String>,
            #[serde(default, deserialize_with = "string_or_list")]
            groups: Vec<String>,
        },
    }
    let shape = "must be privateOnlyRole, adminRole, unmoderatedAdminRole or { users = [...], groups = [...] }";
    match Table::deserialize(d).map_err(|_| serde::de::Error::custom(shape))? {
        Table::Role(role) => match PlatformRole::parse(&role) {
            Some(
                r @ (PlatformRole::PrivateOnly
                | PlatformRole::Admin
                | PlatformRole::UnmoderatedAdmin),
            ) => Ok(AllowedUsers::MinimalRole(r)),
            _ => Err(serde::de::Error::custom(format!("{role:?}: {shape}"))),
        },
        Table::Listed { users, groups } if users.is_empty() && groups.is_empty() => Err(
            serde::de::Error::custom("must name at least one user or group"),
        ),
        Table::Listed { users, groups } => Ok(AllowedUsers::Listed {
            users: users.into_iter().collect(),
            groups: groups.into_iter().collect(),
        }),
    }
}

fn template_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let name = String::deserialize(d)?.trim().to_owned();
    if name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(name)
    } else {
        Err(serde::de::Error::custom(format!(
            "{name:?}: must be a template name of [A-Za-z0-9_-]"
        )))
    }
}

fn domains<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<DomainRule>, D::Error> {
    string_or_list(d)?
        .iter()
        .map(|domain| {
            DomainRule::parse(domain)
                .map_err(|problem| serde::de::Error::custom(format!("{domain:?}: {problem}")))
        })
        .collect()
}
