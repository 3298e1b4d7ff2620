//! `cargo xtask test` runs every check and test of the project; `cargo xtask run` builds the web
//! app and starts the relay serving it. Both first install what is missing (scripts/install-tools.sh).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("run") => run(&args[1..]),
        Some("install") => install(&[]),
        _ => {
            eprintln!("usage: cargo xtask test | run [relay flags] | install");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn tools_path() -> String {
    let mut path = root().join("tools/node_modules/.bin").display().to_string();
    if let Some(home) = std::env::var_os("HOME") {
        path.push(':');
        path.push_str(&Path::new(&home).join(".cargo/bin").display().to_string());
    }
    if let Ok(existing) = std::env::var("PATH") {
        path.push(':');
        path.push_str(&existing);
    }
    // Debian puts nats-server in /usr/sbin, which a non-login PATH may leave out.
    path.push_str(":/usr/sbin:/sbin");
    path
}

fn step(title: &str, program: &str, args: &[&str], envs: &[(&str, &str)]) -> Result<(), String> {
    eprintln!("\n==> {title}: {program} {}", args.join(" "));
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(root())
        .env("PATH", tools_path());
    for (key, value) in envs {
        command.env(key, value);
    }
    let status = command
        .status()
        .map_err(|error| format!("{title}: could not start {program}: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{title} failed ({status})"))
    }
}

fn install(parts: &[&str]) -> Result<(), String> {
    let mut args = vec!["scripts/install-tools.sh"];
    args.extend_from_slice(parts);
    step("install tools", "bash", &args, &[])
}

/// Crates that build for the browser; relay, node and xtask are native only.
const WASM_CRATES: &[&str] = &["-p", "shared", "-p", "web"];

fn test(_args: &[String]) -> Result<(), String> {
    install(&[])?;
    step("format", "cargo", &["fmt", "--all", "--check"], &[])?;
    step(
        "clippy (native)",
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    let mut wasm_clippy = vec!["clippy", "--target", "wasm32-unknown-unknown"];
    wasm_clippy.extend_from_slice(WASM_CRATES);
    wasm_clippy.extend_from_slice(&["--all-targets", "--", "-D", "warnings"]);
    step("clippy (wasm32)", "cargo", &wasm_clippy, &[])?;
    step("native tests", "cargo", &["test", "--workspace"], &[])?;
    let runner_env = [
        (
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
            "wasm-bindgen-test-runner",
        ),
        ("CHROMEDRIVER", "/usr/bin/chromedriver"),
        ("WASM_BINDGEN_TEST_TIMEOUT", "120"),
    ];
    step(
        "wasm tests of shared in headless Chromium",
        "cargo",
        &["test", "-p", "shared", "--target", "wasm32-unknown-unknown"],
        &runner_env,
    )?;
    if root().join("e2e/run.sh").exists() {
        step("browser end-to-end tests", "bash", &["e2e/run.sh"], &[])?;
    }
    eprintln!("\nall checks and tests passed");
    Ok(())
}

fn run(args: &[String]) -> Result<(), String> {
    install(&[])?;
    step(
        "build the web app (release)",
        "trunk",
        &["build", "--release"],
        &[],
    )?;
    let mut relay_args = vec![
        "run",
        "--release",
        "-p",
        "relay",
        "--",
        "--static-dir",
        "dist",
    ];
    relay_args.extend(args.iter().map(String::as_str));
    step("relay", "cargo", &relay_args, &[])
}
