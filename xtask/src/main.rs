//! `cargo xtask test` runs every check and test of the project; `cargo xtask run` builds the web
//! app and starts the relay serving it. Both first install what is missing (scripts/install-tools.sh).
//! `cargo xtask build-web` builds the web app into `dist/` (see web_build.rs), and
//! `cargo xtask wasm-test-runner` is the runner `cargo test --target wasm32-unknown-unknown` calls.

mod web_build;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("run") => run(&args[1..]),
        Some("install") => install(&[]),
        Some("dist") => dist().map(|_| ()),
        Some("build-web") => install(&["wasm", "binaryen"]).and_then(|()| web_build::build_web()),
        Some("wasm-test-runner") => wasm_test_runner(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask test | run [relay flags] | dist | build-web | install | wasm-test-runner FILE"
            );
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

/// Where cargo puts what it builds (`CARGO_TARGET_DIR` or the workspace's `target/`).
fn cargo_target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root().join(dir),
        None => root().join("target"),
    }
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
    let started = Instant::now();
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
        eprintln!("    done in {:.0} s", started.elapsed().as_secs_f64());
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
    step(
        "clippy (the relay with the app inside)",
        "cargo",
        &[
            "clippy",
            "-p",
            "relay",
            "--features",
            "embed",
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
    // This very program is the runner (`wasm-test-runner` below): no wasm-bindgen CLI to install.
    let runner = format!("{} wasm-test-runner", current_exe()?);
    let runner_env = [
        (
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
            runner.as_str(),
        ),
        ("CHROMEDRIVER", "/usr/bin/chromedriver"),
        ("WASM_BINDGEN_TEST_TIMEOUT", "120"),
        // The runner gives chromedriver 5 s to bind its port by default: on a busy 2-core
        // machine it once took longer, and the step failed with no test run.
        ("WASM_BINDGEN_TEST_DRIVER_TIMEOUT", "60"),
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

/// Builds the web app and a release relay with the app inside (`relay --features embed`), and
/// copies that one binary to `target/dist/tabchain-relay`. Returns its path.
fn dist() -> Result<PathBuf, String> {
    install(&["wasm", "binaryen"])?;
    web_build::build_web()?;
    let build = [
        "build",
        "--quiet",
        "--release",
        "-p",
        "relay",
        "--features",
        "embed",
    ];
    step(
        "build the relay with the app inside (release; about 2 minutes cold, seconds warm)",
        "cargo",
        &build,
        &[],
    )?;
    let built = cargo_target_dir().join("release/relay");
    // rust-embed's derive tracks the files it embedded, not the folder: a relay first built when
    // dist/ was empty looks fresh to cargo after the app appears. Check that the binary holds
    // this build's page (its index.html names the content-hashed files), else build it again.
    if !holds_page(&built)? {
        eprintln!("    the relay holds an older app (or none): building it again");
        step(
            "clean the relay",
            "cargo",
            &["clean", "--release", "-p", "relay"],
            &[],
        )?;
        step("build the relay with the app inside", "cargo", &build, &[])?;
        if !holds_page(&built)? {
            return Err(
                "the relay built with --features embed does not hold dist/index.html".into(),
            );
        }
    }
    let out_dir = cargo_target_dir().join("dist");
    std::fs::create_dir_all(&out_dir).map_err(|error| format!("{}: {error}", out_dir.display()))?;
    let out = out_dir.join("tabchain-relay");
    // Copied beside it, then renamed over it: a relay still running from the old file keeps it.
    let partial = out_dir.join("tabchain-relay.partial");
    std::fs::copy(&built, &partial)
        .and_then(|_| std::fs::rename(&partial, &out))
        .map_err(|error| format!("copying {}: {error}", built.display()))?;
    let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "\n    one file to deploy: {} ({:.1} MB, the web app inside; see docs/deploy.md)",
        out.display(),
        size as f64 / 1e6
    );
    Ok(out)
}

/// Whether the binary at `path` contains `dist/index.html` byte for byte.
fn holds_page(path: &Path) -> Result<bool, String> {
    let page = std::fs::read(root().join("dist/index.html"))
        .map_err(|error| format!("reading dist/index.html: {error}"))?;
    let binary =
        std::fs::read(path).map_err(|error| format!("reading {}: {error}", path.display()))?;
    Ok(!page.is_empty() && binary.windows(page.len()).any(|window| window == page))
}

fn run(args: &[String]) -> Result<(), String> {
    let relay = dist()?;
    let relay = relay.display().to_string();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    step("start the relay (Ctrl-C stops it)", &relay, &args, &[])
}

fn current_exe() -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|error| format!("where is xtask? {error}"))?;
    let exe = exe.display().to_string();
    if exe.contains(char::is_whitespace) {
        // Cargo splits a runner's command line on whitespace.
        return Err(format!("the wasm test runner's path has a space: {exe}"));
    }
    Ok(exe)
}

/// `cargo test --target wasm32-unknown-unknown` runs each test binary through this: the library
/// inside wasm-bindgen-cli's `wasm-bindgen-test-runner`, the same code at the same version.
fn wasm_test_runner(args: &[String]) -> Result<(), String> {
    let argv = std::iter::once("wasm-bindgen-test-runner".to_string()).chain(args.iter().cloned());
    wasm_bindgen_cli::wasm_bindgen_test_runner::run_cli_with_args(argv)
        .map_err(|error| format!("wasm tests: {error:#}"))
}
