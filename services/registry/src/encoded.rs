//! GetTile and ListTiles answered from encodings kept while they hold.
//!
//! The latest revision's GetTile answer is a function of the tile's etag:
//! every write that changes the tile, its sign-offs or its revisions moves
//! the etag (the revision snapshots are written in the tile's own
//! transaction). So the encoded answer, kept under the etag it shows, is
//! valid for as long as the cache shows that etag, and a read of it costs
//! a lookup instead of a copy of the tile and its encoding.
//!
//! A ListTiles answer is a function of the tile cache's revision (read
//! under the same lock as the page), the request and what the caller may
//! see; a few recent ones are kept under those three, so a listing asked
//! again before any tile changed (a dashboard's poll, a paging CLI) costs
//! a lookup. Any change of a tile moves the revision, and the kept
//! answers stop matching.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use prost::bytes::Bytes;
use tilewave_auth::Scope;
use tilewave_proto::registry::v1::{GetTileRequest, ListTilesRequest};
use tonic::{Request, Response, Status};

use crate::service::Registry;

/// How many tiles' answers are kept (the most recently read; an answer is
/// about 3 KB, so at most about 1.5 MB).
pub const KEPT_ANSWERS: NonZeroUsize = match NonZeroUsize::new(512) {
    Some(n) => n,
    None => NonZeroUsize::MIN,
};

/// The gRPC path of GetTile.
pub const GET_TILE_PATH: &str = "/tilewave.registry.v1.RegistryService/GetTile";

/// The gRPC path of ListTiles.
pub const LIST_TILES_PATH: &str = "/tilewave.registry.v1.RegistryService/ListTiles";

/// How many ListTiles answers are kept (the most recently asked).
pub const KEPT_LISTS: NonZeroUsize = match NonZeroUsize::new(16) {
    Some(n) => n,
    None => NonZeroUsize::MIN,
};

/// The largest ListTiles answer kept (a page of about 170 tiles; larger
/// pages are built every time), so that the kept answers hold at most
/// about 4 MB.
pub const KEPT_LIST_BYTES: usize = 256 * 1024;

/// Encoded GetTile answers by tile id, each with the etag of the tile it
/// shows; bounded to [`KEPT_ANSWERS`], least recently used first out.
#[derive(Debug)]
pub struct EncodedAnswers {
    kept: Mutex<lru::LruCache<String, (i64, Bytes)>>,
}

impl Default for EncodedAnswers {
    fn default() -> Self {
        Self::with_capacity(KEPT_ANSWERS)
    }
}

impl EncodedAnswers {
    /// Keeps at most `capacity` answers.
    pub fn with_capacity(capacity: NonZeroUsize) -> Self {
        Self {
            kept: Mutex::new(lru::LruCache::new(capacity)),
        }
    }

    /// The answer kept for tile `id` when it shows etag `etag`.
    pub fn get(&self, id: &str, etag: i64) -> Option<Bytes> {
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.get(id).filter(|(e, _)| *e == etag).map(|(_, b)| b.clone())
    }

    /// Keeps `answer`, the encoded answer showing tile `id` at `etag`
    /// (replacing an older one; a newer one kept meanwhile stays).
    pub fn put(&self, id: String, etag: i64, answer: Bytes) {
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.peek(&id).is_none_or(|(e, _)| *e < etag) {
            kept.put(id, (etag, answer));
        }
    }

    /// How many answers are kept.
    pub fn len(&self) -> usize {
        self.kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a ListTiles answer depends on besides the tile cache's revision:
/// the request (its encoding: filters, page size and token) and which
/// partners' tiles the caller may see.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListKey {
    request: Vec<u8>,
    partner: Option<String>,
}

impl ListKey {
    /// The key of `request` asked by a caller of `scope`.
    pub fn new(scope: &Scope, request: &ListTilesRequest) -> Self {
        Self {
            request: prost::Message::encode_to_vec(request),
            partner: match scope {
                Scope::All => None,
                Scope::Partner(p) => Some(p.as_str().to_owned()),
            },
        }
    }
}

/// Recent encoded ListTiles answers, each under the tile cache's revision
/// it was read at and its [`ListKey`]; bounded to [`KEPT_LISTS`] answers
/// of at most [`KEPT_LIST_BYTES`] each.
#[derive(Debug)]
pub struct KeptLists {
    kept: Mutex<lru::LruCache<ListKey, (i64, Bytes)>>,
}

impl Default for KeptLists {
    fn default() -> Self {
        Self {
            kept: Mutex::new(lru::LruCache::new(KEPT_LISTS)),
        }
    }
}

impl KeptLists {
    /// The answer kept for `key` when the tile cache is at `revision`.
    pub fn get(&self, revision: i64, key: &ListKey) -> Option<Bytes> {
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.get(key)
            .filter(|(r, _)| *r == revision)
            .map(|(_, b)| b.clone())
    }

