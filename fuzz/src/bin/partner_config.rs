//! AFL++ target: the full PartnerConfig parser (`parse_partner_config`).
fn main() {
    afl::fuzz!(|data: &[u8]| tilewave_fuzz::full(data));
}
