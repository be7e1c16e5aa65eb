//! The cascade step of the delete routine: every table of the plan at once, each page saved
//! before its keys are deleted, so that a crash anywhere resumes exactly.

use super::{Cascaded, Deletion};
use crate::cascade::{CascadeTable, Lookup, CASCADE_PLAN};
use crate::job::{DeletionJob, TableProgress};
use crate::ports::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::PoisonError;
use std::time::Duration;
use tokio::time::Instant;

impl Deletion {
    /// Step 5 (or the late pass): erase every table of the plan, all at once, into
    /// `job.progress` (or `job.late_progress`).
    ///
    /// Each table runs its own loop, and the tables share the job: no table goes on from a page
    /// until a save holding that page's progress is stored (one save at a time, each holding
    /// every table's progress so far), so a crash anywhere resumes exactly: a page's keys are
    /// saved as `pending` before they are deleted and counted once they are gone.
    /// While a page is deleted, the next one is read. DynamoDB's "slow down" (throttling,
    /// capacity exceeded) slows a table down; it never fails the erasure.
    pub(super) async fn cascade(
        &self, job: &mut DeletionJob, late: bool, deadline: Instant,
    ) -> Result<Cascaded, DependencyError> {
        let shared = Shared {
            job: std::sync::Mutex::new((job.clone(), 0)),
            saved: tokio::sync::Mutex::new(0),
            lost: AtomicBool::new(false),
        };
        let ends = futures::future::try_join_all(
            CASCADE_PLAN
                .iter()
                .map(|table| self.cascade_table(&shared, table, late, deadline)),
        )
        .await;
        *job = shared.job.into_inner().unwrap_or_else(PoisonError::into_inner).0;
        let ends = ends?;
        Ok(
            if shared.lost.load(Ordering::SeqCst) || ends.contains(&Cascaded::Lost) {
                Cascaded::Lost
            } else if ends.contains(&Cascaded::OutOfTime) {
                Cascaded::OutOfTime
            } else {
                Cascaded::Done
            },
        )
    }

