//! The virtio-net driver server (issue 16; `docs/drivers.md`). Modes:
//!
//! - `mode=driver`: the polling driver (virtio-drivers over the granted
//!   BARs and DMA memory, `userlib::device::virtio`); frames travel to
//!   and from `netstack` as descriptors of two regions (`net-proto`'s
//!   `link_label`).
//! - `mode=probe`: the device-grant check of test `DEV0001`: it lists the
//!   PCI functions the kernel granted it (info page), reads each one's
//!   configuration space through `pci_config` and checks the ids, sizes a
//!   BAR through the kernel's shadow (the BAR must not move), checks that
//!   the kernel keeps I/O decoding off, reads a register of a mapped
//!   memory BAR and writes and reads back its DMA memory's first and last
//!   words. With `expect=none` it checks the opposite: no devices in its
//!   info page and `pci_config` refused with `NOT_GRANTED`.
//! - `mode=arp`: the driver alone sends an ARP request for the gateway and
//!   polls until the reply comes (`DEV0002`).
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use userlib::Device;
use userlib::abi::device::{BAR_IO, BAR_MEMORY, BAR_MEMORY_UNMAPPED, BAR_NONE};

userlib::server_main!(run);

fn run() -> i32 {
    match (userlib::arg("mode"), userlib::arg("expect")) {
        (Some("probe"), Some("none")) => probe_without_grant(),
        (Some("probe"), _) => probe(),
        (Some("arp"), _) => arp_test(),
        (Some("driver"), _) => driver(),
        (mode, _) => {
            userlib::log!("virtio-net: mode {mode:?} is not known (modes: driver, probe, arp)");
            2
        }
    }
}

fn probe_without_grant() -> i32 {
    let count = Device::all().count();
    let refused = userlib::device::pci_config_read(0, 0);
    let ok = count == 0 && refused.is_err_and(|e| e.0 == userlib::abi::err::NOT_GRANTED);
    userlib::log!(
        "probe: no grant: {count} devices in the info page, pci_config(0, 0) = {}",
        match refused {
            Ok(_) => "a word (the kernel answered!)",
            Err(e) => e.name(),
        }
    );
    if ok {
        userlib::log!("probe: no grant: nothing reachable, as expected");
        0
    } else {
        1
    }
}

fn probe() -> i32 {
    let mut failures = 0;
    let mut count = 0;
    for device in Device::all() {
        count += 1;
        let info = device.info();
        userlib::log!(
            "probe: device `{}` (device {}): {:04x}:{:04x} at {:02x}:{:02x}.{}, config space {} bytes",
            device.name(),
            device.index(),
            info.vendor,
            info.device,
            info.bus,
            info.slot,
            info.function,
            if info.extended_config == 1 { 4096 } else { 256 }
        );
        for (i, bar) in info.bars.iter().enumerate() {
            let kind = match bar.kind {
                BAR_NONE => continue,
                BAR_MEMORY => "memory, mapped uncached",
                BAR_IO => "I/O ports, not accessible",
                BAR_MEMORY_UNMAPPED => "memory, not mapped",
                _ => "unknown",
            };
            userlib::log!("probe:   BAR{i}: {kind}, phys {:#x}, {} bytes", bar.phys, bar.size);
        }
        // Identity through the system call.
        match device.config_read(0) {
            Ok(id) if id == u32::from(info.vendor) | (u32::from(info.device) << 16) => {
                userlib::log!("probe: config space id {id:#010x} matches the info page")
            }
            other => {
                userlib::log!("probe: config space id read gave {other:?}, expected the info page's ids");
                failures += 1;
            }
        }
        failures += size_a_bar(&device);
        failures += io_stays_off(&device);
        failures += read_a_register(&device);
        failures += touch_dma(&device);
    }
    if count == 0 {
        userlib::log!("probe: no devices granted");
        return 1;
    }
    userlib::log!("probe: {count} device(s), {failures} failure(s)");
    if failures == 0 { 0 } else { 1 }
}

