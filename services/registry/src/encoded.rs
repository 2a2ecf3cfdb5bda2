//! GetTile answered from encodings kept per tile version.
//!
//! The latest revision's GetTile answer is a function of the tile's etag:
//! every write that changes the tile, its sign-offs or its revisions moves
//! the etag (the revision snapshots are written in the tile's own
//! transaction). So the encoded answer, kept under the etag it shows, is
//! valid for as long as the cache shows that etag, and a read of it costs
//! a lookup instead of a copy of the tile and its encoding.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use prost::bytes::Bytes;
use tilewave_proto::registry::v1::GetTileRequest;
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
    fn the_path_is_the_generated_servers() {
        assert_eq!(
            GET_TILE_PATH,
            format!("/{}/GetTile", RegistryServiceServer::<Registry>::NAME)
        );
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
