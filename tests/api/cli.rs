//! The binary's commands: keygen, hash-key, check-config.

use std::process::{Command, Output};

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_invitetomedia"));
    command
        .args(args)
        .env_remove("APP_ENV")
        .env_remove("INVITETOMEDIA_CONFIG");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs the binary with `input` on its standard input.
fn run_with_input(args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_invitetomedia"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn hash_key_prints_the_api_keys_form() {
    let demo = invitetomedia::settings::DEMO_API_KEY_HASH;
    let output = run(&["hash-key", "demo-api-key"], &[]);
    assert!(output.status.success());
    assert_eq!(stdout(&output).trim(), demo);
    // From standard input, so the key stays out of shell history: with or without a final
    // line break (`echo` or `printf %s`).
    for input in ["demo-api-key", "demo-api-key\n", "demo-api-key\r\n"] {
        let output = run_with_input(&["hash-key"], input);
        assert!(output.status.success(), "{input:?}");
        assert_eq!(stdout(&output).trim(), demo, "{input:?}");
    }
    let empty = run_with_input(&["hash-key"], "");
    assert!(!empty.status.success());
    assert!(String::from_utf8_lossy(&empty.stderr).contains("standard input"));
}

#[test]
fn keygen_prints_keys_the_service_accepts() {
    let secret = stdout(&run(&["keygen", "--alg", "HS256"], &[]));
    assert!(secret.trim().len() >= 32);
    let pem = stdout(&run(&["keygen", "--alg", "EdDSA"], &[]));
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let keys = format!(
        "[keys]\ninvite = [{{ kid = \"i1\", alg = \"HS256\", secret = \"{}\" }}]\ngrant = [{{ kid = \"g1\", alg = \"EdDSA\", private_key_pem = \"\"\"{}\"\"\" }}]\n",
        secret.trim(),
        pem.trim()
    );
    let dir = std::env::temp_dir().join(format!("itm-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keys.toml");
    std::fs::write(&file, keys).unwrap();
    let output = run(
        &["check-config"],
        &[("INVITETOMEDIA_CONFIG", file.to_str().unwrap())],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = stdout(&output);
    assert!(!printed.contains(secret.trim()), "the secret is redacted");
    assert!(
        !printed.contains("BEGIN PRIVATE KEY"),
        "the private key is redacted"
    );
    assert!(printed.contains("[redacted]"));
    assert!(!run(&["keygen", "--alg", "RS256"], &[]).status.success());
    // The `--alg=VALUE` spelling works the same.
    let pem = stdout(&run(&["keygen", "--alg=EdDSA"], &[]));
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
    let secret = run(&["keygen", "--alg=HS256"], &[]);
    assert!(secret.status.success() && stdout(&secret).trim().len() >= 32);
}

#[test]
fn check_config_names_the_bad_key() {
    let output = run(
        &["check-config"],
        &[(
            "INVITETOMEDIA__TENANTS__DEMO__INVITETOMEDIA__LINKDURATION",
            "0",
        )],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("tenants.demo.invitetomedia.LinkDuration"),
        "{stderr}"
    );
    let output = run(
        &["check-config"],
        &[(
            "INVITETOMEDIA__EMAIL__HTTP__BEARER_TOKEN",
            "relay-secret-value",
        )],
    );
    assert!(output.status.success());
    assert!(!stdout(&output).contains("relay-secret-value"));
    // The userinfo of every URL: the Redis URL and each cluster node.
    let output = run(
        &["check-config"],
        &[
            (
                "INVITETOMEDIA__STORE__REDIS_URL",
                "redis://app:redis-password-1@redis.internal:6379",
            ),
            (
                "INVITETOMEDIA__STORE__CLUSTER_NODES",
                "redis://:node-password-2@10.0.0.1:7000,redis://10.0.0.2:7000",
            ),
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = stdout(&output);
    assert!(!printed.contains("password-"), "{printed}");
    assert!(
        printed.contains("redis://[redacted]@redis.internal:6379"),
        "{printed}"
    );
    assert!(
        printed.contains("redis://[redacted]@10.0.0.1:7000"),
        "{printed}"
    );
    assert_eq!(run(&["no-such-command"], &[]).status.code(), Some(2));
}
