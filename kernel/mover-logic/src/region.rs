//! Buffer descriptors: the mover's checks on a message that carries a
//! (region, offset, length, access) descriptor, and the rewrite of its
//! region reference from the sender's view into the receiver's.
//!
//! Invariants (property-tested below against a model):
//! - a descriptor passes only if the sender holds the region with at least
//!   the access asked, `offset + length` does not wrap and lies inside the
//!   region, the access is `ro` or `rw`, and the receiver holds the same
//!   region with at least that access;
//! - what is delivered names the same region in the receiver's table and
//!   the same range; nothing else of the message changes;
//! - everything is decided on the mover's private copy; the tables are the
//!   kernel's (from the system TOML), never anything a server wrote.

use abi::region::{ACCESS_RO, ACCESS_RW, DESCRIPTOR_LEN, Descriptor, FLAG_DESCRIPTOR, MAX_REGIONS, allows};
use alloc::vec::Vec;
use ringbuf::{Message, PAYLOAD_CAPACITY};

/// One region as one server holds it: the kernel's record, entry `i` of a
/// server's table is its region `i` (`abi::region::addr(i)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionGrant {
    /// The region's position in the system TOML (the same for every holder).
    pub region: u32,
    /// Its size in bytes.
    pub size: u64,
    /// `abi::region::ACCESS_RO` or `ACCESS_RW`.
    pub access: u16,
}

/// Why a descriptor was refused (all bounce with `BadDescriptor`; the
/// kind is for tests and counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DescriptorError {
    /// Flags other than `FLAG_DESCRIPTOR`, or a payload too short to hold one.
    Shape,
    /// `access` is neither `ro` nor `rw`.
    UnknownAccess,
    /// The sender has no region with that index.
    SenderLacksRegion,
    /// The sender holds it `ro` and asked for `rw`.
    SenderLacksAccess,
    /// `offset + length` wraps around.
    Wraps,
    /// The range ends past the region (or the length is 0).
    OutOfRange,
    /// The receiver does not hold the region.
    ReceiverLacksRegion,
    /// The receiver holds it `ro` and `rw` was asked.
    ReceiverLacksAccess,
}

/// Checks `d` (the sender's view) and returns it in the receiver's view.
#[inline]
pub fn check_descriptor(
    d: &Descriptor,
    sender: &[RegionGrant],
    receiver: &[RegionGrant],
) -> Result<Descriptor, DescriptorError> {
    if d.access != ACCESS_RO && d.access != ACCESS_RW {
        return Err(DescriptorError::UnknownAccess);
    }
    let held = sender.get(usize::from(d.region)).ok_or(DescriptorError::SenderLacksRegion)?;
    if !allows(held.access, d.access) {
        return Err(DescriptorError::SenderLacksAccess);
    }
    let end = d.offset.checked_add(u64::from(d.length)).ok_or(DescriptorError::Wraps)?;
    if d.length == 0 || end > held.size {
        return Err(DescriptorError::OutOfRange);
    }
    let (slot, theirs) = receiver
        .iter()
        .enumerate()
        .find(|(_, g)| g.region == held.region)
        .ok_or(DescriptorError::ReceiverLacksRegion)?;
    if !allows(theirs.access, d.access) {
        return Err(DescriptorError::ReceiverLacksAccess);
    }
    // `slot < MAX_REGIONS` in the kernel's tables; a table longer than a
    // u16 can count is refused rather than truncated.
    let region = u16::try_from(slot).map_err(|_| DescriptorError::ReceiverLacksRegion)?;
    Ok(Descriptor { region, ..*d })
}

/// Whether a message's flags and length have the shape of a descriptor
/// message (`FLAG_DESCRIPTOR`, payload at least `DESCRIPTOR_LEN` bytes).
#[inline]
pub fn is_descriptor_shape(message: &Message) -> bool {
    message.flags == FLAG_DESCRIPTOR && (DESCRIPTOR_LEN..=PAYLOAD_CAPACITY).contains(&(message.payload_len as usize))
}

