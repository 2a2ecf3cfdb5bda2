//! Who may read the dashboard: whoever has this start's token. It is 32
//! random bytes (hex) made at every start and printed in the URL; the first
//! request with `?token=` gets it as an HttpOnly, SameSite=Strict cookie
//! and a redirect to the same page without it (so the token leaves the
//! address bar and the history). Every later request needs the cookie.
//! Both are compared in constant time. A request without a valid token is
//! answered 401 with a short message and nothing else.
//!
//! A POST (an action) needs more: the cookie, the form's `csrf` field (a
//! second random value of this start, written into the pages) and, when
//! the browser sends them, an `Origin` naming this server and no
//! cross-site `Sec-Fetch-Site`.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq as _;

use super::Shared;

/// The cookie that carries the token: this prefix and the port (cookies
/// do not tell ports apart, and two dashboards may run side by side, e.g.
/// with two certificates).
pub const COOKIE: &str = "tilewave_dashboard";

/// This start's secrets.
pub struct Token {
    secret: String,
    csrf: String,
    cookie: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

/// 32 random bytes from the operating system, as hex.
fn random_hex() -> anyhow::Result<String> {
    use rand::TryRngCore as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| anyhow::anyhow!("reading random bytes for the dashboard's token: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Token {
    /// New random values, for a dashboard on `port`.
    pub fn generate(port: u16) -> anyhow::Result<Self> {
        Ok(Self {
            secret: random_hex()?,
            csrf: random_hex()?,
            cookie: format!("{COOKIE}_{port}"),
        })
    }

    /// The cookie's name.
    pub fn cookie_name(&self) -> &str {
        &self.cookie
    }

    /// The token (for the URL printed at start).
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The forms' CSRF value.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Whether `given` is the token, in constant time.
    pub fn is_token(&self, given: &str) -> bool {
        equal(&self.secret, given)
    }

    /// Whether `given` is the CSRF value, in constant time.
    pub fn is_csrf(&self, given: &str) -> bool {
        equal(&self.csrf, given)
    }
}

/// Constant-time equality (the length is not secret: it is always 64).
fn equal(want: &str, given: &str) -> bool {
    want.len() == given.len() && bool::from(want.as_bytes().ct_eq(given.as_bytes()))
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The `token` query parameter, and the query without it.
pub fn split_query(query: &str) -> (Option<&str>, String) {
    let mut token = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("token", v)) => token = Some(v),
            _ => rest.push(pair),
        }
    }
    (token, rest.join("&"))
}

/// Whether a POST comes from this server's own pages: no cross-site
/// `Sec-Fetch-Site`, and an `Origin` (when sent) whose host is the `Host`.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    match (text(header::ORIGIN), text(header::HOST)) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin
            .strip_prefix("http://")
            .is_some_and(|o| o.eq_ignore_ascii_case(host)),
        (Some(_), None) => false,
    }
}

/// A refusal: status and one line of text.
fn refuse(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{text}\n"),
    )
        .into_response()
}

/// The check in front of every route.
pub async fn guard(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let query = req.uri().query().unwrap_or_default().to_owned();
    let (in_query, rest) = split_query(&query);
    if let Some(given) = in_query {
        if !app.token.is_token(given) {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "wrong token: open the URL `tilewave dashboard` printed at its start",
            );
        }
        if req.method() == Method::GET {
            let path = req.uri().path();
            let to = if rest.is_empty() {
                path.to_owned()
            } else {
                format!("{path}?{rest}")
            };
            return (
                StatusCode::SEE_OTHER,
                [
                    (header::LOCATION, to),
                    (
                        header::SET_COOKIE,
                        format!(
                            "{}={}; Path=/; HttpOnly; SameSite=Strict",
                            app.token.cookie_name(),
                            app.token.secret()
                        ),
                    ),
                ],
            )
                .into_response();
        }
    } else if !cookie(req.headers(), app.token.cookie_name()).is_some_and(|c| app.token.is_token(c)) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "no token: open the URL `tilewave dashboard` printed at its start (it carries ?token=...)",
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD && !same_origin(req.headers()) {
        return refuse(
            StatusCode::FORBIDDEN,
            "refused: the form was not sent from this dashboard",
        );
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_and_compared_whole() {
        let a = Token::generate(3100).unwrap();
        let b = Token::generate(3100).unwrap();
        assert_eq!(a.cookie_name(), "tilewave_dashboard_3100");
        assert_eq!(a.secret().len(), 64);
        assert!(a.secret().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.secret(), b.secret());
        assert_ne!(a.secret(), a.csrf());
        assert!(a.is_token(a.secret()));
        assert!(!a.is_token(b.secret()));
        assert!(!a.is_token(&a.secret()[..63]));
        assert!(!a.is_token(""));
        assert!(a.is_csrf(a.csrf()) && !a.is_csrf(a.secret()));
        assert_eq!(format!("{a:?}"), "Token(..)", "Debug shows no secret");
    }

    #[test]
    fn cookies_and_queries_are_parsed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; tilewave_dashboard_3100=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, "tilewave_dashboard_3100"), Some("abc"));
        assert_eq!(cookie(&h, COOKIE), None);
        assert_eq!(cookie(&h, "c"), None);
        assert_eq!(split_query("token=x&at=now"), (Some("x"), "at=now".to_owned()));
        assert_eq!(split_query("at=now"), (None, "at=now".to_owned()));
        assert_eq!(split_query(""), (None, String::new()));
    }

    #[test]
    fn only_same_origin_posts_pass() {
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            h
        };
        let cases = [
            (headers(&[("host", "127.0.0.1:3100")]), true),
            (
                headers(&[("host", "127.0.0.1:3100"), ("origin", "http://127.0.0.1:3100")]),
                true,
            ),
            (
                headers(&[("host", "127.0.0.1:3100"), ("origin", "http://evil.example")]),
                false,
            ),
            (headers(&[("host", "127.0.0.1:3100"), ("origin", "null")]), false),
            (
                headers(&[("host", "127.0.0.1:3100"), ("sec-fetch-site", "cross-site")]),
                false,
            ),
            (
                headers(&[("host", "127.0.0.1:3100"), ("sec-fetch-site", "same-origin")]),
                true,
            ),
        ];
        for (h, want) in cases {
            assert_eq!(same_origin(&h), want, "{h:?}");
        }
    }
}
