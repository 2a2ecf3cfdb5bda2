//! The region catalog a service runs with: a regions.toml (`--regions-file`)
//! or the built-in one, narrowed to `--regions` when given (the catalog of
//! a stack that runs agents for some regions only, `tilewave dev up
//! --regions N`). Errors name the flag.

use std::path::Path;

use tilewave_core::regions::RegionCatalog;

/// The catalog `file` (else the built-in one) holds, narrowed to `ids`
/// (blank ids ignored; none: every region).
pub fn catalog(file: Option<&Path>, ids: &[String]) -> Result<RegionCatalog, String> {
    let full = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            RegionCatalog::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => RegionCatalog::builtin(),
    };
    let ids: Vec<String> = ids
        .iter()
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .collect();
    if ids.is_empty() {
        return Ok(full);
    }
    full.subset(&ids).map_err(|e| format!("--regions: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_narrowed_or_refused_naming_the_flag() {
        assert_eq!(catalog(None, &[]).unwrap().all().len(), 70);
        let two = catalog(
            None,
            &["aws:us-east-1".into(), " ".into(), "gcp:us-central1".into()],
        )
        .unwrap();
        assert_eq!(two.all().len(), 2);
        assert!(
            catalog(None, &["aws:nowhere".into()])
                .unwrap_err()
                .starts_with("--regions")
        );
        assert!(catalog(Some(Path::new("/nonexistent/regions.toml")), &[]).is_err());
    }
}