/// Checks the descriptor `message` carries and rewrites it in place into
/// the receiver's view. `message` is the mover's private copy.
#[inline]
pub fn rewrite_descriptor(
    message: &mut Message,
    sender: &[RegionGrant],
    receiver: &[RegionGrant],
) -> Result<(), DescriptorError> {
    if !is_descriptor_shape(message) {
        return Err(DescriptorError::Shape);
    }
    let d = Descriptor::decode(&message.payload).ok_or(DescriptorError::Shape)?;
    let theirs = check_descriptor(&d, sender, receiver)?;
    // Only the region reference changes (`check_descriptor` keeps the
    // rest): two bytes written, not the whole descriptor encoded again.
    message.payload[..2].copy_from_slice(&theirs.region.to_le_bytes());
    Ok(())
}

/// How one of a sender's regions appears to one other server: the slot it
/// has there and the access it holds it with (`access` 0: it does not
/// hold it). Precomputed at boot ([`region_routes`]), so the mover's check
/// of a descriptor is two table loads, no search of the receiver's table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionRoute {
    pub slot: u8,
    pub access: u8,
}

/// A sender's regions as the mover checks its descriptors: its grants,
/// and for destination server `d` and its slot `s` the route at
/// `routes[d * MAX_REGIONS + s]`.
#[derive(Clone, Copy, Debug)]
pub struct SenderRegions<'a> {
    pub grants: &'a [RegionGrant],
    pub routes: &'a [RegionRoute],
}

impl SenderRegions<'static> {
    /// A sender with no regions (every descriptor bounces).
    pub const NONE: SenderRegions<'static> = SenderRegions { grants: &[], routes: &[] };
}

/// The routes of a server holding `sender` to each server of `all` (their
/// grants, in server order): for destination `d` and slot `s`, where `d`
/// holds the region of `sender[s]` and with what access.
pub fn region_routes(sender: &[RegionGrant], all: &[&[RegionGrant]]) -> Vec<RegionRoute> {
    let mut routes = alloc::vec![RegionRoute::default(); all.len() * MAX_REGIONS];
    for (d, theirs) in all.iter().enumerate() {
        for (s, held) in sender.iter().enumerate().take(MAX_REGIONS) {
            let found = theirs.iter().enumerate().find(|(_, g)| g.region == held.region);
            if let Some((slot, g)) = found
                && let (Ok(slot), Ok(access)) = (u8::try_from(slot), u8::try_from(g.access))
            {
                routes[d * MAX_REGIONS + s] = RegionRoute { slot, access };
            }
        }
    }
    routes
}

/// [`rewrite_descriptor`] for a message to server `destination`, with the
/// receiver's side looked up in the sender's precomputed routes: the same
/// checks in the same order, the same verdicts (property-tested below),
/// about half the instructions (docs/regions.md).
#[inline]
pub fn rewrite_routed(
    message: &mut Message,
    sender: SenderRegions<'_>,
    destination: usize,
) -> Result<(), DescriptorError> {
    if !is_descriptor_shape(message) {
        return Err(DescriptorError::Shape);
    }
    let d = Descriptor::decode(&message.payload).ok_or(DescriptorError::Shape)?;
    if d.access != ACCESS_RO && d.access != ACCESS_RW {
        return Err(DescriptorError::UnknownAccess);
    }
    let slot = usize::from(d.region);
    let held = sender.grants.get(slot).ok_or(DescriptorError::SenderLacksRegion)?;
    if !allows(held.access, d.access) {
        return Err(DescriptorError::SenderLacksAccess);
    }
    let end = d.offset.checked_add(u64::from(d.length)).ok_or(DescriptorError::Wraps)?;
    if d.length == 0 || end > held.size {
        return Err(DescriptorError::OutOfRange);
    }
    let route =
        destination.checked_mul(MAX_REGIONS).and_then(|at| sender.routes.get(at + slot)).copied().unwrap_or_default();
    if route.access == 0 {
        return Err(DescriptorError::ReceiverLacksRegion);
    }
    if !allows(u16::from(route.access), d.access) {
        return Err(DescriptorError::ReceiverLacksAccess);
    }
    message.payload[..2].copy_from_slice(&u16::from(route.slot).to_le_bytes());
    Ok(())
}

