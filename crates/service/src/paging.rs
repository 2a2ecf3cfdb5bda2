//! Paging of list RPCs, one way for every service.
//!
//! A `PageRequest` asks for at most `page_size` items (0: the server's
//! [`DEFAULT_PAGE_SIZE`]; never more than [`MAX_PAGE_SIZE`], whatever is
//! asked) after `page_token`, the `next_page_token` of the page before. Two
//! kinds of token: an offset into a list sorted the same way on every call
//! ([`Page::by_offset`]), or the key of the last item shown, for lists kept
//! in key order ([`Page::after_key`]), which stays right when items come and
//! go between calls.

use tilewave_proto::common::v1::PageRequest;

/// Items per page when the caller does not say.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// The most items one page holds.
pub const MAX_PAGE_SIZE: usize = 1000;

/// A page request that is not acceptable: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PageError {
    /// The request field (`page.page_size`, `page.page_token`).
    pub field: &'static str,
    /// What is wrong, and what to do.
    pub message: &'static str,
}

/// A checked page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// How many items, at most.
    pub size: usize,
    /// The token of the previous page ("" for the first).
    pub token: String,
}

impl Page {
    /// Checks `page` (absent: the first page of the default size).
    pub fn parse(page: Option<&PageRequest>) -> Result<Self, PageError> {
        let Some(p) = page else {
            return Ok(Self {
                size: DEFAULT_PAGE_SIZE,
                token: String::new(),
            });
        };
        let size = match usize::try_from(p.page_size) {
            Ok(0) => DEFAULT_PAGE_SIZE,
            Ok(n) => n.min(MAX_PAGE_SIZE),
            Err(_) => {
                return Err(PageError {
                    field: "page.page_size",
                    message: "must not be negative",
                });
            }
        };
        Ok(Self {
            size,
            token: p.page_token.clone(),
        })
    }

    /// This page of `items` (in the same order on every call), with the
    /// token of the next page ("" after the last).
    pub fn by_offset<T>(&self, items: Vec<T>) -> Result<(Vec<T>, String), PageError> {
        let offset = self.offset()?;
        let total = items.len();
        let page: Vec<T> = items.into_iter().skip(offset).take(self.size).collect();
        Ok((page, self.next_after(offset, total)))
    }

    /// The position of this page's first item in a list sorted the same
    /// way on every call (0 for the first page): for a caller that walks
    /// the list itself and copies only the page ([`Page::next_after`]
    /// gives the next token).
    pub fn offset(&self) -> Result<usize, PageError> {
        if self.token.is_empty() {
            return Ok(0);
        }
        self.token.parse::<usize>().map_err(|_| PageError {
            field: "page.page_token",
            message: "not a token this server issued: start again without one",
        })
    }

    /// The token of the page after the one at `offset` in a list of
    /// `total` items ("" after the last).
    pub fn next_after(&self, offset: usize, total: usize) -> String {
        let end = offset.saturating_add(self.size);
        if end < total {
            end.to_string()
        } else {
            String::new()
        }
    }

    /// This page of `items`, sorted by `key`: the items after the token's
    /// key, with the key of the last one shown as the next token.
    pub fn after_key<T>(&self, items: Vec<T>, key: impl Fn(&T) -> &str) -> (Vec<T>, String) {
        let mut after: Vec<T> = items
            .into_iter()
            .filter(|i| self.token.is_empty() || key(i) > self.token.as_str())
            .collect();
        if after.len() > self.size {
            after.truncate(self.size);
            let next = after.last().map(|i| key(i).to_owned()).unwrap_or_default();
            (after, next)
        } else {
            (after, String::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(size: i32, token: &str) -> PageRequest {
        PageRequest {
            page_size: size,
            page_token: token.into(),
        }
    }

    #[test]
    fn sizes() {
        // (page_size, size or error field)
        let cases = [
            (0, Ok(DEFAULT_PAGE_SIZE)),
            (3, Ok(3)),
            (1_000_000, Ok(MAX_PAGE_SIZE)),
            (-1, Err("page.page_size")),
        ];
        for (size, want) in cases {
            let got = Page::parse(Some(&req(size, "")))
                .map(|p| p.size)
                .map_err(|e| e.field);
            assert_eq!(got, want, "{size}");
        }
        assert_eq!(Page::parse(None).map(|p| p.size), Ok(DEFAULT_PAGE_SIZE));
    }

    #[test]
    fn offsets_walk_every_item_once() {
        let items: Vec<u32> = (0..7).collect();
        let mut token = String::new();
        let mut seen = Vec::new();
        loop {
            let page = Page::parse(Some(&req(3, &token))).unwrap();
            let (got, next) = page.by_offset(items.clone()).unwrap();
            seen.extend(got);
            if next.is_empty() {
                break;
            }
            token = next;
        }
        assert_eq!(seen, items);
        let bad = Page::parse(Some(&req(3, "zz"))).unwrap().by_offset(items);
        assert_eq!(bad.map_err(|e| e.field), Err("page.page_token"));
    }

    #[test]
    fn keys_walk_every_item_once() {
        let items = vec!["a", "b", "c", "d"];
        let (first, next) = Page::parse(Some(&req(2, "")))
            .unwrap()
            .after_key(items.clone(), |s| s);
        assert_eq!((first, next.as_str()), (vec!["a", "b"], "b"));
        let (rest, next) = Page::parse(Some(&req(2, "b"))).unwrap().after_key(items, |s| s);
        assert_eq!((rest, next.as_str()), (vec!["c", "d"], ""));
    }
}
