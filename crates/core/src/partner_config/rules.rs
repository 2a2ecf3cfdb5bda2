//! The value rules of docs/domain.md "Validation", as
//! small pure checks on strings and numbers. Each returns a message on
//! failure; the format walkers attach the JSON path.

use super::model::ApiVersion;
use crate::quote::quoted;

/// The longest tile name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// The narrowest accepted logo aspect ratio (width / height).
pub const LOGO_MIN_RATIO: f64 = 4.0;
/// The widest accepted logo aspect ratio (width / height).
pub const LOGO_MAX_RATIO: f64 = 4.5;
/// The smallest accepted icon side, in pixels.
pub const ICON_MIN_SIDE: u32 = 128;

/// A name: not empty after trimming, at most [`MAX_NAME_CHARS`]. Returns the
/// trimmed name.
pub fn check_name(name: &str) -> Result<&str, String> {
    let trimmed = name.trim();
    let n = trimmed.chars().count();
    if n == 0 {
        Err("name must not be empty".into())
    } else if n > MAX_NAME_CHARS {
        Err(format!(
            "name is {n} characters long; at most {MAX_NAME_CHARS} are allowed"
        ))
    } else {
        Ok(trimmed)
    }
}

/// `major.minor.patch`, ASCII digits only.
pub fn check_api_version(s: &str) -> Result<ApiVersion, String> {
    let bad = || {
        format!(
            "api_version {} must be major.minor.patch, digits only (e.g. \"2.1.0\")",
            quoted(s)
        )
    };
    let parts: Vec<&str> = s.split('.').collect();
    let [major, minor, patch] = parts.as_slice() else {
        return Err(bad());
    };
    let num = |p: &str| -> Result<u32, String> {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        p.parse::<u32>()
            .map_err(|_| format!("api_version {}: component {} is too large", quoted(s), quoted(p)))
    };
    Ok(ApiVersion {
        major: num(major)?,
        minor: num(minor)?,
        patch: num(patch)?,
    })
}

/// One DNS label: 1 to 63 of `[A-Za-z0-9-]`, not starting or ending in `-`.
fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// A host name made of DNS labels (this also accepts dotted IPv4).
fn valid_host(host: &str) -> bool {
    !host.is_empty() && host.len() <= 253 && host.split('.').all(valid_label)
}

/// A bare host name: no scheme, no path, no port, valid DNS labels.
pub fn check_hostname(h: &str) -> Result<(), String> {
    if h.is_empty() {
        return Err("host name must not be empty".into());
    }
    if h.contains("://") {
        return Err(format!(
            "{} must be a bare host name, without a scheme",
            quoted(h)
        ));
    }
    if h.contains(['/', '?', '#']) {
        return Err(format!("{} must be a bare host name, without a path", quoted(h)));
    }
    if h.contains(':') {
        return Err(format!("{} must be a bare host name, without a port", quoted(h)));
    }
    if !valid_host(h) {
        return Err(format!(
            "{} is not a valid host name (dot-separated labels of letters, digits and '-')",
            quoted(h)
        ));
    }
    Ok(())
}

/// An absolute URL with scheme `https`, or `http` for `localhost` only.
pub fn check_url(u: &str) -> Result<(), String> {
    if u.is_empty() {
        return Err("URL must not be empty".into());
    }
    if u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "URL {} must not contain spaces or control characters",
            quoted(u)
        ));
    }
    let Some((scheme, rest)) = u.split_once("://") else {
        return Err(format!(
            "{} is not an absolute URL (expected https://host/...)",
            quoted(u)
        ));
    };
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(format!("URL {} must not carry user information", quoted(u)));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    if let Some(p) = port
        && !matches!(p.parse::<u16>(), Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("URL {} has an invalid port {}", quoted(u), quoted(p)));
    }
    if !valid_host(host) {
        return Err(format!("URL {} has no valid host", quoted(u)));
    }
    match scheme.as_str() {
        "https" => Ok(()),
        "http" if host.eq_ignore_ascii_case("localhost") => Ok(()),
        "http" => Err(format!(
            "URL {} must use https (http is allowed only for localhost)",
            quoted(u)
        )),
        other => Err(format!("URL {} must use https, not {}", quoted(u), quoted(other))),
    }
}

/// An endpoint path: starts with `/`, no spaces.
pub fn check_endpoint_path(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err(format!("path {} must start with '/'", quoted(p)));
    }
    if p.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "path {} must not contain spaces or control characters",
            quoted(p)
        ));
    }
    Ok(())
}

/// An image file name ending in `.png` or `.svg` (any case), with a name
/// before the extension.
pub fn check_image_file(f: &str) -> Result<(), String> {
    let lower = f.to_ascii_lowercase();
    let ok = [".png", ".svg"]
        .iter()
        .any(|ext| lower.len() > ext.len() && lower.ends_with(ext));
    if ok {
        Ok(())
    } else {
        Err(format!("image file {} must be a .png or .svg file", quoted(f)))
    }
}

/// Why an image's pixel size is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImageSizeError {
    /// A side of zero pixels.
    #[error("image is {width}x{height}: both sides must be at least 1 pixel")]
    Empty {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// The logo is not about 4.4 times as wide as it is high.
    #[error(
        "logo is {width}x{height} (ratio {ratio:.2}); width must be {LOGO_MIN_RATIO} to {LOGO_MAX_RATIO} times the height"
    )]
    LogoRatio {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// width / height.
        ratio: f64,
    },
    /// The icon is not square.
    #[error("icon is {width}x{height}; it must be square")]
    IconNotSquare {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// The icon is smaller than [`ICON_MIN_SIDE`].
    #[error("icon is {side}x{side}; it must be at least {ICON_MIN_SIDE}x{ICON_MIN_SIDE}")]
    IconTooSmall {
        /// Side in pixels.
        side: u32,
    },
}

/// The logo's pixel size: width / height between 4.0 and 4.5.
pub fn check_logo_size(width: u32, height: u32) -> Result<(), ImageSizeError> {
    if width == 0 || height == 0 {
        return Err(ImageSizeError::Empty { width, height });
    }
    let ratio = f64::from(width) / f64::from(height);
    if (LOGO_MIN_RATIO..=LOGO_MAX_RATIO).contains(&ratio) {
        Ok(())
    } else {
        Err(ImageSizeError::LogoRatio { width, height, ratio })
    }
}

/// The icon's pixel size: square, at least [`ICON_MIN_SIDE`].
pub fn check_icon_size(width: u32, height: u32) -> Result<(), ImageSizeError> {
    if width == 0 || height == 0 {
        return Err(ImageSizeError::Empty { width, height });
    }
    if width != height {
        return Err(ImageSizeError::IconNotSquare { width, height });
    }
    if width < ICON_MIN_SIDE {
        return Err(ImageSizeError::IconTooSmall { side: width });
    }
    Ok(())
}