/// Sizes the first memory BAR the way drivers do (write all ones, read,
/// restore) and checks the kernel's shadow gave the size and the BAR did
/// not move.
fn size_a_bar(device: &Device) -> u32 {
    let Some((i, bar)) = device.info().bars.iter().enumerate().find(|(_, b)| b.kind == BAR_MEMORY) else {
        return 0;
    };
    let offset = 0x10 + 4 * i as u16;
    let before = device.config_read(offset);
    let wrote = device.config_write(offset, 0xffff_ffff);
    let sized = device.config_read(offset);
    let restored = device.config_write(offset, before.unwrap_or(0));
    let after = device.config_read(offset);
    let (Ok(before), Ok(()), Ok(sized), Ok(()), Ok(after)) = (before, wrote, sized, restored, after) else {
        userlib::log!("probe: BAR{i} sizing: a pci_config call was refused");
        return 1;
    };
    let size = (!(sized & !0xf)).wrapping_add(1);
    let low_phys = (bar.phys & 0xffff_fff0) as u32;
    if before & !0xf == low_phys && after == before && u64::from(size) == bar.size.min(1 << 31) {
        userlib::log!("probe: BAR{i} sized through the shadow: {size} bytes, BAR unchanged at {:#x}", before & !0xf);
        0
    } else {
        userlib::log!("probe: BAR{i} sizing went wrong: before {before:#x}, sized {sized:#x}, after {after:#x}");
        1
    }
}

/// Asks for I/O decoding and memory decoding: the kernel must keep I/O off.
fn io_stays_off(device: &Device) -> u32 {
    let Ok(command) = device.config_read(4) else { return 1 };
    let asked = (command & 0xffff) | 0x7;
    let wrote = device.config_write(4, asked);
    let Ok(now) = device.config_read(4) else { return 1 };
    if wrote.is_ok() && now & 1 == 0 && now & 2 == 2 {
        userlib::log!("probe: command {asked:#x} asked, {:#x} set: I/O decoding stays off", now & 0xffff);
        0
    } else {
        userlib::log!("probe: command write gave {wrote:?}, register now {now:#x}");
        1
    }
}

/// Reads a word of the first mapped memory BAR, and asks for a word past
/// its end (refused by the library before any access).
fn read_a_register(device: &Device) -> u32 {
    let Some((i, bar)) = device.info().bars.iter().enumerate().find(|(_, b)| b.kind == BAR_MEMORY) else {
        return 0;
    };
    let Ok(word) = device.read32(i, 0) else {
        userlib::log!("probe: BAR{i} could not be read");
        return 1;
    };
    let past = device.read32(i, bar.size);
    userlib::log!("probe: BAR{i} word 0 reads {word:#x}; a word past its end: {past:?}");
    u32::from(past.is_ok())
}

/// Writes and reads back the DMA memory's first and last words, and checks
/// its physical address translation.
fn touch_dma(device: &Device) -> u32 {
    let (addr, phys, size) = device.dma();
    if size == 0 {
        userlib::log!("probe: no DMA memory");
        return 0;
    }
    let last = size - 8;
    let wrote = device.dma_write_u64(0, 0x5a5a_0000_0000_0001).and(device.dma_write_u64(last, 0xa5a5_ffff_0000_0002));
    let ok = wrote.is_ok()
        && device.dma_read_u64(0) == Ok(0x5a5a_0000_0000_0001)
        && device.dma_read_u64(last) == Ok(0xa5a5_ffff_0000_0002)
        && device.dma_read_u64(size).is_err();
    let translated = device.dma_phys_of(addr + size - 8, 8) == Some(phys + size - 8);
    let outside = device.dma_phys_of(addr + size - 4, 8).is_none();
    userlib::log!(
        "probe: DMA memory: {} KiB at phys {phys:#x}, mapped at {addr:#x}; first and last words written and read back: {ok}; translation {}",
        size / 1024,
        if translated && outside { "checked" } else { "wrong" }
    );
    u32::from(!(ok && translated && outside))
}

/// Our address on QEMU's user network, and its gateway.
const OUR_IP: [u8; 4] = [10, 0, 2, 15];
const GATEWAY_IP: [u8; 4] = [10, 0, 2, 2];

/// An ARP request from `mac`/`OUR_IP` for `GATEWAY_IP`, padded to 60 bytes.
fn arp_request(mac: [u8; 6]) -> [u8; 60] {
    let mut f = [0u8; 60];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    // Ethernet, IPv4, 6-byte and 4-byte addresses, request.
    f[14..22].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&OUR_IP);
    f[38..42].copy_from_slice(&GATEWAY_IP);
    f
}

/// The sender's MAC if `frame` is an ARP reply from `GATEWAY_IP`.
fn arp_reply_from_gateway(frame: &[u8]) -> Option<[u8; 6]> {
    let is_reply = frame.get(12..14)? == [0x08, 0x06] && frame.get(20..22)? == [0, 2];
    (is_reply && frame.get(28..32)? == GATEWAY_IP).then(|| frame[22..28].try_into().ok()).flatten()
}

