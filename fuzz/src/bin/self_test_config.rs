//! AFL++ target: the self-test config parser (`parse_self_test`).
fn main() {
    afl::fuzz!(|data: &[u8]| tilewave_fuzz::self_test(data));
}
