//! PCI devices granted to this server (`[[device]]` in the system TOML):
//! finding them in the info page, their configuration space through the
//! `pci_config` system call, their memory BARs (mapped uncached by the
//! kernel) and their DMA memory (physically contiguous, its physical
//! address in the info page). See `docs/drivers.md`.
//!
//! Invariants: every register access is a volatile access of its natural
//! width inside a BAR the kernel mapped (`BAR_MEMORY`), bounds-checked
//! against the BAR's size; DMA addresses are translated only inside the
//! device's DMA memory. Nothing here makes a Rust reference into device
//! registers. What the device does with DMA is the driver's business:
//! there is no IOMMU, so a driver is trusted with all physical memory.

use crate::syscall::{SysError, pci_config as syscall_pci_config};
use abi::device::{BAR_MEMORY, DeviceInfo, MAX_BARS};
use core::sync::atomic::{AtomicU64, Ordering};

/// A device granted to this server: its info-page entry and its place.
#[derive(Clone, Copy)]
pub struct Device {
    index: usize,
    info: &'static DeviceInfo,
}

/// Why a device access was refused (by this library, before any access).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceError {
    /// No such BAR, or it is not a mapped memory BAR.
    NotMapped,
    /// The offset and width do not fit inside the BAR, or are unaligned.
    OutOfRange,
}

impl Device {
    /// The server's devices, in file order (info-page order).
    pub fn all() -> impl Iterator<Item = Device> {
        let (count, devices) = match crate::info() {
            Some(info) => (info.device_count as usize, &info.devices[..]),
            None => (0, &[][..]),
        };
        devices.iter().take(count.min(abi::device::MAX_DEVICES)).enumerate().map(|(index, info)| Device { index, info })
    }

    /// The device whose `[[device]]` table has this name.
    pub fn named(name: &str) -> Option<Device> {
        Device::all().find(|d| d.name() == name)
    }

    /// The first device with these PCI ids.
    pub fn with_ids(vendor: u16, device: u16) -> Option<Device> {
        Device::all().find(|d| d.info.vendor == vendor && d.info.device == device)
    }

    /// Its place among this server's devices (the `pci_config` argument).
    pub fn index(&self) -> usize {
        self.index
    }

