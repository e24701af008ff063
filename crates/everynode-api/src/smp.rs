//! smp (to be written)
