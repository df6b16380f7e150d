//! `cargo xtask check-deps`: the table in `docs/README.md` is the one
//! statement of which of our crates depends on which; this compares it with
//! the workspace (`cargo metadata`) and fails naming every edge that differs.
//!
//! What is compared: path dependencies (our own crates), normal and build
//! kinds, any target. Dev-dependencies are ignored: tests may use anything.
//!
//! The table: a Markdown table whose header has a `folder` column, a
//! `crate(s)` column and a column starting with `depends on`. A row's folder
//! is a crate's folder (`kernel/mover-logic/`) or a glob for every other
//! crate in a folder (`servers/*`). Its `depends on` cell lists crate names
//! in backticks; no backticks means nothing of ours. For a folder the list
//! is exact (a missing edge is as wrong as an extra one); for a glob it is
//! what each crate there may use. Rules below the table are checked too:
//! "- `A/` never depends on `B/` or `C`" and "- `A/` depends on nothing of ours".

use crate::Error;
use crate::workspace::{DepKind, Package};
use std::collections::BTreeSet;

/// One row of the table.
#[derive(Debug)]
struct Row {
    line: usize,
    folder: String,
    crates: Vec<String>,
    depends_on: BTreeSet<String>,
}

/// A rule line under the table.
#[derive(Debug)]
enum Rule {
    Never { line: usize, from: Vec<String>, to: Vec<String> },
    Nothing { line: usize, from: Vec<String> },
}

/// The names between backticks in `text`.
fn ticked(text: &str) -> Vec<String> {
    text.split('`').skip(1).step_by(2).map(|s| s.trim().to_string()).collect()
}

fn cells(line: &str) -> Vec<&str> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(str::trim).collect()
}

/// Reads the table and the rules from the text of `docs/README.md`.
fn parse_map(text: &str) -> Result<(Vec<Row>, Vec<Rule>), String> {
    let lines: Vec<&str> = text.lines().collect();
    let header = lines
        .iter()
        .position(|l| {
            let c = cells(l);
            l.trim_start().starts_with('|')
                && c.first() == Some(&"folder")
                && c.iter().any(|c| c.starts_with("depends on"))
        })
        .ok_or("no table with a `folder` column and a `depends on` column")?;
    let columns = cells(lines[header]);
    let column = |name: &str| {
        columns.iter().position(|c| c.starts_with(name)).ok_or(format!("the table has no `{name}` column"))
    };
    let (folder_at, crates_at, deps_at) = (column("folder")?, column("crate")?, column("depends on")?);
    let mut rows = Vec::new();
    let mut end = header + 2;
    for (index, line) in lines.iter().enumerate().skip(header + 2) {
        if !line.trim_start().starts_with('|') {
            break;
        }
        end = index + 1;
        let c = cells(line);
        if c.len() != columns.len() {
            return Err(format!("line {}: {} cells, the header has {}", index + 1, c.len(), columns.len()));
        }
        let folder = ticked(c[folder_at]).into_iter().next().ok_or(format!("line {}: no `folder`", index + 1))?;
        if c[crates_at].is_empty() {
            continue; // a folder without crates (docs/)
        }
        let crates = ticked(c[crates_at]);
        rows.push(Row { line: index + 1, folder, crates, depends_on: ticked(c[deps_at]).into_iter().collect() });
    }
    let mut rules = Vec::new();
    for (index, line) in lines.iter().enumerate().skip(end) {
        let Some(item) = line.trim_start().strip_prefix("- ") else { continue };
        if let Some((from, to)) = item.split_once(" never depends on ") {
            let (from, to) = (ticked(from), ticked(to));
            if from.is_empty() || to.is_empty() {
                return Err(format!("line {}: a `never depends on` rule names its folders in backticks", index + 1));
            }
            rules.push(Rule::Never { line: index + 1, from, to });
        } else if let Some((from, _)) = item.split_once(" depends on nothing of ours") {
            rules.push(Rule::Nothing { line: index + 1, from: ticked(from) });
        }
    }
    Ok((rows, rules))
}

