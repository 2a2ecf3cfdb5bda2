//! An object and its children (a roll-out and its steps) kept current by
//! one watch: [`Store::get_with_children`] followed.
//!
//! One watch over the object's range is opened first, from etcd's current
//! revision, and confirmed; then the object and its children are read at
//! one revision R (at least the watch's start), and the watch's events of
//! revisions up to R are dropped as already read. A watch opened *after*
//! the read, from R + 1, was behind whenever a write landed between the
//! two (a roll-out's first transactions always did): etcd serves such a
//! watcher from its catch-up loop, every 100 ms, so the follower saw the
//! changes up to 100 ms late (issue 18's overhead measure: up to 50 ms
//! between a roll-out's last commit and WatchRollout's SUCCEEDED). etcd
//! never splits one revision's events across watch responses, so applying
//! a response whole never shows part of a transaction: every state
//! [`Family`] holds between two calls of [`Family::changed`] is one etcd
//! revision's. No change costs a read; a lost watch or a compacted history
//! costs one read of the family again, made the same way (a watch from
//! now first).

use std::collections::BTreeMap;

use etcd_client::{EventType, WatchOptions, WatchStream};

use crate::cache::open_watch;
use crate::error::Result;
use crate::keys::prefix_end;
use crate::retry::Backoff;
use crate::store::{Store, Versioned, decode};

/// What [`Family::changed`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyChange {
    /// The object or one of its children changed (or the family was read
    /// again after a lost watch): the new state is in place.
    Changed,
    /// The object was deleted.
    Gone,
}

/// An object (`P`) and the objects stored under it (`C`), kept current by
/// one watch; see the module docs.
pub struct Family<P, C> {
    store: Store,
    key: String,
    children: String,
    parent: Versioned<P>,
    items: BTreeMap<String, Versioned<C>>,
    revision: i64,
    stream: Option<WatchStream>,
    /// The wait before reading again after a failed or lost watch, doubling
    /// while they keep failing (reset by a watch response): a watch that
    /// cannot be kept must not turn into a loop of reads.
    backoff: Backoff,
}

impl<P, C> std::fmt::Debug for Family<P, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Family")
            .field("key", &self.key)
            .field("children", &self.items.len())
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Reads the object at `key` and its children (keys starting with
    /// `children`, which must start with `key` followed by `/`) at one
    /// revision, to follow them with [`Family::changed`]. `None` when the
    /// object is absent.
    pub async fn follow_with_children<P, C>(&self, key: &str, children: &str) -> Result<Option<Family<P, C>>>
    where
        P: prost::Message + Default,
        C: prost::Message + Default,
    {
        // The watch first, from now (a watch etcd keeps current), then the
        // read; without a watch (it could not be opened or confirmed) the
        // first `changed` opens one from the read's revision.
        let stream = watch_from_now(self, key).await;
        let Some((parent, listing)) = self.get_with_children::<P, C>(key, children).await? else {
            return Ok(None);
        };
        Ok(Some(Family {
            store: self.clone(),
            key: key.to_owned(),
            children: children.to_owned(),
            parent,
            items: listing.items.into_iter().map(|c| (c.key.clone(), c)).collect(),
            revision: listing.revision,
            stream,
            backoff: Backoff::default(),
        }))
    }
}

/// The range a family's watch covers: the object's key to the end of its
/// children's (which starts `key/`).
fn watch_range(key: &str) -> WatchOptions {
    WatchOptions::new().with_range(prefix_end(format!("{key}/").as_bytes()))
}

/// A watch of `key`'s family from etcd's current revision, once etcd has
/// confirmed it (so a read made after it sees everything before the
/// watch's first event); `None` when it cannot be opened or confirmed.
async fn watch_from_now(store: &Store, key: &str) -> Option<WatchStream> {
    let mut stream = match open_watch(store, key, watch_range(key)).await {
        Ok(stream) => stream,
        Err(e) => {
            tracing::debug!(key, error = %e, "cannot watch before the read; watching after it");
            return None;
        }
    };
    match tokio::time::timeout(store.op_timeout(), stream.message()).await {
        Ok(Ok(Some(resp))) if resp.created() && !resp.canceled() => Some(stream),
        other => {
            tracing::debug!(key, answer = ?other.map(|r| r.map(|m| m.map(|m| m.created()))), "the watch was not confirmed; watching after the read");
            None
        }
    }
}

