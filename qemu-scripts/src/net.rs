//! QEMU user networking for systems that are granted a virtio-net device:
//! the `-device`/`-netdev` arguments and the host ports forwarded to the
//! guest's KV service (TCP 7000) and UDP echo (7001).
//!
//! Invariants: the forwarded ports are bound on 127.0.0.1 only (nothing
//! outside this machine reaches the guest); they are picked free at launch
//! by asking the host for an ephemeral port and releasing it at once, so
//! another program could take one in the moment before QEMU binds it (QEMU
//! then fails to start and says so; run again). The run, test and bench
//! paths all call [`for_system`] (or [`setup`]), so they forward the same
//! way.

use crate::Error;
use std::net::{TcpListener, UdpSocket};

/// The guest's TCP port of the KV service.
pub const GUEST_TCP_PORT: u16 = 7000;
/// The guest's UDP echo port.
pub const GUEST_UDP_PORT: u16 = 7001;
/// PCI vendor id of virtio devices.
pub const VIRTIO_VENDOR: u16 = 0x1af4;
/// virtio-net's PCI device ids: transitional (legacy) and modern.
pub const VIRTIO_NET_DEVICES: [u16; 2] = [0x1000, 0x1041];

/// The host ports (on 127.0.0.1) forwarded to the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetForward {
    /// Host TCP port forwarded to guest TCP 7000.
    pub tcp: u16,
    /// Host UDP port forwarded to guest UDP 7001.
    pub udp: u16,
}

impl NetForward {
    /// The line the runner prints, which people and scripts read.
    pub fn line(&self) -> String {
        format!(
            "net: forwarding 127.0.0.1:{} -> guest tcp {GUEST_TCP_PORT}, 127.0.0.1:{} -> guest udp {GUEST_UDP_PORT}",
            self.tcp, self.udp
        )
    }

    /// QEMU's arguments: a virtio-net PCI device on user networking with
    /// both forwards.
    pub fn qemu_args(&self) -> Vec<String> {
        vec![
            "-device".into(),
            "virtio-net-pci,netdev=net0".into(),
            "-netdev".into(),
            format!(
                "user,id=net0,hostfwd=tcp:127.0.0.1:{}-:{GUEST_TCP_PORT},hostfwd=udp:127.0.0.1:{}-:{GUEST_UDP_PORT}",
                self.tcp, self.udp
            ),
        ]
    }
}

/// What a run adds for the network: QEMU's arguments and the ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetSetup {
    pub args: Vec<String>,
    pub forward: NetForward,
}

/// Picks two free host ports and builds the QEMU arguments for them.
pub fn setup() -> Result<NetSetup, Error> {
    let tcp = TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map_err(|e| Error::new(format!("net: no free TCP port on 127.0.0.1: {e}")))?
        .port();
    let udp = UdpSocket::bind(("127.0.0.1", 0))
        .and_then(|s| s.local_addr())
        .map_err(|e| Error::new(format!("net: no free UDP port on 127.0.0.1: {e}")))?
        .port();
    let forward = NetForward { tcp, udp };
    Ok(NetSetup { args: forward.qemu_args(), forward })
}

/// Whether `config` grants a virtio-net device (by ids) to a server.
/// A device granted by `slot` is not recognised here: name it by its ids
/// to get the forwarding.
pub fn grants_virtio_net(config: &system_config::SystemConfig) -> bool {
    config.devices.iter().any(|d| match d.matching {
        system_config::DeviceMatch::Ids { vendor, device } => is_virtio_net(vendor, device),
        system_config::DeviceMatch::Slot(_) => false,
    })
}

/// The network a run of `config` needs: `None` when it grants no
/// virtio-net device, else free ports and QEMU's arguments. Run, test
/// and bench call this, add `args` to QEMU's and read the ports.
pub fn for_system(config: &system_config::SystemConfig) -> Result<Option<NetSetup>, Error> {
    if grants_virtio_net(config) { setup().map(Some) } else { Ok(None) }
}

/// Whether a PCI id is a virtio-net device.
pub fn is_virtio_net(vendor: u16, device: u16) -> bool {
    vendor == VIRTIO_VENDOR && VIRTIO_NET_DEVICES.contains(&device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_forward_both_ports_on_loopback_only() {
        let f = NetForward { tcp: 40001, udp: 40002 };
        let args = f.qemu_args();
        assert_eq!(args[1], "virtio-net-pci,netdev=net0");
        assert_eq!(args[3], "user,id=net0,hostfwd=tcp:127.0.0.1:40001-:7000,hostfwd=udp:127.0.0.1:40002-:7001");
        assert_eq!(f.line(), "net: forwarding 127.0.0.1:40001 -> guest tcp 7000, 127.0.0.1:40002 -> guest udp 7001");
    }

    #[test]
    fn setup_picks_nonzero_ports() {
        let s = setup().unwrap();
        assert_ne!(s.forward.tcp, 0);
        assert_ne!(s.forward.udp, 0);
        assert_eq!(s.args, s.forward.qemu_args());
    }

    #[test]
    fn only_systems_granting_virtio_net_get_a_network() {
        let base = "[system]\nmover_cores = [1]\n\n[[server]]\nname = \"d\"\ncore = 2\n";
        let with = |table: &str| {
            system_config::parse(&format!("{base}\n[[device]]\nname = \"n\"\nserver = \"d\"\n{table}\n")).unwrap()
        };
        assert!(for_system(&system_config::parse(base).unwrap()).unwrap().is_none());
        assert!(for_system(&with("vendor = 0x1af4\ndevice = 0x1000")).unwrap().is_some());
        assert!(for_system(&with("vendor = 0x1af4\ndevice = 0x1041")).unwrap().is_some());
        assert!(for_system(&with("vendor = 0x1af4\ndevice = 0x1001")).unwrap().is_none());
        assert!(for_system(&with("slot = \"00:03.0\"")).unwrap().is_none());
    }

    #[test]
    fn virtio_net_ids() {
        assert!(is_virtio_net(0x1af4, 0x1000));
        assert!(is_virtio_net(0x1af4, 0x1041));
        assert!(!is_virtio_net(0x1af4, 0x1001));
        assert!(!is_virtio_net(0x8086, 0x1000));
    }
}
