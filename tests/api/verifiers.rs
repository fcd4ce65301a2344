//! The reference grant verifiers of `examples/` (Python with PyJWT, Node with jose), run as a
//! platform would run them, against the real service's JWKS: a fresh grant is accepted once;
//! a replay, an expired grant, one for another audience or entry, one with a flipped signature
//! byte and one from another key are refused. The test command installs their dependencies
//! (PyJWT into target/py, jose into examples/node).

use invitetomedia::settings::{KeySettings, Secret};
use invitetomedia::store::unix_now;
use invitetomedia::tokens::{GrantClaims, Keyring, Purpose, random_id, sign_grant, verify_grant};
use serde_json::{Value, json};

use crate::helpers::*;

/// A reference verifier and how to run it.
#[derive(Debug, Clone, Copy)]
enum Verifier {
    Python,
    Node,
}

impl Verifier {
    /// Runs the verifier on `grant`; its exit status and its answer.
    async fn run(
        self,
        app: &TestApp,
        seen: &std::path::Path,
        media: &str,
        grant: &str,
    ) -> (bool, Value) {
        let root = env!("CARGO_MANIFEST_DIR");
        let (program, script) = match self {
            Self::Python => (
                format!("{root}/target/py/bin/python"),
                format!("{root}/examples/python/verify_grant.py"),
            ),
            Self::Node => (
                "node".to_owned(),
                format!("{root}/examples/node/verify_grant.mjs"),
            ),
        };
        let output = tokio::process::Command::new(&program)
            .arg(&script)
            .args([
                "--jwks-url",
                &format!("{}/.well-known/jwks.json", app.address),
            ])
            .args(["--issuer", "invitetomedia", "--audience", "demo-platform"])
            .args(["--tenant", "demo", "--media", media])
            .arg("--seen")
            .arg(seen)
            .arg(grant)
            .output()
            .await
            .unwrap_or_else(|e| panic!("{self:?} verifier: {program} {script}: {e}"));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let answer: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
            panic!(
                "{self:?} verifier printed no answer: {stdout} {}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
        (output.status.success(), answer)
    }
}

/// Re-signs `claims` with `ring` after `change`, under a fresh `jti` (so a refusal is never a
/// replay).
fn forge(ring: &Keyring, claims: &GrantClaims, change: impl FnOnce(&mut GrantClaims)) -> String {
    let mut claims = claims.clone();
    claims.jti = random_id();
    change(&mut claims);
    sign_grant(ring, &claims).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_verifiers_accept_a_grant_once_and_refuse_forgeries() {
    let app = spawn_app().await;
    let dir = std::env::temp_dir().join(format!("itm-verifiers-{}", &random_id()[..8]));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = TempDir(dir.clone());
    let pem = invitetomedia::tokens::keyring::generate("EdDSA").unwrap();
    let other_key = Keyring::from_settings(
        Purpose::Grant,
        &[KeySettings {
            kid: "g9".into(),
            alg: "EdDSA".into(),
            secret: Secret::default(),
            secret_file: None,
            private_key_pem: Secret::from(pem.as_str()),
            private_key_file: None,
        }],
        false,
    )
    .unwrap();
    for (n, verifier) in [Verifier::Python, Verifier::Node].into_iter().enumerate() {
        let seen = dir.join(format!("seen-{n}.json"));
        let token = app.create_token(json!({})).await;
        let redeemed = app.redeem_as(&token, &device(n + 1)).await;
        assert_eq!(redeemed.status, 200, "{:?}", redeemed.body);
        let grant = redeemed.body["grant"].as_str().unwrap().to_owned();
        let live = app.state.live();
        let keys = &live.grant_keys;
        let claims = verify_grant(keys, "invitetomedia", &["demo-platform"], 0, &grant).unwrap();

        let (ok, answer) = verifier.run(&app, &seen, "1_abc", &grant).await;
        assert!(ok, "{verifier:?} refused a fresh grant: {answer}");
        assert_eq!(answer["claims"]["iid"], redeemed.body["invite"]["id"]);
        assert_eq!(answer["claims"]["bound"], true);

        let now = unix_now();
        let refused = [
            ("the same grant again", grant.clone(), "replay"),
            (
                "an expired grant",
                forge(keys, &claims, |c| {
                    c.iat = now - 900;
                    c.exp = now - 600;
                }),
                "xpired",
            ),
            (
                "another audience",
                forge(keys, &claims, |c| c.aud = "other-platform".into()),
                "aud",
            ),
            (
                "another tenant",
                forge(keys, &claims, |c| c.tid = "acme".into()),
                "tid",
            ),
            ("another entry", forge(keys, &claims, |_| {}), "mid"),
            (
                "a flipped signature byte",
                {
                    let fresh = forge(keys, &claims, |_| {});
                    let (head, signature) = fresh.rsplit_once('.').unwrap();
                    let mut bytes = signature.as_bytes().to_vec();
                    bytes[10] = if bytes[10] == b'A' { b'B' } else { b'A' };
                    format!("{head}.{}", String::from_utf8(bytes).unwrap())
                },
                "",
            ),
            ("another key", forge(&other_key, &claims, |_| {}), ""),
        ];
        for (what, forged, reason) in refused {
            let media = if what == "another entry" {
                "1_other"
            } else {
                "1_abc"
            };
            let (ok, answer) = verifier.run(&app, &seen, media, &forged).await;
            assert!(!ok, "{verifier:?} accepted {what}: {answer}");
            assert_eq!(answer["accepted"], false, "{verifier:?}, {what}");
            let said = answer["reason"].as_str().unwrap_or_default().to_lowercase();
            assert!(
                said.contains(&reason.to_lowercase()),
                "{verifier:?}, {what}: {said}"
            );
        }
    }
}
