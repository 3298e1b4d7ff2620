//! `cargo xtask build-web`: builds the web app into `dist/` from the same `index.html` that
//! `trunk serve` reads, without trunk or the wasm-bindgen CLI (two tools that took 10 minutes to
//! compile on a fresh machine): cargo builds the wasm, the wasm-bindgen library (the very code
//! inside the CLI, pinned to the crate's version) writes the JavaScript glue, and wasm-opt from
//! npm shrinks the result.
//!
//! Each `<link data-trunk …>` of `index.html` is one asset, as in trunk:
//! - `rel="rust"` with `data-bin`, `data-type` (`main` or `worker`), `data-wasm-opt` and
//!   `data-cargo-profile-release`: the page's module (hashed names, loaded by a module script) or a
//!   worker (`no-modules` glue under the binary's own name, which the page asks for at run time);
//! - `rel="css"`: the stylesheet, under a hashed name;
//! - `rel="copy-file"`: a file copied as it is.
//!
//! The build goes to `dist.staging/` and moves into `dist/` only when every step succeeded, so a
//! relay serving `dist/` never sees half a build; files whose bytes did not change stay as they
//! were (see [`publish`]).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::{cargo_target_dir, root, step, tools_path};

/// One `<link data-trunk …>` tag: where it sits in `index.html` and its attributes.
#[derive(Debug)]
struct Asset {
    range: std::ops::Range<usize>,
    attributes: BTreeMap<String, String>,
}

impl Asset {
    fn get(&self, name: &str) -> Result<&str, String> {
        self.attributes
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("index.html: a data-trunk link has no {name}"))
    }
}

/// Finds every `<link data-trunk …>` tag. Attribute values are double-quoted, as in our file;
/// anything else is an error rather than a guess.
fn assets(html: &str) -> Result<Vec<Asset>, String> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = html[from..].find("<link data-trunk") {
        let start = from + offset;
        let end = start
            + html[start..]
                .find('>')
                .ok_or("index.html: a data-trunk link is not closed")?
            + 1;
        let inner = html[start + "<link data-trunk".len()..end - 1].trim_end_matches('/');
        let mut attributes = BTreeMap::new();
        let mut rest = inner.trim();
        while !rest.is_empty() {
            let (name, after) = rest
                .split_once("=\"")
                .ok_or_else(|| format!("index.html: cannot read attributes in {inner:?}"))?;
            let (value, after) = after
                .split_once('"')
                .ok_or_else(|| format!("index.html: an unclosed quote in {inner:?}"))?;
            attributes.insert(name.trim().to_string(), value.to_string());
            rest = after.trim();
        }
        found.push(Asset {
            range: start..end,
            attributes,
        });
        from = end;
    }
    Ok(found)
}