/// The driver's self-test (test `DEV0002`): opens the granted virtio-net
/// device through `virtio-drivers`, sends an ARP request for QEMU's
/// gateway and polls the receive queue until the reply comes (no
/// interrupts), resending once a second, for at most 20 s.
fn arp_test() -> i32 {
    let Some(device) = Device::with_ids(0x1af4, 0x1000).or_else(|| Device::with_ids(0x1af4, 0x1041)) else {
        userlib::log!("arp: no virtio-net device granted");
        return 1;
    };
    let mut net = match userlib::device::virtio::NetDevice::open(device) {
        Ok(net) => net,
        Err(e) => {
            userlib::log!("arp: the device could not be opened: {e:?}");
            return 1;
        }
    };
    let mac = net.mac();
    userlib::log!(
        "arp: virtio-net up, MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, polling",
        mac[0],
        mac[1],
        mac[2],
        mac[3],
        mac[4],
        mac[5]
    );
    let second = userlib::tsc_hz();
    let start = userlib::rdtsc();
    let mut sent = 0u32;
    let mut next_send = start;
    let mut frames = 0u32;
    loop {
        let now = userlib::rdtsc();
        if now.wrapping_sub(start) > 20 * second {
            userlib::log!("arp: no reply from 10.0.2.2 after {sent} requests and {frames} other frames");
            return 1;
        }
        if now >= next_send {
            match net.transmit(&arp_request(mac)) {
                Ok(()) => sent += 1,
                Err(e) => userlib::log!("arp: transmit refused: {e:?}"),
            }
            next_send = now + second;
        }
        let mut found = None;
        while net.poll_receive(|frame| {
            frames += 1;
            if found.is_none() {
                found = arp_reply_from_gateway(frame);
            }
        }) {}
        if let Some(m) = found {
            userlib::log!(
                "arp: 10.0.2.2 is at {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} ({sent} request(s) sent, {frames} frame(s) received)",
                m[0],
                m[1],
                m[2],
                m[3],
                m[4],
                m[5]
            );
            return 0;
        }
        core::hint::spin_loop();
    }
}

use net_proto::link_label as label;