/// Whether `pattern` (a folder `kernel/`, a glob `servers/*` or a crate
/// name) covers `package`.
fn covers(pattern: &str, package: &Package) -> bool {
    if let Some(parent) = pattern.strip_suffix("/*") {
        package.dir.rsplit_once('/').is_some_and(|(p, _)| p == parent)
    } else if let Some(folder) = pattern.strip_suffix('/') {
        package.dir == folder || package.dir.starts_with(&format!("{folder}/"))
    } else {
        package.name == pattern
    }
}

/// Compares the workspace with the map; returns one line per difference.
fn compare(packages: &[Package], rows: &[Row], rules: &[Rule]) -> Vec<String> {
    let mut problems = Vec::new();
    let ours: BTreeSet<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    for row in rows {
        let glob = row.folder.ends_with("/*");
        // A glob row's crate list is an example; every other name must exist.
        for name in row.crates.iter().filter(|_| !glob).chain(&row.depends_on) {
            if !ours.contains(name.as_str()) {
                problems.push(format!("docs/README.md:{}: `{name}` is not a crate of this workspace", row.line));
            }
        }
    }
    let edges = |p: &Package| -> BTreeSet<String> {
        p.path_deps.iter().filter(|d| d.kind != DepKind::Dev).map(|d| d.name.clone()).collect()
    };
    for package in packages {
        let exact = rows.iter().find(|r| !r.folder.ends_with("/*") && r.folder.trim_end_matches('/') == package.dir);
        let row = exact.or_else(|| rows.iter().find(|r| r.folder.ends_with("/*") && covers(&r.folder, package)));
        let Some(row) = row else {
            problems
                .push(format!("crate `{}` ({}/) has no row in the table of docs/README.md", package.name, package.dir));
            continue;
        };
        if exact.is_some() && !row.crates.contains(&package.name) {
            problems.push(format!(
                "docs/README.md:{}: folder `{}` holds crate `{}`, the table says {:?}",
                row.line, row.folder, package.name, row.crates
            ));
        }
        let actual = edges(package);
        let allowed = |list: &BTreeSet<String>| {
            if list.is_empty() {
                "nothing of ours".to_string()
            } else {
                list.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
            }
        };
        for dep in actual.difference(&row.depends_on) {
            problems.push(format!(
                "`{}` depends on `{dep}`, which docs/README.md:{} does not allow (it lists {})",
                package.name,
                row.line,
                allowed(&row.depends_on)
            ));
        }
        if exact.is_some() {
            for dep in row.depends_on.difference(&actual) {
                problems.push(format!(
                    "docs/README.md:{} says `{}` depends on `{dep}`, but it does not (stale table)",
                    row.line, package.name
                ));
            }
        }
    }
    for rule in rules {
        match rule {
            Rule::Never { line, from, to } => {
                for package in packages.iter().filter(|p| from.iter().any(|f| covers(f, p))) {
                    for dep in edges(package) {
                        let Some(target) = packages.iter().find(|p| p.name == dep) else { continue };
                        if to.iter().any(|t| covers(t, target)) {
                            problems.push(format!(
                                "`{}` ({}/) depends on `{dep}` ({}/), against the rule at docs/README.md:{line}",
                                package.name, package.dir, target.dir
                            ));
                        }
                    }
                }
            }
            Rule::Nothing { line, from } => {
                for package in packages.iter().filter(|p| from.iter().any(|f| covers(f, p))) {
                    for dep in edges(package) {
                        problems.push(format!(
                            "`{}` depends on `{dep}`, against the rule at docs/README.md:{line}",
                            package.name
                        ));
                    }
                }
            }
        }
    }
    problems
}

