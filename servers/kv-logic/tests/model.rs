//! Property tests: the session's answers do not depend on how the bytes
//! are split, every line gets one well-formed response, and the store
//! behaves like a map with a size limit.

use kv_logic::{LINE_CAPACITY, MAX_RESPONSE, Session, Store};
use proptest::prelude::*;
use std::collections::HashMap;

const CAPACITY: usize = 4;

/// Feeds `input` in pieces of the given sizes into output buffers of the
/// given sizes (at least MAX_RESPONSE), collecting every response byte.
fn feed_in_pieces(input: &[u8], pieces: &[usize], out_sizes: &[usize]) -> Vec<u8> {
    let mut store: Store<CAPACITY> = Store::new();
    let mut session = Session::new();
    let mut sent = Vec::new();
    let (mut at, mut turn) = (0, 0);
    while at < input.len() {
        let piece = pieces[turn % pieces.len()].max(1);
        let end = (at + piece).min(input.len());
        let mut chunk = &input[at..end];
        while !chunk.is_empty() {
            let mut out = vec![0u8; out_sizes[turn % out_sizes.len()]];
            let progress = session.feed(&mut store, chunk, &mut out);
            assert!(progress.consumed > 0, "no progress with {} bytes of room", out.len());
            sent.extend_from_slice(&out[..progress.written]);
            chunk = &chunk[progress.consumed..];
            turn += 1;
        }
        at = end;
    }
    sent
}

/// Lines of `input` the service must answer: each `\n`-ended line, plus a
/// trailing unfinished one that is already too long.
fn expected_lines(input: &[u8]) -> usize {
    let mut parts: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    let last = parts.pop().unwrap_or(&[]);
    parts.len() + usize::from(last.len() > LINE_CAPACITY)
}

fn well_formed(response: &[u8]) -> bool {
    response == b"OK"
        || response == b"NOT_FOUND"
        || response.strip_prefix(b"VALUE ").is_some_and(|v| !v.is_empty())
        || response.strip_prefix(b"ERR ").is_some_and(|r| !r.is_empty() && !r.contains(&b' '))
}

fn stream() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"SET ".to_vec()),
        Just(b"GET ".to_vec()),
        Just(b"k".to_vec()),
        Just(b"j ".to_vec()),
        Just(b"value".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(vec![b'x'; LINE_CAPACITY - 3]),
        Just(vec![0xc3, 0xa9]),
        prop::collection::vec(any::<u8>(), 0..8),
    ];
    prop::collection::vec(token, 0..40).prop_map(|tokens| tokens.concat())
}

proptest! {
    #[test]
    fn answers_do_not_depend_on_the_split(
        input in stream(),
        pieces in prop::collection::vec(1usize..50, 1..8),
        out_sizes in prop::collection::vec(MAX_RESPONSE..3 * MAX_RESPONSE, 1..4),
    ) {
        let whole = feed_in_pieces(&input, &[input.len().max(1)], &[(input.len() + 1) * MAX_RESPONSE]);
        let split = feed_in_pieces(&input, &pieces, &out_sizes);
        prop_assert_eq!(&whole, &split);
        prop_assert!(whole.is_empty() || whole.ends_with(b"\n"));
        let responses: Vec<&[u8]> = whole.split(|&b| b == b'\n').filter(|r| !r.is_empty()).collect();
        prop_assert_eq!(responses.len(), expected_lines(&input));
        for response in responses {
            prop_assert!(response.len() < MAX_RESPONSE);
            prop_assert!(well_formed(response), "{:?}", String::from_utf8_lossy(response));
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Set(u8, Vec<u8>),
    Get(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let value = prop::collection::vec(0x20u8..=0x7e, 1..=kv_logic::MAX_VALUE);
    prop_oneof![(0u8..8, value).prop_map(|(k, v)| Op::Set(k, v)), (0u8..8).prop_map(Op::Get)]
}

proptest! {
    #[test]
    fn the_store_is_a_bounded_map(ops in prop::collection::vec(op(), 1..60)) {
        let mut store: Store<CAPACITY> = Store::new();
        let mut session = Session::new();
        let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        for op in ops {
            let (line, expected) = match op {
                Op::Set(k, value) => {
                    let key = format!("key{k}").into_bytes();
                    let line = [b"SET ".as_slice(), &key, b" ", &value, b"\n"].concat();
                    let expected = if model.contains_key(&key) || model.len() < CAPACITY {
                        model.insert(key, value);
                        b"OK\n".to_vec()
                    } else {
                        b"ERR full\n".to_vec()
                    };
                    (line, expected)
                }
                Op::Get(k) => {
                    let key = format!("key{k}").into_bytes();
                    let line = [b"GET ".as_slice(), &key, b"\n"].concat();
                    let expected = match model.get(&key) {
                        Some(value) => [b"VALUE ".as_slice(), value, b"\n"].concat(),
                        None => b"NOT_FOUND\n".to_vec(),
                    };
                    (line, expected)
                }
            };
            let mut out = [0u8; MAX_RESPONSE];
            let progress = session.feed(&mut store, &line, &mut out);
            prop_assert_eq!(progress.consumed, line.len());
            prop_assert_eq!(&out[..progress.written], expected.as_slice());
        }
        prop_assert_eq!(store.len(), model.len());
    }
}

#[test]
fn an_over_long_line_is_answered_once_then_skipped() {
    let mut input = vec![b'a'; 3 * LINE_CAPACITY];
    input.extend_from_slice(b"\nGET k\n");
    let out = feed_in_pieces(&input, &[7, 100], &[MAX_RESPONSE]);
    assert_eq!(out, b"ERR too-long\nNOT_FOUND\n");
}

#[test]
fn a_client_gone_mid_request_leaves_nothing_behind() {
    let mut store: Store<CAPACITY> = Store::new();
    let mut session = Session::new();
    let mut out = [0u8; MAX_RESPONSE];
    assert_eq!(session.feed(&mut store, b"SET half", &mut out).written, 0);
    assert_eq!(session.pending(), 8);
    session.reset();
    let progress = session.feed(&mut store, b"GET half\n", &mut out);
    assert_eq!(&out[..progress.written], b"NOT_FOUND\n");
    assert!(store.is_empty());
}