    /// Keeps `answer`, read at `revision`, for `key` (unless it is larger
    /// than [`KEPT_LIST_BYTES`], or a newer one is kept).
    pub fn put(&self, revision: i64, key: ListKey, answer: Bytes) {
        if answer.len() > KEPT_LIST_BYTES {
            return;
        }
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.peek(&key).is_none_or(|(r, _)| *r < revision) {
            kept.put(key, (revision, answer));
        }
    }
}

/// ListTiles as the registry's server answers it.
#[derive(Debug, Clone)]
pub struct EncodedListTiles(pub Registry);

impl tonic::server::UnaryService<ListTilesRequest> for EncodedListTiles {
    type Response = Bytes;
    type Future = futures::future::BoxFuture<'static, Result<Response<Bytes>, Status>>;

    fn call(&mut self, req: Request<ListTilesRequest>) -> Self::Future {
        let registry = self.0.clone();
        Box::pin(async move { registry.list_tiles_encoded(req).await })
    }
}

/// GetTile as the registry's server answers it (see
/// [`tilewave_service::encoded::WithEncoded`]).
#[derive(Debug, Clone)]
pub struct EncodedGetTile(pub Registry);

impl tonic::server::UnaryService<GetTileRequest> for EncodedGetTile {
    type Response = Bytes;
    type Future = futures::future::BoxFuture<'static, Result<Response<Bytes>, Status>>;

    fn call(&mut self, req: Request<GetTileRequest>) -> Self::Future {
        let registry = self.0.clone();
        Box::pin(async move { registry.get_tile_encoded(req).await })
    }
}

#[cfg(test)]
mod tests {
    use tilewave_proto::registry::v1::registry_service_server::RegistryServiceServer;
    use tonic::server::NamedService as _;

    use super::*;

    #[test]
    fn the_paths_are_the_generated_servers() {
        let name = RegistryServiceServer::<Registry>::NAME;
        assert_eq!(GET_TILE_PATH, format!("/{name}/GetTile"));
        assert_eq!(LIST_TILES_PATH, format!("/{name}/ListTiles"));
    }

    #[test]
    fn a_listing_is_kept_for_its_revision_request_and_caller() -> Result<(), Box<dyn std::error::Error>> {
        let lists = KeptLists::default();
        let all = ListTilesRequest::default();
        let filtered = ListTilesRequest {
            partner_id: "acme".into(),
            ..Default::default()
        };
        let acme = Scope::Partner(tilewave_core::slug::TileId::parse("acme")?);
        let everyone = ListKey::new(&Scope::All, &all);
        lists.put(7, everyone.clone(), Bytes::from_static(b"all@7"));
        assert_eq!(lists.get(7, &everyone).as_deref(), Some(&b"all@7"[..]));
        // Another revision, request or caller: not this answer.
        assert_eq!(lists.get(8, &everyone), None);
        assert_eq!(lists.get(7, &ListKey::new(&Scope::All, &filtered)), None);
        assert_eq!(lists.get(7, &ListKey::new(&acme, &all)), None);
        // An older answer does not replace a newer one.
        lists.put(6, everyone.clone(), Bytes::from_static(b"all@6"));
        assert_eq!(lists.get(7, &everyone).as_deref(), Some(&b"all@7"[..]));
        // Too large to keep.
        let big = Bytes::from(vec![0u8; KEPT_LIST_BYTES + 1]);
        let key = ListKey::new(&acme, &all);
        lists.put(9, key.clone(), big);
        assert_eq!(lists.get(9, &key), None);
        Ok(())
    }

    #[test]
    fn an_answer_is_kept_for_its_etag_and_the_least_recently_used_goes_first() {
        let answers = EncodedAnswers::with_capacity(NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN));
        answers.put("a".into(), 5, Bytes::from_static(b"a5"));
        answers.put("b".into(), 7, Bytes::from_static(b"b7"));
        assert_eq!(answers.get("a", 5).as_deref(), Some(&b"a5"[..]));
        // Another etag: the tile moved, the answer is not its.
        assert_eq!(answers.get("a", 6), None);
        assert_eq!(answers.get("missing", 1), None);
        // An older answer does not replace a newer one; a newer one does.
        answers.put("a".into(), 4, Bytes::from_static(b"a4"));
        assert_eq!(answers.get("a", 5).as_deref(), Some(&b"a5"[..]));
        answers.put("a".into(), 9, Bytes::from_static(b"a9"));
        assert_eq!(answers.get("a", 9).as_deref(), Some(&b"a9"[..]));
        // "b" was used least recently: a third tile pushes it out.
        answers.put("c".into(), 1, Bytes::from_static(b"c1"));
        assert_eq!(answers.len(), 2);
        assert_eq!(answers.get("b", 7), None);
        assert!(answers.get("a", 9).is_some() && answers.get("c", 1).is_some());
    }
}