    /// One table of [`Self::cascade`].
    ///
    /// A table found through its own partition key is read consistently: one pass finds every
    /// item. A table found through an index is eventually consistent: a row written just
    /// before can be missing, a deleted one can still show. So the keys of every page read
    /// through an index are checked against the table first (an item the index still shows
    /// after its deletion is neither deleted nor counted), and once the first pass is over the
    /// index is queried again from the start until a query finds nothing.
    async fn cascade_table(
        &self, shared: &Shared, table: &CascadeTable, late: bool, deadline: Instant,
    ) -> Result<Cascaded, DependencyError> {
        let lost = &shared.lost;
        let by_index = matches!(table.lookup, Lookup::Index { .. });
        let (user_id, mut at) = {
            let mut job = shared.job();
            (
                job.0.user_id.clone(),
                progress_of(&mut job.0, table, late).clone(),
            )
        };
        let mut only_stale = false;
        let mut slow_down = Duration::ZERO;
        loop {
            if lost.load(Ordering::SeqCst) {
                return Ok(Cascaded::Lost);
            }
            if at.done {
                return Ok(Cascaded::Done);
            }
            if !slow_down.is_zero() {
                if Instant::now() + slow_down >= deadline {
                    return Ok(Cascaded::OutOfTime);
                }
                tokio::time::sleep(slow_down).await;
            }
            let mut next = at.clone();
            // Deleted and counted below: the keys saved as pending (read before a save).
            let deleting = std::mem::take(&mut next.pending);
            let deleted = deleting.len() as u64;
            // What to read now. A re-query must wait for the pending keys to be gone (it would
            // find them again), so only the first pass reads ahead.
            let read = if at.exhausted || Instant::now() >= deadline {
                None
            } else if at.verifying {
                deleting.is_empty().then_some(None)
            } else {
                Some(at.cursor.clone())
            };
            if at.verifying && read.is_some() && only_stale {
                // Entering the re-query, or the last one found only rows already gone: let the
                // index catch up.
                let pause = self.settings.requery_pause;
                if Instant::now() + pause >= deadline {
                    return Ok(Cascaded::OutOfTime);
                }
                // No pause configured, no sleep: tokio's timer would still round a zero
                // sleep up to its next millisecond tick.
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
            let delete = async {
                if deleting.is_empty() {
                    Ok(())
                } else {
                    self.user_data.delete(table, &deleting).await
                }
            };
            let page = async {
                match &read {
                    None => Ok(None),
                    Some(cursor) => {
                        let page = self
                            .user_data
                            .page(table, &user_id, cursor.as_ref(), self.settings.page_size)
                            .await?;
                        let found = page.keys.len();
                        if by_index && found > 0 {
                            // An index can still show items already deleted: only the ones the
                            // table itself holds are deleted and counted.
                            let live = self.user_data.existing(table, &page.keys).await?;
                            Ok(Some((
                                found,
                                KeysPage {
                                    keys: live,
                                    next: page.next,
                                },
                            )))
                        } else {
                            Ok(Some((found, page)))
                        }
                    }
                }
            };
            let (deleted_now, read_now) = futures::join!(delete, page);
            if let Err(err) = deleted_now.as_ref().and(read_now.as_ref().map(drop)) {
                if err.throttled {
                    // Slow down and try again (the pending keys are still saved).
                    slow_down = (slow_down * 2).clamp(Duration::from_millis(50), Duration::from_secs(2));
                    tracing::debug!(table = table.name, "throttled; slowing down");
                    continue;
                }
            }
            deleted_now?;
            let read_now = read_now?;
            slow_down = Duration::ZERO;
            next.deleted += deleted;
            match read_now {
                Some((found, page)) => {
                    if next.verifying {
                        // The last re-query is the one that finds nothing.
                        next.exhausted = found == 0;
                        only_stale = found > 0 && page.keys.is_empty();
                        next.cursor = None;
                    } else {
                        next.exhausted = page.next.is_none();
                        next.cursor = page.next;
                    }
                    next.pending = page.keys;
                }
                None if next.exhausted => {
                    if by_index && !next.verifying {
                        next.verifying = true;
                        next.exhausted = false;
                        only_stale = true;
                    } else {
                        next.done = true;
                    }
                    next.cursor = None;
                }
                None if deleting.is_empty() && Instant::now() >= deadline => {
                    return Ok(Cascaded::OutOfTime);
                }
                None => {}
            }
            if !self.save_progress(shared, table, late, &next).await? {
                lost.store(true, Ordering::SeqCst);
                return Ok(Cascaded::Lost);
            }
            at = next;
        }
    }
}

impl Deletion {
    /// Puts one table's progress into the job and returns once a save that holds it has been
    /// stored; false when the job moved on under us.
    ///
    /// Saves are one at a time, and each stores every table's progress put in so far (a group
    /// commit): a table whose progress a save of another table already carried does not save
    /// again, so the tables do not queue behind each other's saves and the job is written
    /// less often.
    async fn save_progress(
        &self, shared: &Shared, table: &CascadeTable, late: bool, next: &TableProgress,
    ) -> Result<bool, DependencyError> {
        let mine = {
            let mut job = shared.job();
            *progress_of(&mut job.0, table, late) = next.clone();
            job.1 += 1;
            job.1
        };
        let mut saved = shared.saved.lock().await;
        if *saved >= mine {
            return Ok(true);
        }
        let (mut snapshot, covers) = shared.job().clone();
        if !self.save(&mut snapshot).await? {
            return Ok(false);
        }
        let mut job = shared.job();
        job.0.version = snapshot.version;
        job.0.updated_at = snapshot.updated_at;
        *saved = covers;
        Ok(true)
    }
}

/// What the tables of one cascade share.
struct Shared {
    /// The job with every table's progress so far, and how many progress updates it holds.
    job: std::sync::Mutex<(DeletionJob, u64)>,
    /// Held while a save is under way: the number of updates the last stored save held.
    saved: tokio::sync::Mutex<u64>,
    /// A save found the job taken over: every table stops.
    lost: AtomicBool,
}

impl Shared {
    fn job(&self) -> std::sync::MutexGuard<'_, (DeletionJob, u64)> {
        self.job.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn progress_of<'j>(job: &'j mut DeletionJob, table: &CascadeTable, late: bool) -> &'j mut TableProgress {
    let map = if late {
        &mut job.late_progress
    } else {
        &mut job.progress
    };
    map.entry(table.name.to_owned()).or_default()
}