    /// Its info-page entry.
    pub fn info(&self) -> &'static DeviceInfo {
        self.info
    }

    /// The `[[device]]` table's name.
    pub fn name(&self) -> &'static str {
        let n = self.info.name.iter().position(|&b| b == 0).unwrap_or(self.info.name.len());
        core::str::from_utf8(&self.info.name[..n]).unwrap_or("")
    }

    /// Reads the 32-bit word at `offset` of its configuration space.
    pub fn config_read(&self, offset: u16) -> Result<u32, SysError> {
        pci_config_read(self.index, offset)
    }

    /// Writes the 32-bit word at `offset` (the kernel filters what may be
    /// written: BARs are shadowed, I/O decoding stays off).
    pub fn config_write(&self, offset: u16, value: u32) -> Result<(), SysError> {
        pci_config_write(self.index, offset, value)
    }

    /// User address of byte `offset` of memory BAR `bar`, if `width`
    /// bytes from there lie inside the BAR and the kernel mapped it.
    pub fn bar_address(&self, bar: usize, offset: u64, width: u64) -> Result<u64, DeviceError> {
        let info = self.info.bars.get(bar).filter(|b| b.kind == BAR_MEMORY).ok_or(DeviceError::NotMapped)?;
        let end = offset.checked_add(width).ok_or(DeviceError::OutOfRange)?;
        if end > info.size || !offset.is_multiple_of(width.max(1)) {
            return Err(DeviceError::OutOfRange);
        }
        Ok(abi::device::bar_addr(self.index, bar) + u64::from(info.page_offset) + offset)
    }

    /// Physical address `phys` inside memory BAR `bar`, as a user address
    /// (for drivers handed a physical address of their registers).
    pub fn bar_phys_to_user(&self, phys: u64, size: u64) -> Option<u64> {
        (0..MAX_BARS).find_map(|bar| {
            let info = &self.info.bars[bar];
            let offset = phys.checked_sub(info.phys)?;
            (info.kind == BAR_MEMORY && offset.checked_add(size)? <= info.size)
                .then(|| abi::device::bar_addr(self.index, bar) + u64::from(info.page_offset) + offset)
        })
    }

    /// Reads a 32-bit register of memory BAR `bar`.
    pub fn read32(&self, bar: usize, offset: u64) -> Result<u32, DeviceError> {
        let addr = self.bar_address(bar, offset, 4)?;
        // SAFETY: `bar_address` checked the word lies inside a BAR the
        // kernel mapped (uncached, user-accessible) at this address, and
        // is aligned; device registers are read with a volatile access.
        Ok(unsafe { (addr as *const u32).read_volatile() })
    }

    /// Writes a 32-bit register of memory BAR `bar`.
    pub fn write32(&self, bar: usize, offset: u64, value: u32) -> Result<(), DeviceError> {
        let addr = self.bar_address(bar, offset, 4)?;
        // SAFETY: as in `read32`; the BAR is mapped writable.
        unsafe { (addr as *mut u32).write_volatile(value) };
        Ok(())
    }

    /// Its DMA memory: (user address, physical address, bytes); bytes is
    /// 0 when the table asks for none.
    pub fn dma(&self) -> (u64, u64, u64) {
        (abi::device::dma_addr(self.index), self.info.dma_phys, self.info.dma_size)
    }

    /// Reads the aligned 64-bit word at `offset` of its DMA memory.
    pub fn dma_read_u64(&self, offset: u64) -> Result<u64, DeviceError> {
        Ok(self.dma_word(offset)?.load(Ordering::Relaxed))
    }

    /// Writes the aligned 64-bit word at `offset` of its DMA memory.
    pub fn dma_write_u64(&self, offset: u64, value: u64) -> Result<(), DeviceError> {
        self.dma_word(offset)?.store(value, Ordering::Relaxed);
        Ok(())
    }

    fn dma_word(&self, offset: u64) -> Result<&'static AtomicU64, DeviceError> {
        let (base, _, size) = self.dma();
        if size == 0 {
            return Err(DeviceError::NotMapped);
        }
        if !offset.is_multiple_of(8) || offset.checked_add(8).is_none_or(|end| end > size) {
            return Err(DeviceError::OutOfRange);
        }
        // SAFETY: the kernel mapped `size` bytes of DMA memory read/write
        // at `base` for this server's whole life; the word is aligned and
        // inside it. Only atomics are made there: the device may write the
        // word at any moment, which an atomic access tolerates.
        Ok(unsafe { &*((base + offset) as *const AtomicU64) })
    }

    /// The physical address of user address `addr` (`len` bytes from
    /// it), if the range lies inside this device's DMA memory.
    pub fn dma_phys_of(&self, addr: u64, len: u64) -> Option<u64> {
        let (base, phys, size) = self.dma();
        let offset = addr.checked_sub(base)?;
        (offset.checked_add(len)? <= size).then_some(phys + offset)
    }
}

/// Reads the word at `offset` of this server's `device`-th device's
/// configuration space.
pub fn pci_config_read(device: usize, offset: u16) -> Result<u32, SysError> {
    syscall_pci_config(device as u64, u64::from(offset), false, 0).map(|w| w as u32)
}

/// Writes the word at `offset` of this server's `device`-th device's
/// configuration space.
pub fn pci_config_write(device: usize, offset: u16, value: u32) -> Result<(), SysError> {
    syscall_pci_config(device as u64, u64::from(offset), true, value).map(|_| ())
}

/// A virtio-net device driven with the `virtio-drivers` crate (feature
/// `virtio`), polled, no interrupts: the crate's `Hal` over this server's
/// device grant (DMA memory handed out bump-style and never freed; BARs
/// through their uncached mappings) and a safe packet interface with
/// every buffer inside the DMA memory.
///
/// Invariants: one device per server (the `Hal` is global); the crate
/// only ever sees buffers inside the DMA memory (a `share` of anything
/// else stops the server: a bug, not an input); receive buffers stay
/// queued to the device until it hands them back, and are read only then.
#[cfg(feature = "virtio")]
pub mod virtio {
    use super::Device;
    use core::ptr::NonNull;
    use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use virtio_drivers::transport::pci::PciTransport;
    use virtio_drivers::transport::pci::bus::{Command, ConfigurationAccess, DeviceFunction, PciRoot};
    use virtio_drivers::{BufferDirection, Hal, PhysAddr};

    /// Queue size (descriptors per queue), and buffers in flight each way.
    pub const QUEUE: usize = 16;
    /// Bytes of one packet buffer (virtio-net header plus a 1514-byte frame).
    pub const BUFFER: usize = 2048;

    type Raw = virtio_drivers::device::net::VirtIONetRaw<DmaHal, PciTransport, QUEUE>;

