//! Host tests of `[[direct_ring]]`: a valid file, defaults, the round trip
//! through `to_toml`, and every error at its line and column.

use system_config::{ConfigError, parse};

const BASE: &str = r#"[system]
mover_cores = [1]
ring_slots_default = 32

[[server]]
name = "a"
core = 2

[[server]]
name = "b"
core = 3

[[direct_ring]]
name = "a-to-b"
producer = "a"
consumer = "b"
slots = 64

[[direct_ring]]
name = "b-to-a"
producer = "b"
consumer = "a"
"#;

/// `BASE` with `from` replaced by `to` (exactly once).
fn edit(from: &str, to: &str) -> String {
    assert_eq!(BASE.matches(from).count(), 1, "`{from}` must occur once");
    BASE.replace(from, to)
}

/// The first line of the rendered error for `text`.
fn first_line(text: &str) -> String {
    let err: ConfigError = parse(text).expect_err("expected an error");
    err.render("system.toml", text).lines().next().unwrap().to_string()
}

#[test]
fn direct_rings_parse_with_defaults_in_file_order() {
    let c = parse(BASE).unwrap();
    assert_eq!(c.direct_rings.len(), 2);
    let (ab, ba) = (&c.direct_rings[0], &c.direct_rings[1]);
    assert_eq!((ab.index, ab.name.as_str(), ab.producer, ab.consumer, ab.slots), (0, "a-to-b", 0, 1, 64));
    assert_eq!((ba.index, ba.name.as_str(), ba.producer, ba.consumer), (1, "b-to-a", 1, 0));
    assert_eq!(ba.slots, 32, "slots default to system.ring_slots_default");
    let of_a: Vec<&str> = c.direct_rings_of(0).map(|r| r.name.as_str()).collect();
    assert_eq!(of_a, ["a-to-b", "b-to-a"]);
    assert_eq!(ab.origin.0.line, 14);
}

#[test]
fn a_file_without_direct_rings_has_none() {
    let c = parse("[system]\nmover_cores = [1]\n").unwrap();
    assert!(c.direct_rings.is_empty());
}

#[test]
fn direct_rings_round_trip_through_to_toml() {
    let c = parse(BASE).unwrap();
    let text = c.to_toml();
    assert!(
        text.contains("[[direct_ring]]\nname = \"b-to-a\"\nproducer = \"b\"\nconsumer = \"a\"\nslots = 32\n"),
        "{text}"
    );
    let again = parse(&text).unwrap_or_else(|e| panic!("{}", e.render("emitted", &text)));
    assert_eq!(again, c);
    assert_eq!(again.to_toml(), text);
}

#[test]
fn every_direct_ring_error_points_at_its_value() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"producer = "a""#,
            r#"producer = "c""#,
            "system.toml:15:12: key `direct_ring[0].producer`: no server named `c`; \
             expected the name of a server in this file (`a`, `b`)",
        ),
        (
            r#"consumer = "a""#,
            r#"consumer = "nobody""#,
            "system.toml:22:12: key `direct_ring[1].consumer`: no server named `nobody`; \
             expected the name of a server in this file (`a`, `b`)",
        ),
        (
            r#"consumer = "b""#,
            r#"consumer = "a""#,
            "system.toml:16:12: key `direct_ring[0].consumer`: `a` is the producer too; \
             expected two different servers (a server talks to itself without a ring)",
        ),
        (
            r#"name = "b-to-a""#,
            r#"name = "a-to-b""#,
            "system.toml:20:8: key `direct_ring[1].name`: two direct rings named `a-to-b` \
             (lines 14 and 20); expected unique direct ring names",
        ),
        (
            r#"name = "b-to-a""#,
            r#"name = "B to A""#,
            "system.toml:20:8: key `direct_ring[1].name`: `B to A` is not a valid direct ring \
             name; expected 1 to 32 characters from a-z, 0-9, `_` and `-`",
        ),
        (
            "slots = 64",
            "slots = 48",
            "system.toml:17:9: key `direct_ring[0].slots`: 48 slots is not a power of two; \
             expected a power of two in 2..=4096 (slots of 64 bytes)",
        ),
        (
            "slots = 64",
            "slots = 8192",
            "system.toml:17:9: key `direct_ring[0].slots`: 8192 slots is out of range; \
             expected a power of two in 2..=4096 (slots of 64 bytes)",
        ),
        (
            "slots = 64",
            "slots = 1",
            "system.toml:17:9: key `direct_ring[0].slots`: 1 slots is out of range; \
             expected a power of two in 2..=4096 (slots of 64 bytes)",
        ),
        (
            "slots = 64",
            "slot = 64",
            "system.toml:17:1: key `direct_ring[0].slot`: unknown key `slot`; \
             expected one of `name`, `producer`, `consumer`, `slots`",
        ),
        (
            r#"slots = 64"#,
            r#"slots = "64""#,
            "system.toml:17:9: key `direct_ring[0].slots`: invalid type: string \"64\"; expected an integer",
        ),
    ];
    for (from, to, expected) in cases {
        assert_eq!(&first_line(&edit(from, to)), expected, "{from} -> {to}");
    }
}

#[test]
fn a_missing_required_key_names_the_table() {
    let text = edit("producer = \"a\"\n", "");
    let err = parse(&text).unwrap_err();
    assert!(err.to_string().contains("producer"), "{err}");
}

#[test]
fn at_most_max_direct_rings_per_server() {
    let mut text = String::from("[system]\nmover_cores = [1]\n\n[[server]]\nname = \"hub\"\ncore = 2\n");
    for i in 0..=abi::MAX_DIRECT_RINGS {
        text.push_str(&format!("\n[[server]]\nname = \"s{i}\"\ncore = {}\n", i + 3));
    }
    for i in 0..=abi::MAX_DIRECT_RINGS {
        text.push_str(&format!("\n[[direct_ring]]\nname = \"r{i}\"\nproducer = \"s{i}\"\nconsumer = \"hub\"\n"));
    }
    let n = abi::MAX_DIRECT_RINGS;
    let line = text.lines().position(|l| l == format!("name = \"r{n}\"")).unwrap() + 3;
    assert_eq!(
        first_line(&text),
        format!(
            "system.toml:{line}:12: key `direct_ring[{n}].consumer`: server `hub` would be an end of {} \
             direct rings; expected at most {n} direct rings per server",
            n + 1
        )
    );
    // One fewer is fine, and every ring counts for both of its ends.
    let fewer = text[..text.find(&format!("\n[[direct_ring]]\nname = \"r{n}\"")).unwrap()].to_string();
    let c = parse(&fewer).unwrap();
    assert_eq!(c.direct_rings_of(0).count(), n);
}
