//! Integration tests of the store against real etcd processes
//! (`tilewave-testkit`), and against real owner processes
//! (`tilewave-store-probe`) where a pause or a kill -9 must be real.

mod audit_index;
mod availability;
mod cache;
mod changes;
mod clock;
mod family;
mod ownership;
mod support;
mod timer_kinds;
mod timers;
