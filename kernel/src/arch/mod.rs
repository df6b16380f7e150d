//! Architecture-specific code. One architecture today; the module keeps the
//! seam visible.
pub mod x86_64;
