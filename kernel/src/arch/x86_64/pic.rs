//! The legacy 8259 PICs: remapped away from the exception vectors and fully
//! masked, so a stray legacy IRQ can never look like an exception.

use x86_64::instructions::port::Port;

/// First vector of the remapped master PIC (IRQ 0..7 -> 0x20..0x27, the
/// slave's IRQ 8..15 -> 0x28..0x2F).
pub const PIC_VECTOR_BASE: u8 = 0x20;

pub fn remap_and_mask() {
    // SAFETY: the standard ICW1-ICW4 initialisation of both PICs on their
    // fixed ports, followed by masking every line; it only changes how
    // legacy IRQs are delivered (not at all, afterwards).
    unsafe {
        let mut master_cmd = Port::<u8>::new(0x20);
        let mut master_data = Port::<u8>::new(0x21);
        let mut slave_cmd = Port::<u8>::new(0xA0);
        let mut slave_data = Port::<u8>::new(0xA1);
        master_cmd.write(0x11);
        slave_cmd.write(0x11);
        master_data.write(PIC_VECTOR_BASE);
        slave_data.write(PIC_VECTOR_BASE + 8);
        master_data.write(4);
        slave_data.write(2);
        master_data.write(1);
        slave_data.write(1);
        master_data.write(0xFF);
        slave_data.write(0xFF);
    }
}
