//! The command line: `serve` (default), `keygen`, `hash-key`, `check-config`.

use crate::settings::{LoadOptions, Loaded, Settings};
use crate::startup::Application;
use crate::state::Live;

const USAGE: &str = "\
invitetomedia — secure, role-based invite links to media entries

USAGE:
    invitetomedia [serve]              run the service from ./config and the environment
    invitetomedia keygen --alg EdDSA   print a new Ed25519 private key (PKCS#8 PEM); also --alg=EdDSA
    invitetomedia keygen --alg HS256   print a new HS256 secret
    invitetomedia hash-key             print the sha256: form for api_keys of the API key read
                                       from standard input (or given as an argument)
    invitetomedia check-config         validate the layered configuration and print it, secrets redacted
    invitetomedia help                 this text

Configuration layers: config/default.toml, config/$APP_ENV.toml, $INVITETOMEDIA_CONFIG,
then INVITETOMEDIA__SECTION__KEY environment variables.";

/// Runs the command named by `args` (without the program name); returns the exit code.
pub async fn run(args: Vec<String>) -> i32 {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [] | ["serve"] => serve().await,
        ["keygen", "--alg", alg] => keygen(alg),
        ["keygen", flag] if flag.starts_with("--alg=") => keygen(&flag["--alg=".len()..]),
        ["hash-key", key] => {
            println!("{}", crate::state::hash_api_key(key));
            0
        }
        ["hash-key"] => hash_key_from_stdin(),
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

fn keygen(alg: &str) -> i32 {
    match crate::tokens::keyring::generate(alg) {
        Ok(key) => {
            println!("{}", key.trim_end());
            0
        }
        Err(e) => fail(&e),
    }
}

/// `hash-key` with the key on standard input (one line; the line break is not part of the
/// key), so the key does not land in shell history or the process list.
fn hash_key_from_stdin() -> i32 {
    let mut input = String::new();
    if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut input) {
        return fail(&format!("cannot read the key from standard input: {e}"));
    }
    let key = input.strip_suffix('\n').unwrap_or(&input);
    let key = key.strip_suffix('\r').unwrap_or(key);
    if key.is_empty() {
        return fail("no key on standard input (printf %s \"$KEY\" | invitetomedia hash-key)");
    }
    println!("{}", crate::state::hash_api_key(key));
    0
}

fn fail(message: &str) -> i32 {
    eprintln!("invitetomedia: {message}");
    1
}

fn load(options: &LoadOptions) -> Result<Loaded, i32> {
    Settings::load_watched(options).map_err(|e| fail(&e.to_string()))
}

async fn serve() -> i32 {
    let options = LoadOptions::from_env();
    let loaded = match load(&options) {
        Ok(s) => s,
        Err(code) => return code,
    };
    // Held until serve returns: dropping it writes out the last lines (e.g. "stopped").
    let _log_writer = crate::telemetry::init(loaded.settings.is_production());
    let app = match Application::build_loaded(loaded, Some(options)).await {
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
    let loaded = match load(&LoadOptions::from_env()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let printed = serde_json::to_string_pretty(&loaded.settings).unwrap_or_default();
    if let Err(e) = Live::build(loaded, None) {
        return fail(&e.to_string());
    }
    println!("{printed}");
    eprintln!("configuration is valid");
    0
}