/// A delivered descriptor message handed back to its sender (its receiver
/// stopped before taking it): the region reference translated from the
/// receiver's view back into the sender's. The slot it was read from could
/// have been rewritten by the dead receiver, so a reference that does not
/// translate loses its descriptor (flags cleared): the sender still learns
/// which message came back from its sequence number.
pub fn descriptor_back(message: &Message, receiver: &[RegionGrant], sender: &[RegionGrant]) -> Message {
    let mut out = *message;
    if out.flags == 0 {
        return out;
    }
    let back = Descriptor::decode(&out.payload).and_then(|d| {
        let held = receiver.get(usize::from(d.region))?;
        let slot = sender.iter().position(|g| g.region == held.region)?;
        Some(Descriptor { region: u16::try_from(slot).ok()?, ..d })
    });
    match back {
        Some(d) if is_descriptor_shape(&out) => out.payload[..DESCRIPTOR_LEN].copy_from_slice(&d.encode()),
        _ => out.flags = 0,
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KIB: u64 = 1024;

    fn grant(region: u32, size: u64, access: u16) -> RegionGrant {
        RegionGrant { region, size, access }
    }

    fn d(region: u16, offset: u64, length: u32, access: u16) -> Descriptor {
        Descriptor { region, access, length, offset }
    }

    /// Sender holds regions 7 (rw, 64 KiB) and 9 (ro, 8 KiB); the receiver
    /// holds 9 (rw) and 7 (ro), in the other order.
    fn tables() -> ([RegionGrant; 2], [RegionGrant; 2]) {
        (
            [grant(7, 64 * KIB, ACCESS_RW), grant(9, 8 * KIB, ACCESS_RO)],
            [grant(9, 8 * KIB, ACCESS_RW), grant(7, 64 * KIB, ACCESS_RO)],
        )
    }

    #[test]
    fn a_good_descriptor_is_rewritten_into_the_receivers_view() {
        let (s, r) = tables();
        assert_eq!(check_descriptor(&d(0, 4096, 4096, ACCESS_RO), &s, &r), Ok(d(1, 4096, 4096, ACCESS_RO)));
        assert_eq!(check_descriptor(&d(1, 0, 8192, ACCESS_RO), &s, &r), Ok(d(0, 0, 8192, ACCESS_RO)));
        // The whole region, to the last byte.
        assert_eq!(check_descriptor(&d(0, 0, 65536, ACCESS_RO), &s, &r), Ok(d(1, 0, 65536, ACCESS_RO)));
    }

    #[test]
    fn each_hostile_descriptor_has_its_reason() {
        let (s, r) = tables();
        let cases = [
            (d(0, 65535, 2, ACCESS_RO), DescriptorError::OutOfRange),
            (d(0, 65536, 1, ACCESS_RO), DescriptorError::OutOfRange),
            (d(0, 0, 0, ACCESS_RO), DescriptorError::OutOfRange),
            (d(2, 0, 1, ACCESS_RO), DescriptorError::SenderLacksRegion),
            (d(u16::MAX, 0, 1, ACCESS_RO), DescriptorError::SenderLacksRegion),
            (d(1, 0, 1, ACCESS_RW), DescriptorError::SenderLacksAccess),
            (d(0, 0, 1, ACCESS_RW), DescriptorError::ReceiverLacksAccess),
            (d(0, u64::MAX - 3, 8, ACCESS_RO), DescriptorError::Wraps),
            (d(0, u64::MAX, 1, ACCESS_RO), DescriptorError::Wraps),
            (d(0, 0, 1, 0), DescriptorError::UnknownAccess),
            (d(0, 0, 1, 3), DescriptorError::UnknownAccess),
        ];
        for (desc, why) in cases {
            assert_eq!(check_descriptor(&desc, &s, &r), Err(why), "{desc:?}");
        }
        assert_eq!(
            check_descriptor(&d(0, 0, 1, ACCESS_RO), &s, &[grant(9, 8 * KIB, ACCESS_RW)]),
            Err(DescriptorError::ReceiverLacksRegion)
        );
    }

    #[test]
    fn the_message_is_rewritten_in_place_and_only_the_region_changes() {
        let (s, r) = tables();
        let mut payload = [0u8; 40];
        payload[..16].copy_from_slice(&d(0, 100, 200, ACCESS_RO).encode());
        payload[16..24].copy_from_slice(b"inline!!");
        let mut m = Message::new(3, 77, &payload[..24]).unwrap();
        m.flags = FLAG_DESCRIPTOR;
        let before = m;
        rewrite_descriptor(&mut m, &s, &r).unwrap();
        assert_eq!(Descriptor::decode(&m.payload), Some(d(1, 100, 200, ACCESS_RO)));
        assert_eq!(&m.payload[16..24], b"inline!!");
        assert_eq!((m.label, m.destination_endpoint, m.payload_len, m.flags), (77, 3, 24, FLAG_DESCRIPTOR));
        // And back again, for a hand-back.
        assert_eq!(descriptor_back(&m, &r, &s), before);
    }

    #[test]
    fn shapes_that_are_not_descriptor_messages_are_refused() {
        let (s, r) = tables();
        let mut short = Message::new(0, 1, &[0; 15]).unwrap();
        short.flags = FLAG_DESCRIPTOR;
        assert_eq!(rewrite_descriptor(&mut short, &s, &r), Err(DescriptorError::Shape));
        let mut other_flag = Message::new(0, 1, &d(0, 0, 1, ACCESS_RO).encode()).unwrap();
        other_flag.flags = 2;
        assert_eq!(rewrite_descriptor(&mut other_flag, &s, &r), Err(DescriptorError::Shape));
        let mut too_long = other_flag;
        too_long.flags = FLAG_DESCRIPTOR;
        too_long.payload_len = 41;
        assert_eq!(rewrite_descriptor(&mut too_long, &s, &r), Err(DescriptorError::Shape));
    }

    #[test]
    fn a_hand_back_that_does_not_translate_loses_its_descriptor() {
        let (s, r) = tables();
        let mut m = Message::new(0, 1, &d(5, 0, 1, ACCESS_RO).encode()).unwrap();
        m.flags = FLAG_DESCRIPTOR;
        assert_eq!(descriptor_back(&m, &r, &s).flags, 0);
        let plain = Message::new(0, 1, b"x").unwrap();
        assert_eq!(descriptor_back(&plain, &r, &s), plain);
    }

    /// The model: a descriptor is good iff every byte it names is a byte of
    /// a region both hold, with the access asked.
    fn model_ok(desc: &Descriptor, s: &[RegionGrant], r: &[RegionGrant]) -> bool {
        let Some(held) = s.get(desc.region as usize) else { return false };
        let Some(theirs) = r.iter().find(|g| g.region == held.region) else { return false };
        let access_ok = |g: &RegionGrant| match desc.access {
            ACCESS_RO => true,
            ACCESS_RW => g.access == ACCESS_RW,
            _ => false,
        };
        let end = desc.offset as u128 + desc.length as u128;
        access_ok(held) && access_ok(theirs) && desc.length > 0 && end <= held.size as u128
    }

    fn grants(max_regions: u32) -> impl Strategy<Value = Vec<RegionGrant>> {
        proptest::collection::vec((0..max_regions, 1u64..8, prop_oneof![Just(ACCESS_RO), Just(ACCESS_RW)]), 0..6)
            .prop_map(|v| {
                let mut seen = Vec::new();
                v.into_iter()
                    .filter(|(r, _, _)| {
                        let fresh = !seen.contains(r);
                        seen.push(*r);
                        fresh
                    })
                    // A region's size depends on the region only.
                    .map(|(r, _, a)| grant(r, (u64::from(r) + 1) * 4096, a))
                    .collect()
            })
    }

    proptest! {
        #[test]
        fn checks_agree_with_the_model(
            s in grants(6),
            r in grants(6),
            region in 0u16..8,
            offset in prop_oneof![0u64..40_000, (u64::MAX - 70_000)..=u64::MAX],
            length in prop_oneof![0u32..30_000, Just(u32::MAX)],
            access in 0u16..4,
        ) {
            let desc = d(region, offset, length, access);
            let got = check_descriptor(&desc, &s, &r);
            prop_assert_eq!(got.is_ok(), model_ok(&desc, &s, &r), "{:?} -> {:?}", desc, got);
            if let Ok(theirs) = got {
                let g = r[theirs.region as usize];
                prop_assert_eq!(g.region, s[region as usize].region, "same region, receiver's index");
                prop_assert_eq!((theirs.offset, theirs.length, theirs.access), (offset, length, access));
            }
        }

        /// The routed check gives the same verdict and the same message
        /// as the searching one, for any destination among several servers.
        #[test]
        fn routed_checks_agree_with_the_search(
            s in grants(6),
            others in proptest::collection::vec(grants(6), 1..4),
            to in 0usize..5,
            region in 0u16..8,
            offset in prop_oneof![0u64..40_000, (u64::MAX - 70_000)..=u64::MAX],
            length in prop_oneof![0u32..30_000, Just(u32::MAX)],
            access in 0u16..4,
            flags in prop_oneof![Just(FLAG_DESCRIPTOR), Just(0u16), Just(3u16)],
            len in prop_oneof![Just(DESCRIPTOR_LEN), 0usize..=PAYLOAD_CAPACITY],
        ) {
            let mut all: Vec<&[RegionGrant]> = others.iter().map(|g| g.as_slice()).collect();
            all.insert(0, &s);
            let routes = region_routes(&s, &all);
            let mut message = Message::new(0, 1, &[0u8; PAYLOAD_CAPACITY][..len]).unwrap();
            message.payload[..DESCRIPTOR_LEN].copy_from_slice(&d(region, offset, length, access).encode());
            message.flags = flags;
            let receiver: &[RegionGrant] = all.get(to).copied().unwrap_or(&[]);
            let (mut searched, mut routed) = (message, message);
            let expected = rewrite_descriptor(&mut searched, &s, receiver);
            let got = rewrite_routed(&mut routed, SenderRegions { grants: &s, routes: &routes }, to);
            prop_assert_eq!(got, expected);
            prop_assert_eq!(routed, searched);
        }
    }

    #[test]
    fn routes_name_the_receivers_slot_and_access() {
        let (s, r) = tables();
        let routes = region_routes(&s, &[&s, &r, &[]]);
        assert_eq!(routes.len(), 3 * MAX_REGIONS);
        for (slot, held) in s.iter().enumerate() {
            assert_eq!(routes[slot], RegionRoute { slot: slot as u8, access: held.access as u8 }, "itself");
            assert_eq!(routes[2 * MAX_REGIONS + slot].access, 0, "a server holding nothing");
        }
        let mut m = Message::new(0, 1, &d(0, 4096, 4096, ACCESS_RO).encode()).unwrap();
        m.flags = FLAG_DESCRIPTOR;
        rewrite_routed(&mut m, SenderRegions { grants: &s, routes: &routes }, 1).unwrap();
        assert_eq!(Descriptor::decode(&m.payload), Some(d(1, 4096, 4096, ACCESS_RO)));
        assert_eq!(rewrite_routed(&mut m, SenderRegions::NONE, 1), Err(DescriptorError::SenderLacksRegion));
    }
}
