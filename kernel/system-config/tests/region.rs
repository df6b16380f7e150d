//! Host tests of `[[region]]`: a valid file, each server's view, the round
//! trip through `to_toml`, every error at its line and column, and the
//! memory check the kernel makes at boot.

use system_config::{Access, ConfigError, parse};

const BASE: &str = r#"[system]
mover_cores = [1]

[[server]]
name = "src"
core = 2

[[server]]
name = "sink"
core = 3

[[server]]
name = "spy"
core = 4

[[region]]
name = "frames"
size_kib = 1024
owner = "src"
shared_with = [{ server = "sink", access = "ro" }, { server = "spy", access = "rw" }]

[[region]]
name = "replies"
size_kib = 64
owner = "sink"
shared_with = [{ server = "src", access = "ro" }]
"#;

fn edit(from: &str, to: &str) -> String {
    assert_eq!(BASE.matches(from).count(), 1, "`{from}` must occur once");
    BASE.replace(from, to)
}

fn first_line(text: &str) -> String {
    let err: ConfigError = parse(text).expect_err("expected an error");
    err.render("system.toml", text).lines().next().unwrap().to_string()
}

#[test]
fn regions_parse_and_each_server_sees_its_own_in_file_order() {
    let c = parse(BASE).unwrap();
    assert_eq!(c.regions.len(), 2);
    let frames = &c.regions[0];
    assert_eq!((frames.index, frames.name.as_str(), frames.size_kib, frames.owner), (0, "frames", 1024, 0));
    assert_eq!(frames.size_bytes(), 1 << 20);
    assert_eq!(frames.origin.0.line, 17);
    assert_eq!(frames.size_origin.0.line, 18);
    let view = |s: usize| -> Vec<(String, Access)> { c.regions_of(s).map(|(r, a)| (r.name.clone(), a)).collect() };
    assert_eq!(view(0), [("frames".into(), Access::ReadWrite), ("replies".into(), Access::ReadOnly)]);
    assert_eq!(view(1), [("frames".into(), Access::ReadOnly), ("replies".into(), Access::ReadWrite)]);
    assert_eq!(view(2), [("frames".into(), Access::ReadWrite)]);
}

#[test]
fn no_regions_and_no_shares_are_fine() {
    assert!(parse("[system]\nmover_cores = [1]\n").unwrap().regions.is_empty());
    let c = parse(&edit(r#"shared_with = [{ server = "src", access = "ro" }]"#, "")).unwrap();
    assert!(c.regions[1].shared_with.is_empty());
    assert_eq!(c.regions_of(0).count(), 1);
}

#[test]
fn regions_round_trip_through_to_toml() {
    let c = parse(BASE).unwrap();
    let text = c.to_toml();
    assert!(
        text.contains(
            "[[region]]\nname = \"frames\"\nsize_kib = 1024\nowner = \"src\"\nshared_with = [{ server = \"sink\", \
             access = \"ro\" }, { server = \"spy\", access = \"rw\" }]\n"
        ),
        "{text}"
    );
    let again = parse(&text).unwrap_or_else(|e| panic!("{}", e.render("emitted", &text)));
    assert_eq!(again, c);
}

#[test]
fn every_region_error_points_at_its_value() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"owner = "src""#,
            r#"owner = "nobody""#,
            "system.toml:19:9: key `region[0].owner`: no server named `nobody`; \
             expected the name of a server in this file (`sink`, `spy`, `src`)",
        ),
        (
            r#"{ server = "spy", access = "rw" }"#,
            r#"{ server = "ghost", access = "rw" }"#,
            "system.toml:20:63: key `region[0].shared_with[1].server`: no server named `ghost`; \
             expected the name of a server in this file (`sink`, `spy`, `src`)",
        ),
        (
            r#"{ server = "spy", access = "rw" }"#,
            r#"{ server = "spy", access = "wx" }"#,
            "system.toml:20:79: key `region[0].shared_with[1].access`: `wx` is not an access; \
             expected \"ro\" or \"rw\"",
        ),
        (
            r#"{ server = "spy", access = "rw" }"#,
            r#"{ server = "src", access = "rw" }"#,
            "system.toml:20:63: key `region[0].shared_with[1].server`: `src` is the owner; \
             expected servers other than the owner (it holds the region read/write already)",
        ),
        (
            r#"{ server = "spy", access = "rw" }"#,
            r#"{ server = "sink", access = "rw" }"#,
            "system.toml:20:63: key `region[0].shared_with[1].server`: `sink` is listed twice; \
             expected each server once",
        ),
        (
            "size_kib = 1024",
            "size_kib = 1026",
            "system.toml:18:12: key `region[0].size_kib`: 1026 KiB is not a whole number of 4 KiB pages; \
             expected a multiple of 4 in 4..=1048576",
        ),
        (
            "size_kib = 1024",
            "size_kib = 0",
            "system.toml:18:12: key `region[0].size_kib`: 0 is out of range; expected an integer in 4..=1048576",
        ),
        (
            "size_kib = 1024",
            "size_kib = 2097152",
            "system.toml:18:12: key `region[0].size_kib`: 2097152 is out of range; \
             expected an integer in 4..=1048576",
        ),
        (
            "size_kib = 64",
            "size_kib = 1047556",
            "system.toml:24:12: key `region[1].size_kib`: the regions up to `replies` add up to 1048580 KiB; \
             expected at most 1048576 KiB of regions in all",
        ),
        (
            r#"name = "replies""#,
            r#"name = "frames""#,
            "system.toml:23:8: key `region[1].name`: two regions named `frames` (lines 17 and 23); \
             expected unique region names",
        ),
        (
            r#"name = "replies""#,
            r#"name = "Replies!""#,
            "system.toml:23:8: key `region[1].name`: `Replies!` is not a valid region name; \
             expected 1 to 32 characters from a-z, 0-9, `_` and `-`",
        ),
        (
            "size_kib = 64",
            "size_kb = 64",
            "system.toml:24:1: key `region[1].size_kb`: unknown key `size_kb`; \
             expected one of `name`, `size_kib`, `owner`, `shared_with`",
        ),
        (
            r#"{ server = "src", access = "ro" }"#,
            r#"{ server = "src", acess = "ro" }"#,
            "system.toml:26:34: key `region[1].shared_with[0].acess`: unknown key `acess`; \
             expected `server` or `access`",
        ),
    ];
    for (from, to, expected) in cases {
        assert_eq!(&first_line(&edit(from, to)), expected, "{from} -> {to}");
    }
}

