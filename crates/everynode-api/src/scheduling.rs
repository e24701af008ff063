//! scheduling (to be written)