impl<P, C> Family<P, C>
where
    P: prost::Message + Default,
    C: prost::Message + Default,
{
    /// The object.
    pub fn parent(&self) -> &Versioned<P> {
        &self.parent
    }

    /// Its children, in key order.
    pub fn children(&self) -> impl Iterator<Item = &Versioned<C>> {
        self.items.values()
    }

    /// The etcd revision this state is at (at least).
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// Waits for the next change of the object or its children and applies
    /// it whole. When the watch cannot be opened, is lost, cancelled or
    /// compacted, reads the family again instead, after a back-off while
    /// that keeps happening (`Changed`, whether or not anything did); an
    /// error only when that read fails.
    pub async fn changed(&mut self) -> Result<FamilyChange> {
        loop {
            let stream = match &mut self.stream {
                Some(stream) => stream,
                slot @ None => {
                    let opts = watch_range(&self.key).with_start_revision(self.revision + 1);
                    match open_watch(&self.store, &self.key, opts).await {
                        Ok(stream) => slot.insert(stream),
                        Err(e) => {
                            tracing::debug!(key = %self.key, error = %e, "cannot watch; reading again");
                            return self.reread().await;
                        }
                    }
                }
            };
            let resp = match stream.message().await {
                Ok(Some(resp)) => {
                    self.backoff.reset();
                    resp
                }
                Ok(None) => return self.lost("the watch stream ended").await,
                Err(e) => return self.lost(&e.to_string()).await,
            };
            if resp.canceled() {
                return self
                    .lost(&format!("watch cancelled: {:?}", resp.cancel_reason()))
                    .await;
            }
            if let Some(change) = self.apply(resp.events())? {
                return Ok(change);
            }
        }
    }

    async fn lost(&mut self, why: &str) -> Result<FamilyChange> {
        tracing::debug!(key = %self.key, revision = self.revision, why, "watch lost; reading again");
        self.reread().await
    }

    /// Reads the family again (after the back-off), as
    /// [`Store::follow_with_children`] does: a watch from now first, kept
    /// only once the read succeeded.
    async fn reread(&mut self) -> Result<FamilyChange> {
        self.stream = None;
        tokio::time::sleep(self.backoff.next_delay()).await;
        let stream = watch_from_now(&self.store, &self.key).await;
        match self
            .store
            .get_with_children::<P, C>(&self.key, &self.children)
            .await?
        {
            None => Ok(FamilyChange::Gone),
            Some((parent, listing)) => {
                self.parent = parent;
                self.items = listing.items.into_iter().map(|c| (c.key.clone(), c)).collect();
                self.revision = listing.revision;
                self.stream = stream;
                Ok(FamilyChange::Changed)
            }
        }
    }

    /// Applies one watch response (whole revisions); what changed, `None`
    /// when nothing of the family did (a sibling's keys share the range)
    /// or every event is of a revision already held (a watch opened
    /// before the read delivers the revisions between the two again).
    fn apply(&mut self, events: &[etcd_client::Event]) -> Result<Option<FamilyChange>> {
        let held = self.revision;
        let mut changed = None;
        for ev in events {
            let Some(kv) = ev.kv() else { continue };
            if kv.mod_revision() <= held {
                continue;
            }
            self.revision = self.revision.max(kv.mod_revision());
            let key = kv.key();
            let deleted = ev.event_type() == EventType::Delete;
            if key == self.key.as_bytes() {
                if deleted {
                    return Ok(Some(FamilyChange::Gone));
                }
                if kv.mod_revision() > self.parent.etag {
                    self.parent = decode::<P>(kv)?;
                    changed = Some(FamilyChange::Changed);
                }
            } else if key.starts_with(self.children.as_bytes()) {
                let name = String::from_utf8_lossy(key).into_owned();
                if deleted {
                    if self.items.remove(&name).is_some() {
                        changed = Some(FamilyChange::Changed);
                    }
                } else if self.items.get(&name).is_none_or(|c| kv.mod_revision() > c.etag) {
                    self.items.insert(name, decode::<C>(kv)?);
                    changed = Some(FamilyChange::Changed);
                }
            }
        }
        Ok(changed)
    }
}