/// The first 16 hex digits of the SHA-256 of `parts`: the cache-busting part of a file name.
fn short_hash(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher
        .finalize()
        .iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|error| format!("reading {}: {error}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    fs::write(path, bytes).map_err(|error| format!("writing {}: {error}", path.display()))
}

/// A `rel="rust"` asset compiled and bound, maybe still being shrunk by wasm-opt (which runs
/// while cargo compiles the next asset).
struct Built {
    bin: String,
    main: bool,
    glue_js: PathBuf,
    final_wasm: PathBuf,
    shrinking: Option<Shrinking>,
}

struct Shrinking {
    child: Child,
    stamp_path: PathBuf,
    stamp: String,
    started: Instant,
}

impl Built {
    /// Waits for wasm-opt, writes the files into `staging`; returns the HTML for the link.
    fn finish(self, staging: &Path) -> Result<String, String> {
        let bin = &self.bin;
        if let Some(mut shrinking) = self.shrinking {
            let status = shrinking
                .child
                .wait()
                .map_err(|error| format!("wasm-opt {bin}: {error}"))?;
            if !status.success() {
                return Err(format!("wasm-opt {bin} failed ({status})"));
            }
            write(&shrinking.stamp_path, shrinking.stamp.as_bytes())?;
            eprintln!(
                "    wasm-opt {bin}: done in {:.0} s",
                shrinking.started.elapsed().as_secs_f64()
            );
        }
        let js = read(&self.glue_js)?;
        let wasm = read(&self.final_wasm)?;
        if self.main {
            let name = format!("{bin}-{}", short_hash(&[&js, &wasm]));
            write(&staging.join(format!("{name}.js")), &js)?;
            write(&staging.join(format!("{name}_bg.wasm")), &wasm)?;
            Ok(format!(
                "<script type=\"module\">\nimport init from '/{name}.js';\nawait init({{ module_or_path: '/{name}_bg.wasm' }});\n</script>\n    \
                 <link rel=\"modulepreload\" href=\"/{name}.js\" crossorigin=\"anonymous\">\
                 <link rel=\"preload\" href=\"/{name}_bg.wasm\" crossorigin=\"anonymous\" as=\"fetch\" type=\"application/wasm\">"
            ))
        } else {
            // A worker's files are asked for by name at run time (see web/worker.js): no hash.
            write(&staging.join(format!("{bin}.js")), &js)?;
            write(&staging.join(format!("{bin}_bg.wasm")), &wasm)?;
            Ok(String::new())
        }
    }
}

/// Compiles and binds one `rel="rust"` asset and starts its wasm-opt (see [`Built::finish`]).
fn rust_asset(asset: &Asset, number: &str) -> Result<Built, String> {
    let manifest = asset.get("href")?;
    let bin = asset.get("data-bin")?;
    let kind = asset
        .attributes
        .get("data-type")
        .map(String::as_str)
        .unwrap_or("main");
    let profile = asset
        .attributes
        .get("data-cargo-profile-release")
        .map(String::as_str)
        .unwrap_or("release");
    let opt = asset
        .attributes
        .get("data-wasm-opt")
        .map(String::as_str)
        .unwrap_or("0");
    step(
        &format!("{number} compile {bin} for the browser (profile {profile}; about 2 minutes cold, seconds warm)"),
        "cargo",
        &[
            "build",
            "--quiet",
            "--target",
            "wasm32-unknown-unknown",
            "--manifest-path",
            manifest,
            "--bin",
            bin,
            "--profile",
            profile,
        ],
        &[],
    )?;
    let wasm = cargo_target_dir()
        .join("wasm32-unknown-unknown")
        .join(profile)
        .join(format!("{bin}.wasm"));

    let started = Instant::now();
    let glue = cargo_target_dir().join("xtask-web").join(bin);
    fs::create_dir_all(&glue).map_err(|error| format!("{}: {error}", glue.display()))?;
    let mut bindgen = wasm_bindgen_cli_support::Bindgen::new();
    bindgen
        .input_path(&wasm)
        .out_name(bin)
        .typescript(false)
        .omit_default_module_path(false);
    match kind {
        "main" => bindgen.web(true),
        "worker" => bindgen.no_modules(true),
        other => {
            return Err(format!(
                "index.html: data-type {other:?} is neither main nor worker"
            ))
        }
    }
    .map_err(|error| format!("wasm-bindgen {bin}: {error:#}"))?;
    bindgen
        .generate(&glue)
        .map_err(|error| format!("wasm-bindgen {bin}: {error:#}"))?;
    let glue_js = glue.join(format!("{bin}.js"));
    let glue_wasm = glue.join(format!("{bin}_bg.wasm"));
    eprintln!(
        "    wasm-bindgen {bin}: {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let final_wasm = glue.join(format!("{bin}_opt.wasm"));
    let mut shrinking = None;
    if opt == "0" {
        fs::copy(&glue_wasm, &final_wasm).map_err(|error| format!("{error}"))?;
    } else {
        // wasm-opt takes 15 s on the page: skip it when its input is the one it last shrank.
        let level = format!("-O{opt}");
        let stamp_path = glue.join(format!("{bin}_opt.stamp"));
        let stamp = short_hash(&[level.as_bytes(), &read(&glue_wasm)?]);
        let fresh =
            final_wasm.is_file() && fs::read_to_string(&stamp_path).is_ok_and(|old| old == stamp);
        if fresh {
            eprintln!("    wasm-opt {bin}: unchanged since the last build");
        } else {
            eprintln!(
                "\n==> {number} shrink {bin} (wasm-opt {level}, beside the next step; up to 20 s)"
            );
            let child = Command::new("wasm-opt")
                .args([level.as_str(), "-o"])
                .arg(&final_wasm)
                .arg(&glue_wasm)
                .env("PATH", tools_path())
                .spawn()
                .map_err(|error| format!("could not start wasm-opt: {error}"))?;
            shrinking = Some(Shrinking {
                child,
                stamp_path,
                stamp,
                started: Instant::now(),
            });
        }
    }
    Ok(Built {
        bin: bin.to_string(),
        main: kind == "main",
        glue_js,
        final_wasm,
        shrinking,
    })
}

/// Builds the web app into `dist/` (see the module's comment).
pub fn build_web() -> Result<(), String> {
    let started = Instant::now();
    let root = root();
    let html = fs::read_to_string(root.join("index.html"))
        .map_err(|error| format!("reading index.html: {error}"))?;
    let staging = root.join("dist.staging");
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging).map_err(|error| format!("{}: {error}", staging.display()))?;

    let found = assets(&html)?;
    let rust_count = found
        .iter()
        .filter(|asset| asset.attributes.get("rel").map(String::as_str) == Some("rust"))
        .count();
    let mut rust_done = 0;
    let mut built = Vec::new();
    let mut page = String::new();
    let mut copied = 0;
    for asset in &found {
        page.push_str(&html[copied..asset.range.start]);
        copied = asset.range.end;
        let replacement = match asset.get("rel")? {
            "rust" => {
                rust_done += 1;
                built.push(rust_asset(asset, &format!("[{rust_done}/{rust_count}]"))?);
                // Filled in below, once wasm-opt is done with it.
                format!("\u{0}{}\u{0}", built.len() - 1)
            }
            "css" => {
                let source = root.join(asset.get("href")?);
                let bytes = read(&source)?;
                let stem = file_stem(&source)?;
                let name = format!("{stem}-{}.css", short_hash(&[&bytes]));
                write(&staging.join(&name), &bytes)?;
                format!("<link rel=\"stylesheet\" href=\"/{name}\"/>")
            }
            "copy-file" => {
                let source = root.join(asset.get("href")?);
                let name = source
                    .file_name()
                    .ok_or_else(|| format!("{}: no file name", source.display()))?;
                fs::copy(&source, staging.join(name))
                    .map_err(|error| format!("copying {}: {error}", source.display()))?;
                String::new()
            }
            other => return Err(format!("index.html: rel {other:?} is not built by xtask")),
        };
        page.push_str(&replacement);
    }
    page.push_str(&html[copied..]);
    for (index, asset) in built.into_iter().enumerate() {
        let html = asset.finish(&staging)?;
        page = page.replace(&format!("\u{0}{index}\u{0}"), &html);
    }
    write(&staging.join("index.html"), page.as_bytes())?;
    let gzip_started = Instant::now();
    gzip_copies(&staging)?;
    eprintln!(
        "    gzip copies (served by the one-file relay): {:.1} s",
        gzip_started.elapsed().as_secs_f64()
    );
    print_sizes(&staging)?;

    let dist = root.join("dist");
    publish(&staging, &dist)?;
    eprintln!(
        "    web app built in {:.0} s: {}",
        started.elapsed().as_secs_f64(),
        dist.display()
    );
    Ok(())
}

/// Moves the build from `staging` into `dist`, leaving every file whose bytes did not change
/// untouched (so its modification time stays, and the relay that embeds `dist/` is not rebuilt
/// for nothing), `index.html` last (it names the new files), then removes what the new build no
/// longer has.
fn publish(staging: &Path, dist: &Path) -> Result<(), String> {
    fs::create_dir_all(dist).map_err(|error| format!("{}: {error}", dist.display()))?;
    let names = |dir: &Path| -> Result<Vec<std::ffi::OsString>, String> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .map_err(|error| format!("{}: {error}", dir.display()))?
            .filter_map(|entry| entry.ok().map(|entry| entry.file_name()))
            .collect();
        // index.html last: a page load between two renames then finds every file it names.
        names.sort_by_key(|name| name == "index.html");
        Ok(names)
    };
    let new = names(staging)?;
    for name in &new {
        let (from, to) = (staging.join(name), dist.join(name));
        if fs::read(&to).ok() == Some(read(&from)?) {
            continue;
        }
        fs::rename(&from, &to).map_err(|error| format!("{}: {error}", to.display()))?;
    }
    for name in names(dist)? {
        if !new.contains(&name) {
            let path = dist.join(&name);
            let _ = fs::remove_file(&path).or_else(|_| fs::remove_dir_all(&path));
        }
    }
    let _ = fs::remove_dir_all(staging);
    Ok(())
}

