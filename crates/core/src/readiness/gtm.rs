//! Go-to-market readiness.
