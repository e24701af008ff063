//! field (to be written)
