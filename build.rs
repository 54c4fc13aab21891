//! Link options for the `switchboard` executable, both about how much of it stays resident.
//!
//! - Packed relative relocations (`DT_RELR`): a position-independent executable carries one
//!   relocation per pointer in its read-only-after-start data; in the classic format each
//!   takes 24 bytes (about 0.6 MB here), all read at start and kept resident. The packed
//!   format needs a few kilobytes. The loader must know it (glibc 2.36 and later), so it is
//!   asked for only when building on such a system for itself.
//! - The functions a start and a call run, placed together (`link/hot-functions.txt`, made
//!   by `scripts/profile-call order`): the kernel maps a whole page-cache folio (about
//!   112 KiB here) around each code page first touched, so functions run once each, spread
//!   over the 8 MB of code, would keep most of it resident. Only the release build, and only
//!   with rustc's own `rust-lld` (the default from Rust 1.90 on x86-64 Linux), which reads
//!   the list; names the build no longer has are skipped.

use std::path::Path;
use std::process::Command;

/// The ordered function list, relative to the package.
const HOT_FUNCTIONS: &str = "link/hot-functions.txt";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={HOT_FUNCTIONS}");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let env = |name: &str| std::env::var(name).unwrap_or_default();
    let target = env("TARGET");
    let native = target == env("HOST");
    if native && env("CARGO_CFG_TARGET_ENV") == "gnu" && glibc_at_least(2, 36) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    let hot = Path::new(&env("CARGO_MANIFEST_DIR")).join(HOT_FUNCTIONS);
    // Any linker or linker flavour chosen by hand may not be lld.
    let linker_chosen = env("CARGO_ENCODED_RUSTFLAGS").contains("link")
        || std::env::vars().any(|(k, _)| k.starts_with("CARGO_TARGET_") && k.ends_with("_LINKER"));
    if env("PROFILE") == "release"
        && target == "x86_64-unknown-linux-gnu"
        && !linker_chosen
        && rustc_at_least(90)
        && hot.is_file()
    {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={},--no-warn-symbol-ordering",
            hot.display()
        );
    }
}

/// Whether the build machine's glibc (`getconf GNU_LIBC_VERSION`: "glibc 2.36") is at
/// least `major.minor`; false when it cannot tell.
fn glibc_at_least(major: u32, minor: u32) -> bool {
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    version_at_least(text.trim().trim_start_matches("glibc "), major, minor)
}

/// Whether the compiler (`rustc 1.95.0 (…)`) is at least 1.`minor`; false when it cannot tell.
fn rustc_at_least(minor: u32) -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let Ok(out) = Command::new(rustc).arg("--version").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let number = text.split_whitespace().nth(1).unwrap_or("");
    version_at_least(number, 1, minor)
}

/// Whether `text` ("2.36", "1.95.0-nightly") is at least `major.minor`.
fn version_at_least(text: &str, major: u32, minor: u32) -> bool {
    let mut parts = text.split(['.', '-']).map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(a), Some(b)) => (a, b) >= (major, minor),
        _ => false,
    }
}
