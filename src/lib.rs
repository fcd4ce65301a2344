//! invitetomedia: secure, role-based invite links to media entries.
//!
//! An invite link is `{public_base_url}/i/{token}`, where the token is a self-contained signed
//! JWT (tenant, media, role, use limit, expiry, and the invitee's data sealed with an AEAD).
//! Redeeming it consumes one use — one distinct device — in a single atomic store step and
//! returns a short-lived EdDSA grant the media platform verifies through the JWKS. Redis holds
//! only use counters and revocations, so every replica is identical and stateless.
//!
//! # Layout
//!
//! - [`settings`]: typed configuration, parsed once: layers, `tenants_dir`, errors naming key and file.
//! - [`reload`]: live reload on SIGHUP and file changes; the configuration swapped whole.
//! - [`startup`]: [`startup::Application`] binds its listener, wires routes and state.
//! - [`state`]: the process's [`state::AppState`] and the live configuration [`state::Live`] it swaps.
//! - [`domain`]: pure rules, no I/O: roles, module policy, email addresses and domains.
//! - [`tokens`]: the keyring, invite tokens, grants and the JWKS.
//! - [`store`]: use counters and revocations: in memory or in Redis, one atomic step each.
//! - [`email`]: invite email templates and transports (log, HTTP relay).
//! - [`service`]: the invite operations (create, redeem, introspect, revoke) over tokens and store.
//! - [`routes`]: HTTP handlers, one file per endpoint group.
//! - [`pages`]: the participant pages (one layout, strict CSP with a per-response nonce).
//! - [`error`]: the one API error type and its problem+json form.
//! - [`health`]: the store as this replica sees it (`/healthz/store`, gauges, eviction policy).
//! - [`metrics`]: Prometheus metrics.
//! - [`limits`]: the optional per-client rate limit of the participant endpoints.
//! - [`telemetry`]: logging setup.
//! - [`tuning`]: runtime tuning, each piece with what it bought: cooperative time slices, the timer floor, per-thread pools.
//! - [`cli`]: the command line of the binary.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod domain;
pub mod email;
pub mod error;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod pages;
pub mod reload;
pub mod routes;
pub mod service;
pub mod settings;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod tuning;
