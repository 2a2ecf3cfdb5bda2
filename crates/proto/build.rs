//! Compiles every `.proto` under `proto/` with the pure-Rust `protox`, so our
//! own protos need no `protoc`, and writes the generated code and a file
//! descriptor set (for server reflection) to `OUT_DIR`.

use std::path::{Path, PathBuf};

/// Messages whose derived `Debug` would print secret plain text.
const REDACTED_DEBUG: &[&str] = &[
    ".tilewave.credentials.v1.SubmitCredentialRequest",
    ".tilewave.agent.v1.InstallCredentialRequest",
    ".tilewave.escalation.v1.SetPolicyRequest",
    ".tilewave.escalation.v1.SetPersonRequest",
    ".tilewave.escalation.v1.SetPartnerContactsRequest",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let mut files = Vec::new();
    collect(&root, &mut files)?;
    files.sort();
    println!("cargo:rerun-if-changed={}", root.display());
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }

    let fds = protox::compile(&files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("tilewave_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        // Messages carrying secret plain text get a hand-written, redacting
        // `Debug` in `src/lib.rs` instead of the derived one, so that
        // `{:?}` in a log line cannot leak a secret.
        .skip_debug(REDACTED_DEBUG)
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
