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

use std::borrow::Borrow;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::Mutex;

use prost::bytes::Bytes;
use tilewave_auth::Scope;
use tilewave_proto::registry::v1::ListTilesRequest;

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

/// Encoded answers under a key, each with the version it shows (a tile's
/// etag, or the tile cache's revision); bounded to a number of answers
/// (least recently used first out) and to a size for each.
#[derive(Debug)]
pub struct Kept<K: Hash + Eq> {
    kept: Mutex<lru::LruCache<K, (i64, Bytes)>>,
    largest: usize,
}

impl<K: Hash + Eq> Kept<K> {
    /// Keeps at most `capacity` answers, none larger than `largest` bytes.
    pub fn new(capacity: NonZeroUsize, largest: usize) -> Self {
        Self {
            kept: Mutex::new(lru::LruCache::new(capacity)),
            largest,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, lru::LruCache<K, (i64, Bytes)>> {
        self.kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The answer kept under `key` when it shows `version`.
    pub fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q, version: i64) -> Option<Bytes>
    where
        K: Borrow<Q>,
    {
        self.lock()
            .get(key)
            .filter(|(v, _)| *v == version)
            .map(|(_, b)| b.clone())
    }

    /// Keeps `answer`, showing `version`, under `key` (replacing an older
    /// one; a newer one kept meanwhile stays; one larger than the bound is
    /// not kept).
    pub fn put(&self, key: K, version: i64, answer: Bytes) {
        if answer.len() > self.largest {
            return;
        }
        let mut kept = self.lock();
        if kept.peek(&key).is_none_or(|(v, _)| *v < version) {
            kept.put(key, (version, answer));
        }
    }

    /// How many answers are kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// GetTile's encoded answers by tile id, under the etag of the tile they
/// show: [`KEPT_ANSWERS`] of them (an answer's size is bounded by the
/// message limit).
pub fn tile_answers() -> Kept<String> {
    Kept::new(KEPT_ANSWERS, usize::MAX)
}

/// ListTiles' recent encoded answers under their [`ListKey`], at the tile
/// cache's revision they were read at: [`KEPT_LISTS`] of them, of at most
/// [`KEPT_LIST_BYTES`] each.
pub fn list_answers() -> Kept<ListKey> {
    Kept::new(KEPT_LISTS, KEPT_LIST_BYTES)
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

#[cfg(test)]
mod tests {
    use tilewave_proto::registry::v1::registry_service_server::RegistryServiceServer;
    use tonic::server::NamedService as _;

    use super::*;
    use crate::service::Registry;

    #[test]
    fn the_paths_are_the_generated_servers() {
        let name = RegistryServiceServer::<Registry>::NAME;
        assert_eq!(GET_TILE_PATH, format!("/{name}/GetTile"));
        assert_eq!(LIST_TILES_PATH, format!("/{name}/ListTiles"));
    }

    #[test]
    fn a_listing_is_kept_for_its_revision_request_and_caller() -> Result<(), Box<dyn std::error::Error>> {
        let lists = list_answers();
        let all = ListTilesRequest::default();
        let filtered = ListTilesRequest {
            partner_id: "acme".into(),
            ..Default::default()
        };
        let acme = Scope::Partner(tilewave_core::slug::TileId::parse("acme")?);
        let everyone = ListKey::new(&Scope::All, &all);
        lists.put(everyone.clone(), 7, Bytes::from_static(b"all@7"));
        assert_eq!(lists.get(&everyone, 7).as_deref(), Some(&b"all@7"[..]));
        // Another revision, request or caller: not this answer.
        assert_eq!(lists.get(&everyone, 8), None);
        assert_eq!(lists.get(&ListKey::new(&Scope::All, &filtered), 7), None);
        assert_eq!(lists.get(&ListKey::new(&acme, &all), 7), None);
        // An older answer does not replace a newer one.
        lists.put(everyone.clone(), 6, Bytes::from_static(b"all@6"));
        assert_eq!(lists.get(&everyone, 7).as_deref(), Some(&b"all@7"[..]));
        // Too large to keep.
        let big = Bytes::from(vec![0u8; KEPT_LIST_BYTES + 1]);
        let key = ListKey::new(&acme, &all);
        lists.put(key.clone(), 9, big);
        assert_eq!(lists.get(&key, 9), None);
        Ok(())
    }

    #[test]
    fn an_answer_is_kept_for_its_etag_and_the_least_recently_used_goes_first() {
        let answers = Kept::<String>::new(NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN), usize::MAX);
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