/// What a first visit downloads, gzipped, at most (app wasm, miner wasm, JS and CSS together).
pub const PAGE_BUDGET_BYTES: u64 = 400 * 1024;

/// Prints each file a visitor downloads, plain and gzipped, and the total against
/// [`PAGE_BUDGET_BYTES`]. Small files have no gzip copy; they count as they are.
fn print_sizes(dir: &Path) -> Result<(), String> {
    let mut rows = Vec::new();
    for entry in fs::read_dir(dir).map_err(|error| format!("{}: {error}", dir.display()))? {
        let path = entry.map_err(|error| format!("{error}"))?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        if name.ends_with(".gz") {
            continue;
        }
        let plain = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let mut gz_path = path.clone().into_os_string();
        gz_path.push(".gz");
        let gzipped = fs::metadata(&gz_path).map(|m| m.len()).unwrap_or(plain);
        rows.push((name, plain, gzipped));
    }
    rows.sort();
    let total: u64 = rows.iter().map(|(_, _, gzipped)| gzipped).sum();
    for (name, plain, gzipped) in &rows {
        eprintln!("    {name:<34} {plain:>9} bytes, {gzipped:>8} gzipped");
    }
    eprintln!(
        "    a first visit downloads {total} bytes gzipped ({:.1} KiB; budget {} KiB: {})",
        total as f64 / 1024.0,
        PAGE_BUDGET_BYTES / 1024,
        if total <= PAGE_BUDGET_BYTES {
            "within"
        } else {
            "OVER"
        }
    );
    Ok(())
}

