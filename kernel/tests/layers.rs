//! The kernel's modules form layers: each file imports only from modules
//! on lower lines of the diagram in `src/main.rs`'s module documentation,
//! and modules on one line never import each other. This test reads that
//! diagram and every `crate::<module>` reference in `src/`, so the picture
//! in the docs and the code cannot drift apart.
//!
//! Inside a folder module (`src/server/`, ...) the files must not form a
//! circle either: `mod.rs` may not import its sibling files.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Layer of each top-level module: 0 = top.
fn layers_from_main(main: &str) -> BTreeMap<String, usize> {
    let start = main.find("//! ```text").expect("src/main.rs has a ```text layer diagram in its docs");
    let mut layers = BTreeMap::new();
    for (layer, line) in main[start..].lines().skip(1).take_while(|l| !l.contains("```")).enumerate() {
        let line = line.trim_start_matches("//!");
        // Module names come first, separated by two spaces; a run of
        // three or more spaces starts the description.
        let names = line.trim_start().split("   ").next().unwrap_or("");
        for name in names.split_whitespace() {
            assert!(layers.insert(name.to_string(), layer).is_none(), "module `{name}` appears twice in the diagram");
        }
    }
    assert!(!layers.is_empty(), "empty layer diagram");
    layers
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Top-level modules a line of code refers to with `crate::`.
fn crate_references(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a, b::c};`: the first segment of each item.
            let inside = group.split('}').next().unwrap_or("");
            found.extend(
                inside
                    .split(',')
                    .filter_map(|item| item.trim().split("::").next())
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            );
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            found.push(name);
        }
    }
    // The console macros are defined in `serial` and exported at the crate root.
    found.into_iter().map(|m| if m == "kprintln" || m == "kprint" { "serial".to_string() } else { m }).collect()
}

#[test]
fn every_import_points_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layers = layers_from_main(&fs::read_to_string(src.join("main.rs")).unwrap());
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        if relative == Path::new("main.rs") {
            continue;
        }
        let first = relative.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
        let module = first.trim_end_matches(".rs").to_string();
        let Some(&own) = layers.get(&module) else {
            wrong.push(format!("{}: module `{module}` is not in the layer diagram of src/main.rs", relative.display()));
            continue;
        };
        let text = fs::read_to_string(file).unwrap();
        for (number, line) in text.lines().enumerate() {
            for target in crate_references(line) {
                if target == module {
                    continue;
                }
                match layers.get(&target) {
                    None => wrong.push(format!("{}:{}: `crate::{target}` is not in the layer diagram", relative.display(), number + 1)),
                    Some(&layer) if layer <= own => wrong.push(format!(
                        "{}:{}: `{module}` (line {} of the diagram) uses `crate::{target}` (line {}): imports must point down",
                        relative.display(),
                        number + 1,
                        own + 1,
                        layer + 1
                    )),
                    Some(_) => {}
                }
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn folder_modules_do_not_import_their_own_files_from_mod_rs() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in files.iter().filter(|f| f.file_name().is_some_and(|n| n == "mod.rs")) {
        let dir = file.parent().unwrap();
        let siblings: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                let p = e.unwrap().path();
                let stem = p.file_stem()?.to_string_lossy().into_owned();
                (stem != "mod").then_some(stem)
            })
            .collect();
        let text = fs::read_to_string(file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("pub mod ") || code.starts_with("mod ") || code.starts_with("//") {
                continue;
            }
            for sibling in &siblings {
                let uses = [format!("use {sibling}::"), format!("use self::{sibling}::"), format!(" {sibling}::")];
                if uses.iter().any(|u| code.contains(u.as_str())) {
                    wrong.push(format!(
                        "{}:{}: mod.rs uses its own file `{sibling}`",
                        file.strip_prefix(&src).unwrap().display(),
                        number + 1
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "folder modules with circles:\n{}", wrong.join("\n"));
}

#[test]
fn the_checker_sees_a_wrong_import() {
    let layers = layers_from_main("//! ```text\n//!  top   a\n//!  low  other   b\n//! ```\n");
    assert_eq!(layers["top"], 0);
    assert_eq!(layers["other"], 1);
    assert_eq!(crate_references("use crate::{low::x, top};"), ["low", "top"]);
    assert_eq!(crate_references("crate::kprintln!(\"x\"); // crate::top"), ["serial"]);
}
