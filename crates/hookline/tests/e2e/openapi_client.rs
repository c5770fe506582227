//! A client generated from the served spec compiles: `openapi-typescript`
//! turns `GET /api/v1/openapi.json` into TypeScript types, and `tsc --noEmit
//! --strict` checks them together with `openapi_client/client.ts`, a small
//! client (create an application and an endpoint, send a message, list
//! attempts) written with `openapi-fetch` against those types. Nothing is run
//! but the two tools.
//!
//! The npm packages (exact versions in `openapi_client/package-lock.json`)
//! come from `$HOOKLINE_TEST_CLIENT_NODE_MODULES` (`npm ci` in
//! `openapi_client`); Node is `$HOOKLINE_TEST_NODE`, default `node`.
//! `scripts/test.sh` sets this up.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::TestServer;

const CLIENT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/openapi_client");

const SETUP: &str = "Set up the generated-client test, or just run scripts/test.sh:\n  \
    (cd crates/hookline/tests/e2e/openapi_client && npm ci)\n  \
    export HOOKLINE_TEST_CLIENT_NODE_MODULES=$PWD/crates/hookline/tests/e2e/openapi_client/node_modules";

/// `$HOOKLINE_TEST_CLIENT_NODE_MODULES`, checked to hold both tools.
fn node_modules() -> PathBuf {
    let var = "HOOKLINE_TEST_CLIENT_NODE_MODULES";
    let value = std::env::var(var).unwrap_or_default();
    assert!(!value.is_empty(), "{var} is not set.\n{SETUP}");
    let path = PathBuf::from(&value);
    for package in ["openapi-typescript", "typescript", "openapi-fetch"] {
        let manifest = path.join(package).join("package.json");
        assert!(manifest.is_file(), "{var}={value}: {} is missing.\n{SETUP}", manifest.display());
    }
    path
}

/// Runs `node args…` in `dir` and panics with its output unless it succeeds.
async fn node(dir: &Path, args: &[&str]) -> String {
    let node = std::env::var("HOOKLINE_TEST_NODE").unwrap_or_else(|_| "node".into());
    let started = Instant::now();
    let output = tokio::process::Command::new(&node)
        .args(args)
        .current_dir(dir)
        // openapi-typescript's colours would only clutter a failure message.
        .env("NO_COLOR", "1")
        .env("FORCE_COLOR", "0")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), output)
        .await
        .unwrap_or_else(|_| panic!("{node} {args:?} did not finish within 3 minutes"))
        .unwrap_or_else(|e| panic!("cannot run {node} {args:?}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let text = format!("{stdout}{stderr}");
    println!("{} ({:.1} s):\n{text}", args[0], started.elapsed().as_secs_f64());
    assert!(output.status.success(), "{node} {args:?} failed ({}):\n{text}", output.status);
    text
}

#[tokio::test]
async fn typescript_client_generated_from_the_spec_compiles() {
    let modules = node_modules();
    let server = TestServer::start().await;
    let response = server.http().get(server.url("/api/v1/openapi.json")).send().await.expect("GET openapi.json");
    assert_eq!(response.status(), 200);
    let spec = response.bytes().await.expect("the spec's body");

    let dir = tempfile::Builder::new().prefix("hookline-openapi-client-").tempdir().expect("temp dir");
    let dir = dir.path();
    std::fs::write(dir.join("openapi.json"), &spec).expect("write openapi.json");
    std::fs::copy(format!("{CLIENT_DIR}/client.ts"), dir.join("client.ts")).expect("copy client.ts");
    // client.ts imports openapi-fetch: resolved through ./node_modules.
    std::os::unix::fs::symlink(&modules, dir.join("node_modules")).expect("link node_modules");
    let tsconfig = serde_json::json!({
        "compilerOptions": {
            "strict": true,
            "noEmit": true,
            "noUnusedLocals": true,
            "skipLibCheck": false,
            "target": "ES2022",
            "module": "ESNext",
            "moduleResolution": "Bundler",
            "lib": ["ES2022", "DOM"],
            "types": [],
        },
        "files": ["schema.d.ts", "client.ts"],
    });
    std::fs::write(dir.join("tsconfig.json"), tsconfig.to_string()).expect("write tsconfig.json");

    let generator = modules.join("openapi-typescript/bin/cli.js");
    // --default-non-nullable false: by default openapi-typescript makes every
    // property that has a `default` required, except in inline request
    // bodies; ours are `$ref`s to `*In` schemas (the only schemas with
    // defaults), whose defaulted fields are optional on the wire.
    let generated = node(
        dir,
        &[generator.to_str().unwrap(), "openapi.json", "--default-non-nullable", "false", "-o", "schema.d.ts"],
    )
    .await;
    // It reports problems of the document (bad `$ref`s, …) as warnings.
    assert!(!generated.contains('\u{26a0}'), "openapi-typescript warned about the spec:\n{generated}");
    let types = std::fs::read_to_string(dir.join("schema.d.ts")).expect("schema.d.ts was written");
    assert!(types.contains("export interface paths") && types.contains("\"v1.message.create\""), "{types}");

    let tsc = modules.join("typescript/bin/tsc");
    node(dir, &[tsc.to_str().unwrap(), "-p", "tsconfig.json", "--noEmit", "--strict"]).await;
}
