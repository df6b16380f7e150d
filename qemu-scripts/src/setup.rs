//! Installs what the project needs on a machine of this kind, skipping
//! what is already there: QEMU and OVMF (apt), the bare-metal Rust target,
//! and the pinned nightly the image builder (and Miri) need.

use crate::{Error, run_checked};
use std::path::Path;
use std::process::Command;

/// Nightly used for the `bootloader` image builder and for Miri.
pub const NIGHTLY: &str = "nightly-2026-08-01";
pub const KERNEL_TARGET: &str = "x86_64-unknown-none";
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

fn output(cmd: &mut Command) -> String {
    cmd.output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u")).trim() == "0"
}

fn apt(args: &[&str]) -> Result<(), Error> {
    let mut cmd = if is_root() {
        Command::new("apt-get")
    } else if on_path("sudo") {
        let mut c = Command::new("sudo");
        c.arg("apt-get");
        c
    } else {
        return Err(Error::new("apt packages are missing and this user is not root and has no sudo"));
    };
    cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
    run_checked(&mut cmd, "apt-get")
}

/// Makes sure QEMU (and OVMF for UEFI) are installed.
pub fn host_packages() -> Result<(), Error> {
    let mut missing = Vec::new();
    if !on_path("qemu-system-x86_64") {
        missing.push("qemu-system-x86");
    }
    if !Path::new(OVMF_CODE).exists() || !Path::new(OVMF_VARS).exists() {
        missing.push("ovmf");
    }
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing {} (apt)", missing.join(", "));
    apt(&["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(&missing);
    apt(&args)?;
    if !on_path("qemu-system-x86_64") {
        return Err(Error::new("qemu-system-x86_64 is still missing after installing qemu-system-x86"));
    }
    Ok(())
}

/// Makes sure the Rust targets, components and the pinned nightly exist.
/// `miri` adds the Miri component to the nightly.
pub fn rust_toolchains(miri: bool) -> Result<(), Error> {
    let installed_targets = output(Command::new("rustup").args(["target", "list", "--installed"]));
    if !installed_targets.lines().any(|l| l.trim() == KERNEL_TARGET) {
        eprintln!("xtask: adding Rust target {KERNEL_TARGET}");
        run_checked(Command::new("rustup").args(["target", "add", KERNEL_TARGET]), "rustup target add")?;
    }
    // The host steps run clippy and rustfmt on the default toolchain.
    let stable_components = output(Command::new("rustup").args(["component", "list", "--installed"]));
    for component in ["clippy", "rustfmt"] {
        if !stable_components.lines().any(|l| l.starts_with(component)) {
            eprintln!("xtask: adding component {component}");
            run_checked(Command::new("rustup").args(["component", "add", component]), "rustup component add")?;
        }
    }
    let toolchains = output(Command::new("rustup").args(["toolchain", "list"]));
    if !toolchains.lines().any(|l| l.starts_with(NIGHTLY)) {
        eprintln!("xtask: installing toolchain {NIGHTLY} (image builder, Miri)");
        run_checked(
            Command::new("rustup").args([
                "toolchain",
                "install",
                NIGHTLY,
                "--profile",
                "minimal",
                "--component",
                "rust-src",
                "--component",
                "llvm-tools-preview",
            ]),
            "rustup toolchain install",
        )?;
    }
    let components = output(Command::new("rustup").args(["component", "list", "--installed", "--toolchain", NIGHTLY]));
    let mut wanted = vec!["rust-src", "llvm-tools"];
    if miri {
        wanted.push("miri");
    }
    for component in wanted {
        if !components.lines().any(|l| l.starts_with(component)) {
            let name = if component == "llvm-tools" { "llvm-tools-preview" } else { component };
            eprintln!("xtask: adding component {name} to {NIGHTLY}");
            run_checked(
                Command::new("rustup").args(["component", "add", name, "--toolchain", NIGHTLY]),
                "rustup component add",
            )?;
        }
    }
    Ok(())
}
