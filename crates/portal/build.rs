//! Builds the portal (`portal/` at the repository's top: Vite, Vue, Element Plus, ECharts)
//! and embeds the result, so that a deployment is still one binary.
//!
//! `npm ci` runs when `portal/node_modules` does not match `portal/package-lock.json`, then
//! `vite build` writes into this crate's `OUT_DIR`. With `SIHAI_PORTAL_DIST` set to a
//! directory, that directory is embedded as it is instead (a build without Node.js, from a
//! portal built elsewhere).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

fn main() {
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let portal = manifest.join("../../portal");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-env-changed=SIHAI_PORTAL_DIST");

    let dist = match env::var_os("SIHAI_PORTAL_DIST") {
        Some(prebuilt) => PathBuf::from(prebuilt),
        None => {
            for input in [
                "src",
                "index.html",
                "package.json",
                "package-lock.json",
                "vite.config.js",
            ] {
                println!("cargo:rerun-if-changed={}", portal.join(input).display());
            }
            build(&portal, &out.join("portal"))
        }
    };

    let mut files = Vec::new();
    collect(&dist, &dist, &mut files);
    files.sort();
    if !files.iter().any(|(name, _)| name == "index.html") {
        panic!("the portal's build has no index.html in {}", dist.display());
    }
    let mut table = String::from(
        "/// Every file of the portal's build: path, bytes.\npub static FILES: &[(&str, &[u8])] = &[\n",
    );
    for (name, path) in &files {
        writeln!(
            table,
            "    ({name:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .expect("writing to a String");
    }
    table.push_str("];\n");
    fs::write(out.join("files.rs"), table).expect("writing OUT_DIR/files.rs");
}

/// Runs npm; a missing or failing npm stops the build with what to do.
fn build(portal: &Path, into: &Path) -> PathBuf {
    // `npm ci` empties node_modules and installs the lock afresh (a minute): only when the
    // lock changed since the last one this script installed.
    let lock = fs::read(portal.join("package-lock.json")).expect("portal/package-lock.json");
    let stamp = portal.join("node_modules/.sihai-installed-lock");
    if fs::read(&stamp).ok().as_deref() != Some(lock.as_slice()) {
        npm(
            portal,
            &["ci", "--no-audit", "--no-fund", "--loglevel=error"],
        );
        fs::write(&stamp, &lock).expect("writing portal/node_modules/.sihai-installed-lock");
    }
    let outdir = into.display().to_string();
    npm(
        portal,
        &[
            "run",
            "build",
            "--",
            "--outDir",
            &outdir,
            "--emptyOutDir",
            "--logLevel",
            "warn",
        ],
    );
    into.to_path_buf()
}

fn npm(portal: &Path, args: &[&str]) {
    let status = Command::new("npm").args(args).current_dir(portal).status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => panic!(
            "`npm {}` in {} failed ({status})",
            args.join(" "),
            portal.display()
        ),
        Err(err) => panic!(
            "building the portal needs Node.js 20 and npm (Debian: apt-get install nodejs npm), \
             or SIHAI_PORTAL_DIST naming a built portal: running npm failed: {err}"
        ),
    }
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let name = path
                .strip_prefix(root)
                .expect("under the root")
                .to_string_lossy()
                .replace('\\', "/");
            let absolute = fs::canonicalize(&path).expect("a file path");
            files.push((name, absolute));
        }
    }
}
