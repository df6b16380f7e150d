//! `cargo xtask check-docs`: every `cargo xtask ...` line in a fenced code
//! block of `README.md` or `docs/*.md` must work as printed. Each line goes
//! through the xtask's own parser ([`crate::parse`]) and [`crate::dry_run`]:
//! an unknown command or option fails, a system file must exist and pass the
//! host check with the line's `--smp` (or the default), a `--filter` must
//! select a test. Nothing is built and nothing boots.
//!
//! A tutorial that has the reader write a file first may say so in an HTML
//! comment anywhere in its page, `<!-- check-docs: reader-file NAME -->`;
//! lines of that page naming NAME are still parsed, but NAME need not exist.

use crate::Error;
use std::path::Path;

/// A `cargo xtask` line found in a code block.
#[derive(Debug, PartialEq, Eq)]
pub struct DocCommand {
    pub line: usize,
    /// The command as printed, without its trailing comment.
    pub text: String,
    /// The words after `cargo xtask`.
    pub words: Vec<String>,
}

const READER_FILE: &str = "<!-- check-docs: reader-file ";

/// Files the page says its reader writes (see the module docs).
pub fn reader_files(markdown: &str) -> Vec<String> {
    markdown
        .match_indices(READER_FILE)
        .filter_map(|(at, _)| {
            let rest = &markdown[at + READER_FILE.len()..];
            rest.find("-->").map(|end| rest[..end].trim().to_string())
        })
        .collect()
}

/// Every `cargo xtask` line inside a fenced code block (``` or ~~~).
pub fn commands(markdown: &str) -> Result<Vec<DocCommand>, String> {
    let mut fence: Option<&str> = None;
    let mut found = Vec::new();
    for (index, raw) in markdown.lines().enumerate() {
        let line = raw.trim();
        match fence {
            None => {
                if line.starts_with("```") {
                    fence = Some("```");
                } else if line.starts_with("~~~") {
                    fence = Some("~~~");
                }
                continue;
            }
            Some(marker) if line.starts_with(marker) => {
                fence = None;
                continue;
            }
            Some(_) => {}
        }
        let command = line.strip_prefix("$ ").unwrap_or(line);
        if !(command == "cargo xtask" || command.starts_with("cargo xtask ")) {
            continue;
        }
        let words = split_shell(command).map_err(|e| format!("line {}: {e}", index + 1))?;
        let text = words.join(" ");
        found.push(DocCommand { line: index + 1, text, words: words[2..].to_vec() });
    }
    Ok(found)
}

/// Splits one shell command line into words: whitespace separates,
/// '...' and "..." quote, a backslash escapes the next character, and an
/// unquoted `#` at the start of a word begins a comment.
pub fn split_shell(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                words.extend(word.take());
            }
            '#' if word.is_none() => break,
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err("unclosed ' quote".into()),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => w.extend(chars.next()),
                        Some(c) => w.push(c),
                        None => return Err("unclosed \" quote".into()),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

/// The documents checked: `README.md` and every `docs/*.md`.
fn documents(root: &Path) -> Result<Vec<String>, Error> {
    let mut docs: Vec<String> = std::fs::read_dir(root.join("docs"))
        .map_err(|e| Error::new(format!("docs/: {e}")))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    docs.sort();
    docs.insert(0, "README.md".to_string());
    Ok(docs)
}

/// Checks every documented command; fails naming each one that does not work.
pub fn check_docs() -> Result<(), Error> {
    let root = crate::root();
    let mut checked = 0;
    let mut problems = Vec::new();
    let docs = documents(&root)?;
    for doc in &docs {
        let text = std::fs::read_to_string(root.join(doc)).map_err(|e| Error::new(format!("{doc}: {e}")))?;
        let exempt = reader_files(&text);
        let found = match commands(&text) {
            Ok(found) => found,
            Err(e) => {
                problems.push(format!("{doc}: {e}"));
                continue;
            }
        };
        for command in found {
            checked += 1;
            let result = crate::parse(command.words.clone()).and_then(|inv| crate::dry_run(&inv, &exempt));
            if let Err(crate::Error(msg)) = result {
                // The usage text that follows some errors is noise here.
                let msg = msg.split("\n\n").next().unwrap_or(&msg).replace('\n', "\n    ");
                problems.push(format!("{doc}:{}: `{}`: {msg}", command.line, command.text));
            }
        }
    }
    println!("xtask: check-docs: {checked} `cargo xtask` lines in {} files, {} stale", docs.len(), problems.len());
    if problems.is_empty() {
        Ok(())
    } else {
        for p in &problems {
            println!("  {p}");
        }
        Err(Error::new(format!("{} documented command(s) do not work as printed (listed above)", problems.len())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_commands_only_inside_fences() {
        let md = "Run `cargo xtask run --nope` inline.\n\n```sh\ncargo xtask run --smp 4   # a comment\nls\n$ cargo xtask test --filter 'PWR0006'\n```\n\ncargo xtask outside\n~~~\ncargo xtask bench ipc\n~~~\n";
        let found = commands(md).unwrap();
        let got: Vec<(usize, &str)> = found.iter().map(|c| (c.line, c.text.as_str())).collect();
        assert_eq!(
            got,
            [(4, "cargo xtask run --smp 4"), (6, "cargo xtask test --filter PWR0006"), (11, "cargo xtask bench ipc")]
        );
        assert_eq!(found[0].words, ["run", "--smp", "4"]);
    }

    #[test]
    fn shell_words() {
        assert_eq!(
            split_shell(r#"cargo xtask run --boot-args "test=all x" # c"#).unwrap(),
            ["cargo", "xtask", "run", "--boot-args", "test=all x"]
        );
        assert_eq!(split_shell("a b#c 'd e'").unwrap(), ["a", "b#c", "d e"]);
        assert!(split_shell("a 'b").is_err());
    }

    #[test]
    fn reader_file_markers() {
        assert_eq!(reader_files("x <!-- check-docs: reader-file my.toml --> y"), ["my.toml"]);
    }

    #[test]
    fn the_dry_run_rejects_what_a_run_would_reject() {
        let dry = |line: &str| {
            let words = split_shell(line).unwrap();
            crate::parse(words).and_then(|inv| crate::dry_run(&inv, &[]))
        };
        assert!(dry("run --firmware uefi").is_ok());
        assert!(dry("run --smp 8 --gdb -- -d int").is_ok());
        let too_few = dry("run --firmware uefi --smp 2").unwrap_err().0;
        assert!(too_few.contains("this system needs 4 cores") && too_few.contains("run with --smp 4"), "{too_few}");
        assert!(dry("run --frimware uefi").is_err());
        assert!(dry("frobnicate").is_err());
        assert!(dry("run --config no-such-file.toml").is_err());
        assert!(dry("test --filter PWR0006").is_ok());
        assert!(dry("test --filter NOPE9999").is_err());
        assert!(dry("bench ipc").is_ok());
        assert!(dry("bench ipc --smp 2").is_err(), "bench.toml needs 3 cores");
        assert!(dry("bench fast").is_err());
        assert!(dry("check-config qemu-scripts/systems/default.toml --smp 4").is_ok());
        assert!(dry("check-config qemu-scripts/systems/tests/bad-key.toml").is_err());
    }
}
