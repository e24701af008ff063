//! hash (to be written)
