//! One named object of a service's in-memory list (a network, a pool): its current snapshot,
//! replaced whole on every change, and its job lock, so changes run one at a time while
//! reads clone the snapshot's `Arc` and never wait behind a job.

use std::sync::{Arc, RwLock};

use tokio::sync::{Mutex, OwnedMutexGuard};

/// An object's snapshot and job lock.
#[derive(Debug)]
pub struct JobSlot<S> {
    job: Arc<Mutex<()>>,
    current: RwLock<Arc<S>>,
}

impl<S> JobSlot<S> {
    pub fn new(snapshot: S) -> Arc<Self> {
        Arc::new(Self {
            job: Arc::new(Mutex::new(())),
            current: RwLock::new(Arc::new(snapshot)),
        })
    }

    pub fn snapshot(&self) -> Arc<S> {
        // A snapshot is replaced whole: a panic elsewhere cannot leave it half-written.
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Makes `next` what readers see.
    pub fn publish(&self, next: S) {
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(next);
    }

    /// Waits for the job lock.
    pub async fn begin_job(&self) -> OwnedMutexGuard<()> {
        self.job.clone().lock_owned().await
    }

    /// The job lock if nobody holds it.
    pub fn try_begin_job(&self) -> Option<OwnedMutexGuard<()>> {
        self.job.clone().try_lock_owned().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn readers_see_what_was_published_and_jobs_exclude_each_other() {
        let slot = JobSlot::new(1);
        assert_eq!(*slot.snapshot(), 1);
        let job = slot.begin_job().await;
        assert!(slot.try_begin_job().is_none());
        slot.publish(2);
        assert_eq!(*slot.snapshot(), 2, "reads do not wait behind the job");
        drop(job);
        assert!(slot.try_begin_job().is_some());
    }
}
