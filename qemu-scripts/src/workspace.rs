//! What the workspace holds, read from `cargo metadata`: every package,
//! where it lives, whether it builds a binary, and its path dependencies
//! on our own crates. The server list and the dependency check come from
//! here, so adding a server is a crate under `servers/` plus a TOML entry.

use crate::Error;
use std::path::Path;
use std::process::Command;

/// Kind of a dependency edge, as `cargo metadata` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepKind {
    Normal,
    Build,
    Dev,
}

/// A dependency of one of our packages on another of ours (a `path` dependency).
#[derive(Debug, Clone)]
pub struct PathDep {
    pub name: String,
    pub kind: DepKind,
}

/// One workspace package.
#[derive(Debug, Clone)]
pub struct Package {
    pub name: String,
    /// Its folder relative to the workspace root, `/`-separated (`servers/echo`).
    pub dir: String,
    /// Names of its binary targets.
    pub binaries: Vec<String>,
    pub path_deps: Vec<PathDep>,
}

/// Runs `cargo metadata --no-deps` in `root` and returns every workspace package.
pub fn packages(root: &Path) -> Result<Vec<Package>, Error> {
    let out = Command::new("cargo")
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .output()
        .map_err(|e| Error::new(format!("cannot start `cargo metadata`: {e}")))?;
    if !out.status.success() {
        return Err(Error::new(format!("`cargo metadata` failed: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    parse_metadata(&String::from_utf8_lossy(&out.stdout))
}

/// Parses the JSON of `cargo metadata --format-version 1 --no-deps`.
pub fn parse_metadata(json: &str) -> Result<Vec<Package>, Error> {
    let bad = |what: &str| Error::new(format!("`cargo metadata` output: {what}"));
    let meta: serde_json::Value = serde_json::from_str(json).map_err(|e| bad(&e.to_string()))?;
    let root = meta["workspace_root"].as_str().ok_or_else(|| bad("no workspace_root"))?;
    let root = root.trim_end_matches(['/', '\\']);
    let mut packages = Vec::new();
    for p in meta["packages"].as_array().ok_or_else(|| bad("no packages"))? {
        let name = p["name"].as_str().ok_or_else(|| bad("a package without a name"))?.to_string();
        let manifest = p["manifest_path"].as_str().ok_or_else(|| bad("a package without manifest_path"))?;
        let dir = manifest
            .strip_prefix(root)
            .and_then(|rest| rest.strip_suffix("Cargo.toml"))
            .map(|rest| rest.replace('\\', "/").trim_matches('/').to_string())
            .ok_or_else(|| bad(&format!("package `{name}` lies outside the workspace root")))?;
        let binaries = p["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "bin")))
            .filter_map(|t| t["name"].as_str().map(String::from))
            .collect();
        let path_deps = p["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["path"].is_string())
            .map(|d| PathDep {
                name: d["name"].as_str().unwrap_or("?").to_string(),
                kind: match d["kind"].as_str() {
                    Some("dev") => DepKind::Dev,
                    Some("build") => DepKind::Build,
                    _ => DepKind::Normal,
                },
            })
            .collect();
        packages.push(Package { name, dir, binaries, path_deps });
    }
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(packages)
}

/// The user-space servers: every package directly under `servers/` with a
/// binary target (`servers/abi` and `servers/userlib` are libraries).
pub fn servers(packages: &[Package]) -> Vec<&Package> {
    packages
        .iter()
        .filter(|p| p.dir.strip_prefix("servers/").is_some_and(|rest| !rest.is_empty() && !rest.contains('/')))
        .filter(|p| !p.binaries.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: &str = r#"{"workspace_root": "/w", "packages": [
        {"name": "echo", "manifest_path": "/w/servers/echo/Cargo.toml",
         "targets": [{"name": "echo", "kind": ["bin"]}],
         "dependencies": [{"name": "userlib", "kind": null, "path": "/w/servers/userlib"},
                          {"name": "serde", "kind": null}]},
        {"name": "userlib", "manifest_path": "/w/servers/userlib/Cargo.toml",
         "targets": [{"name": "userlib", "kind": ["lib"]}],
         "dependencies": [{"name": "abi", "kind": null, "path": "/w/servers/abi"},
                          {"name": "proptest-helper", "kind": "dev", "path": "/w/x"}]},
        {"name": "kernel", "manifest_path": "/w/kernel/Cargo.toml",
         "targets": [{"name": "kernel", "kind": ["bin"]}], "dependencies": []}
    ]}"#;

    #[test]
    fn servers_are_binaries_under_servers() {
        let packages = parse_metadata(META).unwrap();
        let names: Vec<&str> = servers(&packages).iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["echo"]);
        let userlib = packages.iter().find(|p| p.name == "userlib").unwrap();
        assert_eq!(userlib.dir, "servers/userlib");
        assert_eq!(userlib.path_deps.len(), 2);
        assert_eq!(userlib.path_deps[1].kind, DepKind::Dev);
        let echo = packages.iter().find(|p| p.name == "echo").unwrap();
        assert_eq!(echo.path_deps.len(), 1, "registry dependencies are not ours");
    }
}