/// The driver proper: polls the device; each received frame is copied into
/// a buffer of the region `rx-frames` (ours; the stack holds it read-only)
/// and sent to `netstack` as a descriptor, which the stack returns once it
/// has copied the frame out. Frames from the stack arrive as descriptors
/// into its region `tx-frames`: copied out (the stack could rewrite them)
/// into a transmit buffer, and the descriptor returned. Polling only.
///
/// Every frame lent to the stack carries our epoch (`net-proto`); when
/// the stack stops or restarts (a notice), every `rx-frames` buffer is
/// ours again, the epoch changes so late returns of the old loans are
/// ignored, and a restarted stack is sent the MAC again.
fn driver() -> i32 {
    use net_proto::{epoch_bytes, epoch_of, first_epoch};
    use userlib::abi::notice::{GAVE_UP, RESTARTED, STOPPED};
    use userlib::abi::region::ACCESS_RO;
    use userlib::region::{copy_out, descriptor_message, descriptor_of, inline_of};
    let Some(mut channel) = userlib::Channel::open_or_log() else { return 1 };
    let Some(stack) = channel.endpoint_named("netstack") else {
        userlib::log!("virtio-net: needs the endpoint `netstack`");
        return 1;
    };
    let Some(mut pool) = userlib::Region::named("rx-frames").ok().and_then(|r| userlib::BufferPool::new(r, 2048))
    else {
        userlib::log!("virtio-net: needs the region `rx-frames` (owner)");
        return 1;
    };
    let Some(device) = Device::with_ids(0x1af4, 0x1000).or_else(|| Device::with_ids(0x1af4, 0x1041)) else {
        userlib::log!("virtio-net: no virtio-net device granted");
        return 1;
    };
    let mut net = match userlib::device::virtio::NetDevice::open(device) {
        Ok(net) => net,
        Err(e) => {
            userlib::log!("virtio-net: the device could not be opened: {e:?}");
            return 1;
        }
    };
    let mac = net.mac();
    userlib::log!(
        "virtio-net: up, MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, {} receive buffers, polling",
        mac[0],
        mac[1],
        mac[2],
        mac[3],
        mac[4],
        mac[5],
        userlib::device::virtio::QUEUE
    );
    let _ = channel.send(stack, label::MAC, &mac);
    let generation = userlib::generation();
    let mut epoch = first_epoch(generation);
    // Test knob (DEV0003): fault on purpose this long after start.
    let fault_at = userlib::arg("fault_after_ms")
        .and_then(|v| v.parse::<u64>().ok())
        .map(|ms| userlib::rdtsc() + ms * (userlib::tsc_hz() / 1000));
    let mut frame = [0u8; 2048];
    let (mut received, mut dropped, mut sent) = (0u64, 0u64, 0u64);
    let (mut dropped_logged, mut dropped_logged_at) = (0u64, 0u64);
    loop {
        // Device -> stack, only while a buffer is free for the frame: when
        // the stack is behind, frames wait in the device's queue (and in
        // QEMU's) instead of being taken and dropped here.
        while pool.outstanding() < pool.count()
            && net.poll_receive(|f| {
                received += 1;
                let Some(buffer) = pool.alloc() else {
                    dropped += 1;
                    return;
                };
                if pool.region().write(buffer.offset, f).is_ok() {
                    let d = pool.descriptor(&buffer, f.len() as u32, ACCESS_RO);
                    if let Ok(m) = descriptor_message(stack, label::FRAME, &d, &epoch.to_le_bytes()) {
                        channel.send_message(&m);
                        return;
                    }
                }
                let _ = pool.release(&pool.descriptor(&buffer, 1, ACCESS_RO));
                dropped += 1;
            })
        {}
        // Stack -> device, and our buffers coming back; only while the
        // device has a free transmit buffer, so the stack's frames wait in
        // the inbox rather than fail to transmit.
        while net.can_transmit()
            && let Some(m) = channel.try_recv()
        {
            let Some(d) = descriptor_of(&m) else {
                if m.sender_badge == 0
                    && let Some(notice) = userlib::Channel::notice(&m)
                {
                    if m.destination_endpoint == stack && matches!(notice.kind, STOPPED | GAVE_UP | RESTARTED) {
                        // The stack will never return what the stopped
                        // incarnation held.
                        let reclaimed = pool.reclaim_all();
                        epoch = epoch.wrapping_add(1);
                        let back = notice.kind == RESTARTED;
                        if back {
                            let _ = channel.send(stack, label::MAC, &mac);
                        }
                        userlib::log!(
                            "virtio-net: netstack {} (generation {}): {reclaimed} rx buffers taken back{}",
                            if back { "is back" } else { "stopped" },
                            notice.generation,
                            if back { ", MAC sent again" } else { "" }
                        );
                    } else {
                        userlib::log!("virtio-net: notice {notice:?}");
                    }
                }
                continue;
            };
            if m.sender_badge == 0 || m.label == label::FRAME_RETURN {
                // Ours again (returned, or bounced), unless it is a loan
                // taken back since (another epoch) or not ours at all.
                if d.region == pool.region().index() && epoch_of(inline_of(&m)) == Some(epoch) {
                    let _ = pool.release(&d);
                }
                continue;
            }
            if m.label != label::FRAME {
                continue;
            }
            if let Ok(n) = copy_out(&d, &mut frame) {
                match net.transmit(&frame[..n]) {
                    Ok(()) => sent += 1,
                    Err(_) => dropped += 1,
                }
            }
            // The stack's epoch back with its buffer.
            if let Ok(back) = descriptor_message(stack, label::FRAME_RETURN, &d, epoch_bytes(inline_of(&m))) {
                channel.send_message(&back);
            }
        }
        if dropped != dropped_logged && userlib::rdtsc().wrapping_sub(dropped_logged_at) > 2 * userlib::tsc_hz() {
            userlib::log!("virtio-net: {dropped} frames dropped so far ({received} received, {sent} sent)");
            dropped_logged = dropped;
            dropped_logged_at = userlib::rdtsc();
        }
        if fault_at.is_some_and(|t| userlib::rdtsc() >= t) {
            userlib::log!("virtio-net: faulting on purpose (fault_after_ms): a stack overflow into the guard page");
            core::hint::black_box(overflow(1));
        }
        core::hint::spin_loop();
    }
}

/// Recurses until the stack runs into its guard page (a page fault): a
/// real CPU fault from safe code, for the containment test.
fn overflow(depth: u64) -> u64 {
    let frame = core::hint::black_box([depth; 64]);
    if core::hint::black_box(depth) == 0 {
        return frame[1];
    }
    overflow(frame[0] + 1) + frame[63]
}
