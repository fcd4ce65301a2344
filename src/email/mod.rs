//! Invite emails: templates (see [`template`]) and the transports that send them — `log`
//! (logs that a message was sent: the invite id and the masked address, never the content) and `http` (a JSON POST to a
//! relay, retried on 5xx, connection errors and timeouts).

pub mod template;

use std::collections::HashMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde::Serialize;

use crate::settings::{ConfigError, EmailTransportKind, Settings};
pub use template::{EmailTemplate, Rendered, TemplateValues};

/// Tries of one message, in all.
const MAX_TRIES: usize = 3;
/// Pauses between tries; their sum stays within 500 ms.
const BACKOFF: [Duration; MAX_TRIES - 1] = [Duration::from_millis(100), Duration::from_millis(300)];

/// One message to one invitee.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    /// Recipient address.
    pub to_email: &'a str,
    /// Recipient display name.
    pub to_name: String,
    /// The rendered content.
    pub content: Rendered,
    /// The invite id, logged in the token's place.
    pub jti: &'a str,
}

/// Why a message was not sent; the text is for the platform to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError(pub String);

/// The relay's JSON body.
#[derive(Serialize)]
struct RelayBody<'a> {
    from: &'a str,
    to: [RelayRecipient<'a>; 1],
    subject: &'a str,
    html: &'a str,
    text: &'a str,
}

#[derive(Serialize)]
struct RelayRecipient<'a> {
    email: &'a str,
    name: &'a str,
}

enum Transport {
    Log,
    Http {
        client: reqwest::Client,
        url: String,
        bearer: String,
        timeout: Duration,
    },
}

/// Templates by name and the configured transport.
pub struct Mailer {
    from: String,
    templates: HashMap<String, EmailTemplate>,
    transport: Transport,
}

impl std::fmt::Debug for Mailer {
    // The relay's token never prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("templates", &self.templates.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// Loads every template a tenant names and prepares the transport. A missing or invalid
    /// template is a configuration error naming the tenant key, the file and the problem.
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let mut templates = HashMap::new();
        for (id, tenant) in &settings.tenants {
            let module = &tenant.invitetomedia;
            // The code template must exist where codes are required or invite emails go out;
            // elsewhere a missing one only makes codes unavailable (422 email_disabled).
            for (key, name, required) in [
                ("inviteEmailTemplate", &module.invite_email_template, true),
                (
                    "codeEmailTemplate",
                    &module.code_email_template,
                    module.needs_code_template(),
                ),
            ] {
                let name = name.trim();
                if name.is_empty() && required && key == "codeEmailTemplate" {
                    return Err(ConfigError::new(
                        format!("tenants.{id}.invitetomedia.{key}"),
                        "must name a template: RequireEmailCode is on or inviteEmailTemplate is set",
                    ));
                }
                if name.is_empty() || templates.contains_key(name) {
                    continue;
                }
                match EmailTemplate::load(&settings.email.templates_dir, name) {
                    Ok(template) => {
                        templates.insert(name.to_owned(), template);
                    }
                    Err(problem) if required => {
                        return Err(ConfigError::new(
                            format!("tenants.{id}.invitetomedia.{key}"),
                            problem,
                        ));
                    }
                    Err(_) => {}
                }
            }
        }
        let transport = match settings.email.transport {
            EmailTransportKind::Log => Transport::Log,
            EmailTransportKind::Http => {
                let timeout = Duration::from_millis(settings.email.http.timeout_ms);
                let client = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .timeout(timeout)
                    .connect_timeout(timeout)
                    .build()
                    .map_err(|e| ConfigError::new("email.http", e.to_string()))?;
                Transport::Http {
                    client,
                    url: settings.email.http.url.expose().to_owned(),
                    bearer: settings.email.http.bearer_token.expose().to_owned(),
                    timeout,
                }
            }
        };
        Ok(Self {
            from: settings.email.from.clone(),
            templates,
            transport,
        })
    }

    /// The digests of every loaded template, in name order.
    pub fn template_digests(&self) -> Vec<&[u8]> {
        let mut named: Vec<(&String, &EmailTemplate)> = self.templates.iter().collect();
        named.sort_by_key(|(name, _)| *name);
        named.into_iter().map(|(_, t)| t.digest()).collect()
    }

    /// The loaded template of this name.
    pub fn template(&self, name: &str) -> Option<&EmailTemplate> {
        self.templates.get(name)
    }

    /// Sends one message.
    pub async fn send(&self, message: &Message<'_>) -> Result<(), SendError> {
        match &self.transport {
            Transport::Log => {
                // Subject and text carry the invitee's names and the link: never logged. The
                // address only masked.
                tracing::info!(
                    jti = %message.jti,
                    to = %mask_address(message.to_email),
                    language = %message.content.language,
                    "invite email (log transport)"
                );
                Ok(())
            }
            Transport::Http {
                client,
                url,
                bearer,
                timeout,
            } => {
                let body = RelayBody {
                    from: &self.from,
                    to: [RelayRecipient {
                        email: message.to_email,
                        name: &message.to_name,
                    }],
                    subject: &message.content.subject,
                    html: &message.content.html,
                    text: &message.content.text,
                };
                let mut last = String::new();
                for attempt in 0..MAX_TRIES {
                    if attempt > 0 {
                        tokio::time::sleep(BACKOFF[attempt - 1]).await;
                    }
                    let response = client
                        .post(url)
                        .bearer_auth(bearer)
                        .json(&body)
                        .send()
                        .await;
                    match response {
                        Ok(r) if r.status().is_success() => {
                            tracing::info!(jti = %message.jti, tries = attempt + 1, "invite email sent");
                            return Ok(());
                        }
                        Ok(r) if r.status().is_server_error() => {
                            last = format!("the email relay answered {}", describe(r.status()))
                        }
                        Ok(r) => {
                            let reason = format!(
                                "the email relay refused the message: {}",
                                describe(r.status())
                            );
                            tracing::warn!(jti = %message.jti, status = r.status().as_u16(), "invite email refused");
                            return Err(SendError(reason));
                        }
                        Err(e) if e.is_timeout() => {
                            last = format!(
                                "the email relay did not answer within {} ms",
                                timeout.as_millis()
                            )
                        }
                        Err(e) if e.is_connect() => {
                            last = "the email relay cannot be reached".to_owned()
                        }
                        Err(_) => last = "the email relay connection failed".to_owned(),
                    }
                    tracing::warn!(jti = %message.jti, attempt = attempt + 1, cause = %last, "invite email try failed");
                }
                Err(SendError(format!("{last} ({MAX_TRIES} tries)")))
            }
        }
    }
}

/// An address as logs may show it: the first character of the local part, then `***`
/// (`ada@example.com` → `a***@example.com`).
pub fn mask_address(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let first = local.chars().next().map(String::from).unwrap_or_default();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

fn describe(status: StatusCode) -> String {
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_addresses_are_masked() {
        for (address, masked) in [
            ("ada@example.com", "a***@example.com"),
            ("Ü@example.com", "Ü***@example.com"),
            ("@example.com", "***@example.com"),
            ("no-at-sign", "***"),
        ] {
            assert_eq!(mask_address(address), masked);
        }
    }
}
