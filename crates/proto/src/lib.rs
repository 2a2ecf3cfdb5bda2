//! The tilewave gRPC API, generated from `proto/tilewave/<package>/v1/`.
//!
//! Each package is a module named after it; `FILE_DESCRIPTOR_SET` feeds
//! server reflection. Conversions to domain types live at the services'
//! edges, not here.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// The encoded `FileDescriptorSet` of every tilewave proto, for
/// `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tilewave_descriptor.bin"));

/// Messages shared by every service, and the store's own records.
pub mod common {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("tilewave.common.v1");
    }
}
