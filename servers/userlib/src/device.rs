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