    static DEVICE: AtomicUsize = AtomicUsize::new(usize::MAX);
    static NEXT: AtomicU64 = AtomicU64::new(0);

    fn device() -> Device {
        let index = DEVICE.load(Ordering::Relaxed);
        Device::all().nth(index).expect("virtio: the Hal is used before NetDevice::open")
    }

    /// Takes `bytes` (whole pages) of the DMA memory: (user address,
    /// physical address), zeroed.
    fn take(bytes: u64) -> Option<(u64, u64)> {
        let (base, phys, size) = device().dma();
        let offset = NEXT.fetch_add(bytes, Ordering::Relaxed);
        if offset.checked_add(bytes)? > size {
            return None;
        }
        let addr = base + offset;
        // SAFETY: `addr..addr + bytes` lies inside this server's DMA memory
        // (checked above), mapped read/write for its life, and was never
        // handed out before (the bump pointer only grows).
        unsafe { core::ptr::write_bytes(addr as *mut u8, 0, bytes as usize) };
        Some((addr, phys + offset))
    }

    /// The `Hal` of `virtio-drivers` over this server's device grant.
    pub struct DmaHal;

    // SAFETY: `dma_alloc` returns zeroed memory, physically contiguous (the
    // kernel's DMA memory is), never handed out twice; `mmio_phys_to_virt`
    // gives the uncached mapping the kernel made of that very BAR range;
    // `share` gives the physical address of a buffer inside the DMA memory
    // and refuses anything else.
    unsafe impl Hal for DmaHal {
        fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
            let (addr, phys) = take(pages as u64 * 4096).expect("virtio: out of DMA memory (raise dma_kib)");
            (phys, NonNull::new(addr as *mut u8).expect("DMA memory is never at 0"))
        }

        unsafe fn dma_dealloc(_paddr: PhysAddr, _vaddr: NonNull<u8>, _pages: usize) -> i32 {
            // Never freed: the device lives as long as the server.
            0
        }

        unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
            let addr = device().bar_phys_to_user(paddr, size as u64).expect("virtio: registers outside a mapped BAR");
            NonNull::new(addr as *mut u8).expect("BARs are never mapped at 0")
        }

        unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
            let addr = buffer.as_ptr() as *mut u8 as u64;
            device().dma_phys_of(addr, buffer.len() as u64).expect("virtio: a buffer outside the DMA memory")
        }

        unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
    }

    /// Configuration space through `pci_config`, for the granted function only.
    struct Config {
        index: usize,
    }

    impl ConfigurationAccess for Config {
        fn read_word(&self, _function: DeviceFunction, offset: u8) -> u32 {
            super::pci_config_read(self.index, u16::from(offset)).unwrap_or(0xffff_ffff)
        }

        fn write_word(&mut self, _function: DeviceFunction, offset: u8, data: u32) {
            let _ = super::pci_config_write(self.index, u16::from(offset), data);
        }

        unsafe fn unsafe_clone(&self) -> Self {
            Config { index: self.index }
        }
    }

    /// Why the device could not be used.
    #[derive(Debug)]
    pub enum NetError {
        /// Another `NetDevice` is open in this server.
        AlreadyOpen,
        /// Not enough DMA memory for the buffers.
        NoDmaMemory,
        /// The crate refused the device.
        Pci(virtio_drivers::transport::pci::VirtioPciError),
        Virtio(virtio_drivers::Error),
        /// No transmit buffer free (the device has not sent the earlier ones).
        Busy,
        /// The frame does not fit a buffer.
        TooLong,
    }

    struct Buffer {
        addr: u64,
    }

    impl Buffer {
        fn bytes(&mut self) -> &mut [u8] {
            // SAFETY: `addr` is BUFFER bytes of DMA memory taken for this
            // buffer alone; `&mut self` makes this the only reference the
            // server holds. The device writes it only while it is queued,
            // and the caller touches it only outside that window.
            unsafe { core::slice::from_raw_parts_mut(self.addr as *mut u8, BUFFER) }
        }
    }

    /// An open virtio-net device.
    pub struct NetDevice {
        raw: Raw,
        rx: [Buffer; QUEUE],
        /// Receive buffer `i` is queued with token `rx_token[i]`.
        rx_token: [Option<u16>; QUEUE],
        tx: [Buffer; QUEUE],
        tx_token: [Option<u16>; QUEUE],
    }

    impl NetDevice {
        /// Initialises the virtio-net device `device` (memory decoding and
        /// bus mastering on), allocates its queues and buffers from its DMA
        /// memory and queues every receive buffer.
        pub fn open(device: Device) -> Result<NetDevice, NetError> {
            if DEVICE.compare_exchange(usize::MAX, device.index(), Ordering::Relaxed, Ordering::Relaxed).is_err() {
                return Err(NetError::AlreadyOpen);
            }
            let info = device.info();
            let function = DeviceFunction { bus: info.bus, device: info.slot, function: info.function };
            let mut root = PciRoot::new(Config { index: device.index() });
            root.set_command(function, Command::MEMORY_SPACE | Command::BUS_MASTER);
            let transport = PciTransport::new::<DmaHal, _>(&mut root, function).map_err(NetError::Pci)?;
            let raw = Raw::new(transport).map_err(NetError::Virtio)?;
            let buffers = || {
                let mut out: [Buffer; QUEUE] = core::array::from_fn(|_| Buffer { addr: 0 });
                for b in &mut out {
                    b.addr = take(BUFFER as u64).ok_or(NetError::NoDmaMemory)?.0;
                }
                Ok::<_, NetError>(out)
            };
            let (rx, tx) = (buffers()?, buffers()?);
            let mut net = NetDevice { raw, rx, rx_token: [None; QUEUE], tx, tx_token: [None; QUEUE] };
            for i in 0..QUEUE {
                net.queue_rx(i)?;
            }
            Ok(net)
        }

        /// The device's MAC address.
        pub fn mac(&self) -> [u8; 6] {
            self.raw.mac_address()
        }

        fn queue_rx(&mut self, i: usize) -> Result<(), NetError> {
            let buf = self.rx[i].bytes();
            // SAFETY: the buffer lies in DMA memory that stays mapped for
            // the server's life, and it is not touched again until the
            // device returns its token (`poll_receive`).
            let token = unsafe { self.raw.receive_begin(buf) }.map_err(NetError::Virtio)?;
            self.rx_token[i] = Some(token);
            Ok(())
        }

        /// If the device has a received frame, hands it (Ethernet frame,
        /// no virtio header) to `f` and queues the buffer again. Returns
        /// whether there was one.
        pub fn poll_receive(&mut self, f: impl FnOnce(&[u8])) -> bool {
            let Some(token) = self.raw.poll_receive() else { return false };
            let Some(i) = self.rx_token.iter().position(|t| *t == Some(token)) else { return false };
            self.rx_token[i] = None;
            let buf = self.rx[i].bytes();
            // SAFETY: the device returned this buffer's token: it is done
            // writing it.
            if let Ok((header, length)) = unsafe { self.raw.receive_complete(token, buf) }
                && let Some(frame) = buf.get(header..header + length)
            {
                f(frame);
            }
            let _ = self.queue_rx(i);
            true
        }

        /// Takes back transmit buffers the device is done with.
        fn reclaim(&mut self) {
            while let Some(token) = self.raw.poll_transmit() {
                let Some(i) = self.tx_token.iter().position(|t| *t == Some(token)) else { return };
                self.tx_token[i] = None;
                let buf = self.tx[i].bytes();
                // SAFETY: the device returned this buffer's token.
                let _ = unsafe { self.raw.transmit_complete(token, buf) };
            }
        }

        /// Copies `frame` (an Ethernet frame) into a free transmit buffer
        /// and hands it to the device.
        pub fn transmit(&mut self, frame: &[u8]) -> Result<(), NetError> {
            self.reclaim();
            let i = self.tx_token.iter().position(Option::is_none).ok_or(NetError::Busy)?;
            let header = self.raw.fill_buffer_header(self.tx[i].bytes()).map_err(NetError::Virtio)?;
            let end = header.checked_add(frame.len()).filter(|&e| e <= BUFFER).ok_or(NetError::TooLong)?;
            let buf = self.tx[i].bytes();
            buf[header..end].copy_from_slice(frame);
            // SAFETY: the buffer lies in DMA memory mapped for the server's
            // life and is not touched again until its token comes back
            // (`reclaim`).
            let token = unsafe { self.raw.transmit_begin(&buf[..end]) }.map_err(NetError::Virtio)?;
            self.tx_token[i] = Some(token);
            Ok(())
        }

        /// Whether a transmit buffer is free (after taking back finished ones).
        pub fn can_transmit(&mut self) -> bool {
            self.reclaim();
            self.tx_token.iter().any(Option::is_none)
        }
    }
}