/// The check itself: `cargo xtask check-deps` and a step of `cargo xtask test`.
pub fn check_deps() -> Result<(), Error> {
    let root = crate::root();
    let text =
        std::fs::read_to_string(root.join("docs/README.md")).map_err(|e| Error::new(format!("docs/README.md: {e}")))?;
    let (rows, rules) = parse_map(&text).map_err(|e| Error::new(format!("docs/README.md: {e}")))?;
    let packages = crate::workspace::packages(&root)?;
    let problems = compare(&packages, &rows, &rules);
    let edges: usize = packages.iter().map(|p| p.path_deps.iter().filter(|d| d.kind != DepKind::Dev).count()).sum();
    println!(
        "xtask: check-deps: {} crates, {edges} edges, {} rows, {} rules: {} problem(s)",
        packages.len(),
        rows.len(),
        rules.len(),
        problems.len()
    );
    if problems.is_empty() {
        return Ok(());
    }
    for p in &problems {
        println!("  {p}");
    }
    Err(Error::new(format!(
        "{} difference(s) between the crates' dependencies and docs/README.md (listed above)",
        problems.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::PathDep;

    const MAP: &str = "\
| folder | crate(s) | holds | depends on (ours) |
| --- | --- | --- | --- |
| `kernel/` | `kernel` | the kernel | `ringbuf`, `abi` |
| `ringbuf/` | `ringbuf` | the ring | nothing of ours |
| `servers/abi/` | `abi` | the ABI | nothing |
| `servers/*` | the servers | servers | `abi` |
| `docs/` | | words | |

- `servers/` never depends on `kernel/`.
- `ringbuf/` depends on nothing of ours.
";

    fn package(name: &str, dir: &str, deps: &[(&str, DepKind)]) -> Package {
        Package {
            name: name.into(),
            dir: dir.into(),
            binaries: Vec::new(),
            path_deps: deps.iter().map(|(n, k)| PathDep { name: (*n).into(), kind: *k }).collect(),
        }
    }

    fn workspace(extra: Vec<Package>) -> Vec<Package> {
        let mut all = vec![
            package("kernel", "kernel", &[("ringbuf", DepKind::Normal), ("abi", DepKind::Build)]),
            package("ringbuf", "ringbuf", &[("kernel", DepKind::Dev)]),
            package("abi", "servers/abi", &[]),
            package("echo", "servers/echo", &[("abi", DepKind::Normal)]),
        ];
        all.extend(extra);
        all
    }

    #[test]
    fn the_table_and_rules_parse() {
        let (rows, rules) = parse_map(MAP).unwrap();
        assert_eq!(rows.len(), 4, "docs/ has no crate");
        assert_eq!(rows[0].depends_on.iter().collect::<Vec<_>>(), ["abi", "ringbuf"]);
        assert!(rows[1].depends_on.is_empty());
        assert_eq!(rules.len(), 2);
    }

    #[test]
    fn a_true_map_passes_and_dev_dependencies_are_ignored() {
        let (rows, rules) = parse_map(MAP).unwrap();
        assert_eq!(compare(&workspace(vec![]), &rows, &rules), Vec::<String>::new());
    }

    #[test]
    fn a_new_server_needs_no_new_row() {
        let (rows, rules) = parse_map(MAP).unwrap();
        let greet = package("greet", "servers/greet", &[("abi", DepKind::Normal)]);
        assert!(compare(&workspace(vec![greet]), &rows, &rules).is_empty());
    }

    #[test]
    fn every_wrong_edge_is_named() {
        let (rows, rules) = parse_map(MAP).unwrap();
        let mut ws = workspace(vec![package("bad", "servers/bad", &[("kernel", DepKind::Normal)])]);
        ws[1].path_deps.push(PathDep { name: "abi".into(), kind: DepKind::Normal });
        ws[0].path_deps.remove(1);
        let problems = compare(&ws, &rows, &rules).join("\n");
        assert!(problems.contains("`bad` depends on `kernel`, which docs/README.md:6 does not allow"), "{problems}");
        assert!(
            problems
                .contains("`bad` (servers/bad/) depends on `kernel` (kernel/), against the rule at docs/README.md:9"),
            "{problems}"
        );
        assert!(problems.contains("`ringbuf` depends on `abi`, against the rule at docs/README.md:10"), "{problems}");
        assert!(problems.contains("docs/README.md:3 says `kernel` depends on `abi`, but it does not"), "{problems}");
        let unknown = package("stray", "tools/stray", &[]);
        assert!(compare(&workspace(vec![unknown]), &rows, &rules)[0].contains("has no row"));
    }
}
