//! The command line: `serve` (default), `keygen`, `hash-key`, `check-config`.

use crate::settings::{LoadOptions, Settings};
use crate::startup::{Application, build_state};

const USAGE: &str = "\
invitetomedia — secure, role-based invite links to media entries

USAGE:
    invitetomedia [serve]              run the service from ./config and the environment
    invitetomedia keygen --alg EdDSA   print a new Ed25519 private key (PKCS#8 PEM)
    invitetomedia keygen --alg HS256   print a new HS256 secret
    invitetomedia hash-key <key>       print the sha256: form of an API key for api_keys
    invitetomedia check-config         validate the layered configuration and print it, secrets redacted
    invitetomedia help                 this text

Configuration layers: config/default.toml, config/$APP_ENV.toml, $INVITETOMEDIA_CONFIG,
then INVITETOMEDIA__SECTION__KEY environment variables.";

/// Runs the command named by `args` (without the program name); returns the exit code.
pub async fn run(args: Vec<String>) -> i32 {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [] | ["serve"] => serve().await,
        ["keygen", "--alg", alg] | ["keygen", "--alg=", alg] => {
            match crate::tokens::keyring::generate(alg) {
                Ok(key) => {
                    println!("{}", key.trim_end());
                    0
                }
                Err(e) => fail(&e),
            }
        }
        ["hash-key", key] => {
            println!("{}", crate::state::hash_api_key(key));
            0
        }
        ["check-config"] => check_config(),
        ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            0
        }
        _ => {
            eprintln!("{USAGE}");
            2
        }
    }
}

fn fail(message: &str) -> i32 {
    eprintln!("invitetomedia: {message}");
    1
}

fn load() -> Result<Settings, i32> {
    Settings::load(&LoadOptions::from_env()).map_err(|e| fail(&e.to_string()))
}

async fn serve() -> i32 {
    let settings = match load() {
        Ok(s) => s,
        Err(code) => return code,
    };
    // Held until serve returns: dropping it writes out the last lines (e.g. "stopped").
    let _log_writer = crate::telemetry::init(settings.is_production());
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => return fail(&e.to_string()),
    };
    match app.run_until_signalled().await {
        Ok(()) => {
            tracing::info!("stopped");
            0
        }
        Err(e) => fail(&e.to_string()),
    }
}

fn check_config() -> i32 {
    let settings = match load() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let printed = serde_json::to_string_pretty(&settings).unwrap_or_default();
    if let Err(e) = build_state(settings) {
        return fail(&e.to_string());
    }
    println!("{printed}");
    eprintln!("configuration is valid");
    0
}