/// Files smaller than this go out as they are: gzip saves little on them.
const GZIP_MIN_BYTES: u64 = 1024;

/// Writes `<file>.gz` (gzip, best compression) beside every page, script, stylesheet and wasm
/// module of at least [`GZIP_MIN_BYTES`]: the relay built with the app inside serves these to
/// browsers that accept gzip, so nothing is compressed per request.
fn gzip_copies(dir: &Path) -> Result<(), String> {
    use std::io::Write;
    let entries = fs::read_dir(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|error| format!("{error}"))?.path();
        let compressible = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("html" | "js" | "wasm" | "css")
        );
        let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if !compressible || size < GZIP_MIN_BYTES {
            continue;
        }
        let bytes = read(&path)?;
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(bytes.len() / 3),
            flate2::Compression::best(),
        );
        encoder
            .write_all(&bytes)
            .and_then(|()| encoder.finish())
            .and_then(|gz| {
                let mut name = path.clone().into_os_string();
                name.push(".gz");
                fs::write(name, gz)
            })
            .map_err(|error| format!("gzip {}: {error}", path.display()))?;
    }
    Ok(())
}

fn file_stem(path: &Path) -> Result<String, String> {
    path.file_stem()
        .and_then(|stem| stem.to_str())
        .map(str::to_string)
        .ok_or_else(|| format!("{}: no file name", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_link_of_our_index_html() {
        let html = fs::read_to_string(root().join("index.html")).unwrap();
        let found = assets(&html).unwrap();
        let rels: Vec<&str> = found.iter().map(|a| a.get("rel").unwrap()).collect();
        assert_eq!(rels, ["css", "rust", "rust", "copy-file"]);
        assert_eq!(found[1].get("data-bin").unwrap(), "web");
        assert_eq!(found[2].get("data-type").unwrap(), "worker");
        assert_eq!(found[2].get("data-wasm-opt").unwrap(), "3");
        for asset in &found {
            assert!(html[asset.range.clone()].starts_with("<link data-trunk"));
            assert!(html[asset.range.clone()].ends_with("/>"));
        }
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert!(assets("<link data-trunk rel=css href=x />").is_err());
        assert!(assets("<link data-trunk rel=\"css\" href=\"x").is_err());
        assert!(assets("<p>no links</p>").unwrap().is_empty());
    }
}
