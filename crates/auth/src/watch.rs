//! The policy in force, and reloading it when its file changes.
//!
//! A [`PolicyWatcher`] polls its file (the whole text: a policy is small,
//! and a modification time can miss a rewrite within its granularity). A
//! changed text that loads replaces the policy; one that does not is
//! refused, the last good policy stays, and the reason is logged once (not
//! on every poll). A [`PolicyHandle`] is what the role check reads: cheap
//! to clone, always the policy in force.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::policy::{LoadError, Policy, load, read_text};

/// The policy in force, as the role check reads it.
#[derive(Debug, Clone)]
pub struct PolicyHandle(watch::Receiver<Arc<Policy>>);

impl PolicyHandle {
    /// A handle on a policy that never changes (tests, a service started
    /// without a policy file).
    pub fn fixed(policy: Policy) -> Self {
        let (_tx, rx) = watch::channel(Arc::new(policy));
        Self(rx)
    }

    /// The policy in force now.
    pub fn current(&self) -> Arc<Policy> {
        Arc::clone(&self.0.borrow())
    }
}

/// What one poll of the file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// The text is the one already seen (loaded, or refused before).
    Unchanged,
    /// A new text loaded and is now in force.
    Reloaded,
    /// A new text was refused; the last good policy stays. The reason.
    Refused(String),
    /// The file could not be read; the last good policy stays. The reason.
    Unreadable(String),
}

/// Reloads a policy file when it changes, keeping the last good policy.
#[derive(Debug)]
pub struct PolicyWatcher {
    path: PathBuf,
    tx: watch::Sender<Arc<Policy>>,
    /// The last text read (in force, or refused), so a refusal is reported
    /// once and an unchanged file is not parsed again.
    seen: String,
    /// The last read error reported, so it is logged once.
    unreadable: Option<String>,
}

impl PolicyWatcher {
    /// Loads the file; it must load (a service does not start on a policy
    /// it cannot read).
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let seen = read_text(path)?;
        let policy = load_text(path, &seen)?;
        let (tx, _rx) = watch::channel(Arc::new(policy));
        Ok(Self {
            path: path.to_owned(),
            tx,
            seen,
            unreadable: None,
        })
    }

    /// A handle on the policy in force.
    pub fn handle(&self) -> PolicyHandle {
        PolicyHandle(self.tx.subscribe())
    }

    /// The file watched.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file once and reloads it if its text changed.
    pub fn check(&mut self) -> Reload {
        let text = match read_text(&self.path) {
            Ok(t) => t,
            Err(e) => {
                let reason = e.to_string();
                if self.unreadable.as_deref() != Some(reason.as_str()) {
                    tracing::warn!(error = %reason, "access policy not reloaded; the last good one stays");
                    self.unreadable = Some(reason.clone());
                }
                return Reload::Unreadable(reason);
            }
        };
        self.unreadable = None;
        if text == self.seen {
            return Reload::Unchanged;
        }
        let result = load_text(&self.path, &text);
        self.seen = text;
        match result {
            Ok(policy) => {
                tracing::info!(path = %self.path.display(), identities = policy.identities().count(), "access policy reloaded");
                self.tx.send_replace(Arc::new(policy));
                Reload::Reloaded
            }
            Err(e) => {
                let reason = e.to_string();
                tracing::warn!(error = %reason, "access policy refused; the last good one stays");
                Reload::Refused(reason)
            }
        }
    }

    /// Polls every `every` until `stop` completes.
    pub async fn run(mut self, every: Duration, stop: impl Future<Output = ()>) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = tick.tick() => {
                    self.check();
                }
            }
        }
    }
}

fn load_text(path: &Path, text: &str) -> Result<Policy, LoadError> {
    Policy::parse(text).map_err(|source| LoadError::Policy {
        path: path.to_owned(),
        source,
    })
}

/// Loads `path` with [`load`], for a caller that does not watch.
pub fn load_fixed(path: &Path) -> Result<PolicyHandle, LoadError> {
    load(path).map(PolicyHandle::fixed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::role::Role;

    fn role(h: &PolicyHandle, name: &str) -> Option<String> {
        h.current()
            .role_of(&Identity::parse(name).unwrap())
            .map(Role::to_string)
    }

    #[test]
    fn changes_reload_and_bad_files_keep_the_last_good_policy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, "[identities]\nada = \"viewer\"\n").unwrap();
        let mut w = PolicyWatcher::load(&path).unwrap();
        let h = w.handle();
        assert_eq!(role(&h, "ada").as_deref(), Some("viewer"));
        assert_eq!(w.check(), Reload::Unchanged);

        std::fs::write(&path, "[identities]\nada = \"oncall\"\n").unwrap();
        assert_eq!(w.check(), Reload::Reloaded);
        assert_eq!(role(&h, "ada").as_deref(), Some("oncall"));

        // An unknown role: refused once, with the line; the last good
        // policy stays, and the same text is not reported again.
        std::fs::write(&path, "[identities]\nada = \"oncall\"\nbob = \"root\"\n").unwrap();
        match w.check() {
            Reload::Refused(reason) => assert!(reason.contains("line 3: identity \"bob\""), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(w.check(), Reload::Unchanged);
        assert_eq!(role(&h, "ada").as_deref(), Some("oncall"));
        assert_eq!(role(&h, "bob"), None);

        // Not TOML: refused with the reason.
        std::fs::write(&path, "[identities\n").unwrap();
        match w.check() {
            Reload::Refused(reason) => assert!(reason.contains("line 1, column"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(role(&h, "ada").as_deref(), Some("oncall"));

        // Gone: the last good policy stays.
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(w.check(), Reload::Unreadable(_)));
        assert_eq!(role(&h, "ada").as_deref(), Some("oncall"));

        // Back and good.
        std::fs::write(&path, "[identities]\nbob = \"service\"\n").unwrap();
        assert_eq!(w.check(), Reload::Reloaded);
        assert_eq!(role(&h, "bob").as_deref(), Some("service"));
        assert_eq!(role(&h, "ada"), None);
        assert_eq!(w.handle().current(), h.current());
    }

    #[test]
    fn a_file_that_does_not_load_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        assert!(PolicyWatcher::load(&path).is_err());
        std::fs::write(&path, "[identities]\nada = \"admin\"\n").unwrap();
        let e = PolicyWatcher::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("line 2: identity \"ada\": unknown role \"admin\""),
            "{e}"
        );
        assert!(load_fixed(&path).is_err());
    }

    #[tokio::test]
    async fn run_polls_until_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, "[identities]\nada = \"viewer\"\n").unwrap();
        let w = PolicyWatcher::load(&path).unwrap();
        let h = w.handle();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(w.run(Duration::from_millis(10), async move {
            let _ = stop_rx.await;
        }));
        std::fs::write(&path, "[identities]\nada = \"oncall\"\n").unwrap();
        let mut changed = h.0.clone();
        tokio::time::timeout(
            Duration::from_secs(10),
            changed.wait_for(|p| p.role_of(&Identity::parse("ada").unwrap()) == Some(&Role::Oncall)),
        )
        .await
        .unwrap()
        .unwrap();
        let _ = stop_tx.send(());
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap();
    }
}