#[test]
fn at_most_max_regions_per_server() {
    let mut text = String::from("[system]\nmover_cores = [1]\n\n[[server]]\nname = \"a\"\ncore = 2\n");
    let n = abi::region::MAX_REGIONS;
    for i in 0..=n {
        text.push_str(&format!("\n[[region]]\nname = \"r{i}\"\nsize_kib = 4\nowner = \"a\"\n"));
    }
    let line = text.lines().position(|l| l == format!("name = \"r{n}\"")).unwrap() + 3;
    assert_eq!(
        first_line(&text),
        format!(
            "system.toml:{line}:9: key `region[{n}].owner`: server `a` would hold {} regions; \
             expected at most {n} regions per server",
            n + 1
        )
    );
}

#[test]
fn the_boot_memory_check_points_at_the_region_that_does_not_fit() {
    let c = parse(BASE).unwrap();
    assert!(c.check_region_memory(1088).is_ok());
    let err = c.check_region_memory(1087).unwrap_err();
    assert_eq!(
        err.render("system.toml", BASE).lines().next().unwrap(),
        "system.toml:24:12: key `region[1].size_kib`: region `replies` (64 KiB) does not fit: the regions up to \
         it need 1088 KiB, this machine has 1087 KiB free for them; expected smaller regions, or more memory"
    );
    assert_eq!(c.check_region_memory(0).unwrap_err().line(), Some(18));
}

#[test]
fn the_example_in_docs_regions_md_parses_to_what_the_text_says() {
    let doc = include_str!("../../../docs/regions.md");
    let start = doc.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let text = &doc[start..start + doc[start..].find("```").unwrap()];
    let c = parse(text).unwrap_or_else(|e| panic!("{}", e.render("docs/regions.md", text)));
    let stream = &c.regions[0];
    assert_eq!((stream.name.as_str(), stream.size_kib, stream.owner), ("stream", 1024, 0));
    assert_eq!(c.regions_of(1).map(|(r, a)| (r.name.as_str(), a)).collect::<Vec<_>>(), [("stream", Access::ReadOnly)]);
}

#[test]
fn the_shipped_region_systems_parse() {
    for text in [
        include_str!("../../../qemu-scripts/systems/tests/regions-stream.toml"),
        include_str!("../../../qemu-scripts/systems/tests/regions-stream-1g.toml"),
    ] {
        let c = parse(text).unwrap_or_else(|e| panic!("{}", e.render("regions-stream.toml", text)));
        assert_eq!(c.regions.len(), 4);
    }
}
