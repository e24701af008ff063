//! quantity (to be written)
