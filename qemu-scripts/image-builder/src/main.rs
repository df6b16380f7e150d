//! Builds bootable disk images from the kernel ELF with the `bootloader` crate.
//!
//! Usage: `image-builder --kernel ELF [--ramdisk FILE] [--bios OUT] [--uefi OUT]`.
//! Driven by `cargo xtask`; kept apart because it needs nightly.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut kernel = None;
    let mut ramdisk = None;
    let mut bios = None;
    let mut uefi = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--kernel" => &mut kernel,
            "--ramdisk" => &mut ramdisk,
            "--bios" => &mut bios,
            "--uefi" => &mut uefi,
            other => {
                eprintln!("image-builder: unknown option `{other}`");
                return ExitCode::FAILURE;
            }
        };
        match args.next() {
            Some(value) => *slot = Some(PathBuf::from(value)),
            None => {
                eprintln!("image-builder: `{flag}` needs a value");
                return ExitCode::FAILURE;
            }
        }
    }
    let Some(kernel) = kernel else {
        eprintln!("image-builder: --kernel ELF is required");
        return ExitCode::FAILURE;
    };
    let mut builder = bootloader::DiskImageBuilder::new(kernel);
    if let Some(ramdisk) = ramdisk {
        builder.set_ramdisk(ramdisk);
    }
    if let Some(out) = bios {
        if let Err(err) = builder.create_bios_image(&out) {
            eprintln!("image-builder: BIOS image {}: {err:#}", out.display());
            return ExitCode::FAILURE;
        }
    }
    if let Some(out) = uefi {
        if let Err(err) = builder.create_uefi_image(&out) {
            eprintln!("image-builder: UEFI image {}: {err:#}", out.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
