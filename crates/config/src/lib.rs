//! ward-config
